"""`python manage.py fetch_model`: bake a model directory that serves offline."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from qa.loading import load_answerer


def fetch(*args) -> str:
    out = io.StringIO()
    call_command("fetch_model", *args, stdout=out)
    return out.getvalue()


def test_legacy_layout_becomes_safetensors_and_a_fast_tokenizer(legacy_model_dir, tmp_path):
    output = tmp_path / "baked"
    report = fetch("--model", str(legacy_model_dir), "--output", str(output))
    assert sorted(path.name for path in output.iterdir()) == [
        "config.json",
        "model.bf16.torchscript.pt",
        "model.onnx",
        "model.safetensors",
        "model.torchscript.pt",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
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
    from qa import baking
    from qa.export import GraphMismatch

    def mismatch(*args, **kwargs):
        raise GraphMismatch("the ONNX graph's logits differ from the model's by up to 1.0e-03")

    monkeypatch.setattr(baking, "export_onnx", mismatch)
    with pytest.raises(CommandError, match="differ from the model's"):
        fetch("--model", str(legacy_model_dir), "--output", str(tmp_path / "baked"))
    assert not (tmp_path / "baked" / "model.onnx").exists()


def test_the_default_source_is_the_qa_model_setting(settings, modern_model_dir, tmp_path):
    settings.QA_MODEL = str(modern_model_dir)
    fetch("--output", str(tmp_path / "baked"))
    assert (tmp_path / "baked" / "model.safetensors").is_file()


def test_offline_hub_id_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(CommandError, match="could not be downloaded from the Hugging Face hub"):
        fetch("--model", "mrm8488/bert-tiny-5-finetuned-squadv2", "--output", str(tmp_path / "out"))


def test_a_hub_model_is_downloaded_at_the_revision_asked_for(
    modern_model_dir, tmp_path, monkeypatch
):
    """The Dockerfile pins the hub revision (QA_MODEL_REVISION) so a rebuild bakes the same
    weights: the command hands it to the hub's download, with the files inference needs."""
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(modern_model_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    revision = "f586274a9919ef3ca801d3c7f3f30ee6ad7515d8"
    fetch(
        "--model",
        "mrm8488/bert-tiny-5-finetuned-squadv2",
        "--revision",
        revision,
        "--output",
        str(tmp_path / "baked"),
    )
    [(repo_id, kwargs)] = calls
    assert repo_id == "mrm8488/bert-tiny-5-finetuned-squadv2" and kwargs["revision"] == revision
    assert "config.json" in kwargs["allow_patterns"]
    assert (tmp_path / "baked" / "model.onnx").is_file()
