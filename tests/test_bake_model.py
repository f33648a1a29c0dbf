"""`python manage.py bake_model`: bake a model directory that serves offline."""

import io
import json
import os
import shutil
import signal
import time

import pytest
from django.core.management import CommandError, call_command

from qa.management.commands import bake_model
from qa.model.baking import bake as bake_module
from qa.model.baking.bake import BakeError
from qa.model.loading import load_answerer
from qa.reader.errors import ModelLoadError
from tests.helpers import runtime_tree


def bake(*args) -> str:
    out = io.StringIO()
    call_command("bake_model", *args, stdout=out)
    return out.getvalue()


def test_legacy_layout_becomes_safetensors_and_a_fast_tokenizer(legacy_model_dir, tmp_path):
    output = tmp_path / "baked"
    report = bake("--model", str(legacy_model_dir), "--output", str(output))
    # Every file the runtime tree's list names, and nothing else.
    assert sorted(path.name for path in output.iterdir()) == sorted(
        runtime_tree("serve") + runtime_tree("bake")
    )
    assert json.loads((output / "source.json").read_text()) == {
        "model": legacy_model_dir.name,
        "revision": None,
    }
    assert "What is my name?" in report
    assert all(f"{engine}: '" in report for engine in ("onnx", "torch", "torch, fast mode"))
    assert json.loads((output / "tokenizer_config.json").read_text())["model_max_length"] == 512
    context = "I'm Kit-Ho Mak. I come from Hong Kong and the city is long."
    original = load_answerer(str(legacy_model_dir), threads=1).answer("Who?", context)
    baked = load_answerer(str(output), threads=1).answer("Who?", context)
    assert baked == original


def test_a_graph_that_disagrees_with_the_model_fails_the_command(
    legacy_model_dir, tmp_path, monkeypatch
):
    from qa.model.baking import bake as bake_module
    from qa.model.baking.export import GraphMismatch

    def mismatch(*args, **kwargs):
        raise GraphMismatch("the ONNX graph's logits differ from the model's by up to 1.0e-03")

    monkeypatch.setattr(bake_module, "export_onnx", mismatch)
    with pytest.raises(CommandError, match="differ from the model's") as failure:
        bake("--model", str(legacy_model_dir), "--output", str(tmp_path / "baked"))
    assert "Nothing was written to" in str(failure.value)
    assert list(tmp_path.iterdir()) == []


def test_a_tokenizer_that_puts_the_context_first_is_refused(modern_model_dir, tmp_path):
    """XLNet's tokenizer pads on the left, a default of its class that save_pretrained does
    not write: the class name alone says it (qa.model.inputs)."""
    model = shutil.copytree(modern_model_dir, tmp_path / "model")
    settings = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(
        json.dumps({**settings, "tokenizer_class": "XLNetTokenizer"})
    )
    with pytest.raises(CommandError, match="puts the context before the question"):
        bake("--model", str(model), "--output", str(tmp_path / "baked"))
    assert not (tmp_path / "baked").exists()


def test_an_output_that_cannot_be_written_is_one_clear_error(legacy_model_dir, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(CommandError, match="Choose an --output in a directory you can write"):
        bake("--model", str(legacy_model_dir), "--output", str(tmp_path / "file" / "baked"))


def test_the_default_source_is_the_qa_model_setting(settings, modern_model_dir, tmp_path):
    settings.QA_MODEL = str(modern_model_dir)
    bake("--output", str(tmp_path / "baked"))
    assert (tmp_path / "baked" / "model.safetensors").is_file()


def test_offline_hub_id_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(CommandError, match="could not be downloaded from the Hugging Face hub"):
        bake("--model", "mrm8488/bert-tiny-5-finetuned-squadv2", "--output", str(tmp_path / "out"))


PRODUCTION, PINNED = "someone/production", "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("args", "downloaded"),
    [
        ([], (PRODUCTION, PINNED)),
        (["--model", PRODUCTION], (PRODUCTION, PINNED)),
        (["--revision", "v2"], (PRODUCTION, "v2")),
        (["--model", "someone/other"], ("someone/other", None)),
        (["--model", "someone/other", "--revision", "abc"], ("someone/other", "abc")),
    ],
)
@pytest.mark.parametrize("qa_model", [PRODUCTION, "/srv/models/ours"])
def test_a_hub_model_is_downloaded_and_recorded_at_its_revision(
    qa_model, args, downloaded, settings, modern_model_dir, tmp_path, monkeypatch
):
    """The production model is baked at the commit the settings pin, so a rebuild bakes the
    same weights, whether it is QA_MODEL or named by --model beside another; another model at
    the revision asked for (None: the hub's main). The bake records which, for health."""
    import huggingface_hub

    settings.PRODUCTION_MODEL, settings.PRODUCTION_MODEL_REVISION = PRODUCTION, PINNED
    settings.QA_MODEL = qa_model
    settings.QA_MODEL_REVISION = PINNED if qa_model == PRODUCTION else None
    if qa_model != PRODUCTION and "--model" not in args:  # the production model all the same
        args = ["--model", PRODUCTION, *args]
    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(modern_model_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    bake(*args, "--output", str(tmp_path / "baked"))
    [(repo_id, kwargs)] = calls
    assert (repo_id, kwargs["revision"]) == downloaded
    assert "config.json" in kwargs["allow_patterns"]
    model, revision = downloaded
    recorded = json.loads((tmp_path / "baked" / "source.json").read_text())
    assert recorded == {"model": model, "revision": revision}


def test_quantize_int8_serves_the_int8_graph_records_it_and_health_reports_it(
    legacy_model_dir, tmp_path, client, settings
):
    from qa.model.baking import quantization

    output = tmp_path / "baked"
    report = bake("--model", str(legacy_model_dir), "--output", str(output), "--quantize", "int8")
    assert "Quality gate (int8 against float32) passed:" in report
    record = json.loads((output / "source.json").read_text())
    assert record["quantization"] == "int8"
    assert record["quality_gate"]["identical_share"] >= quantization.MIN_IDENTICAL
    from qa.model.backends.onnx import session

    assert session(output / "model.onnx", threads=1).quantization == "int8"
    settings.QA_MODEL = str(output)
    assert client.get("/api/health/").json()["quantization"] == "int8"


def test_quantize_below_the_gate_fails_the_command(legacy_model_dir, tmp_path, monkeypatch):
    from qa.model.baking import quantization

    monkeypatch.setattr(quantization, "MIN_IDENTICAL", 1.01)  # a bound no graph can meet
    with pytest.raises(CommandError, match="fails the quality gate: .* probes"):
        bake(
            "--model", str(legacy_model_dir), "--output", str(tmp_path / "b"), "--quantize", "int8"
        )


def test_force_without_quantize_is_refused(legacy_model_dir, tmp_path):
    with pytest.raises(CommandError, match="--force applies to --quantize only"):
        bake("--model", str(legacy_model_dir), "--output", str(tmp_path / "b"), "--force")


@pytest.mark.parametrize(
    "error",
    [
        BakeError("the int8 graph fails the quality gate: ... or with --force to keep it anyway"),
        BakeError("its ONNX graph cannot be made faithfully (ValueError: off)"),
        ModelLoadError("No directory /srv/models/ours"),
        ModelLoadError("The model has no config.json."),
        BakeError("a reason that ends as a question?  "),
    ],
)
def test_a_failure_reads_as_sentences_whatever_its_reason_ends_with(
    error, modern_model_dir, tmp_path, monkeypatch
):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(bake_model, "bake", failing)
    output = tmp_path / "baked"
    with pytest.raises(CommandError) as failure:
        bake("--model", str(modern_model_dir), "--output", str(output))
    reason = str(error).rstrip()
    ending = "" if reason.endswith(("?", ".")) else "."
    assert str(failure.value) == (
        f"Cannot bake {modern_model_dir}: {reason}{ending} Nothing was written to {output}."
    )


def test_an_output_that_is_not_a_bake_is_refused_in_sentences(modern_model_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match=r"new or empty directory\. Nothing was written to "):
        bake("--model", str(modern_model_dir), "--output", str(tmp_path))


@pytest.mark.parametrize("number", bake_model.STOPPING, ids=lambda number: number.name)
def test_a_bake_stopped_by_a_signal_removes_its_scratch_and_says_so(
    number, modern_model_dir, tmp_path, monkeypatch
):
    """Ctrl-C, a closed terminal, `kill` or a supervisor's stop in the middle of a bake: the
    scratch directory beside --output goes, the command ends with one message and the exit
    status a shell gives a process the signal ended, and the signal's handler is restored."""

    def unhandled(signum, frame):
        raise AssertionError("the command left the signal to the handler it found")

    def interrupted(source, scratch, **kwargs):
        (scratch / "model.onnx").write_bytes(b"half a graph")
        os.kill(os.getpid(), number)
        time.sleep(30)  # the signal's handler raises before this ends

    previous = signal.signal(number, unhandled)
    try:
        monkeypatch.setattr(bake_module, "save_for_serving", interrupted)
        output = tmp_path / "baked"
        with pytest.raises(CommandError) as failure:
            bake("--model", str(modern_model_dir), "--output", str(output))
        assert signal.getsignal(number) is unhandled
    finally:
        signal.signal(number, previous)
    name = signal.Signals(number).name
    assert str(failure.value) == (
        f"Stopped baking {modern_model_dir} ({name}). Nothing was written to {output}."
    )
    assert failure.value.returncode == 128 + number
    assert list(tmp_path.iterdir()) == []
