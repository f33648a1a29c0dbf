"""Every architecture family a user may pick from the hub: a tiny model of each (tests/families.py),
baked by bake_model and served by both engines, answers exactly as transformers v4.57.6's
pipeline does on the same folder, or is refused at bake with the reason (docs/models.md)."""

import io
import json
import shutil
import subprocess

import pytest
from django.core.management import CommandError, call_command

from qa.model.backends.onnx import load, session
from qa.model.baking import quantization
from qa.model.files import read_config
from qa.model.loading import load_answerer
from qa.reader.answerer import Options
from tests.families import (
    CASES,
    FAMILIES,
    LEGACY_LAYOUTS,
    TREE_ANSWERS,
    build_family,
    v4_answers,
)
from tests.helpers import REPO, assert_each_window_runs_alone
from tests.lambda_runtime import lambda_python

# The torch-free runtime tree (`make runtime`, or docker/build-runtime.sh build/runtime).
TREE = REPO / "build" / "runtime"

# Families qasite refuses at bake, and why (docs/models.md).
REFUSED = {
    "xlnet": "puts the context before the question",
    "longformer": "ONNX graph cannot be made faithfully",
}
SERVED = [name for name in FAMILIES if name not in REFUSED]
# Served by the runtime tree too (the other families' graphs are of the same kinds): RoBERTa and
# XLM-R (no token types; XLM-R's overflow windows give type 1), DeBERTa-v3 (types the model
# ignores), ModernBERT (byte-level BPE, [CLS] and [SEP]).
IN_THE_TREE = ["roberta", "xlm-roberta", "deberta-v3", "modernbert"]


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("families")
    return {name: build_family(name, root / name) for name in FAMILIES}


@pytest.fixture(scope="module")
def reference(reference_python, family_dirs) -> dict:
    """v4's answers to every case, for every family served, in one v4 process."""
    return v4_answers(reference_python, {name: family_dirs[name] for name in SERVED})


def bake_model(source, output, *options: str) -> str:
    """``manage.py bake_model`` of the folder ``source`` into ``output``, with ``options``;
    returns what it printed."""
    report = io.StringIO()
    call_command(
        "bake_model", "--model", str(source), "--output", str(output), *options, stdout=report
    )
    return report.getvalue()


def baker(folders: dict, tmp_path_factory):
    """bake(key): the folder ``folders[key]`` baked by bake_model, once a module whatever the
    tests asking."""
    done = {}

    def bake(key: str):
        if key not in done:
            output = tmp_path_factory.mktemp("baked") / "baked"
            bake_model(folders[key], output)
            done[key] = output
        return done[key]

    return bake


@pytest.fixture(scope="module")
def baked(family_dirs, tmp_path_factory):
    """bake(name): the family baked by bake_model, once a module."""
    return baker(family_dirs, tmp_path_factory)


def spans(answers: list[dict]) -> list[tuple]:
    return [(a["answer"], a["start"], a["end"]) for a in answers]


def case_options(case: dict) -> Options:
    return Options(**{k: v for k, v in case.items() if k not in ("question", "context")})


@pytest.fixture(scope="module")
def baked_int8(family_dirs, tmp_path_factory):
    """bake(name): the family baked by ``bake_model --quantize int8``, once a module, with the
    quality gate's bounds at 0 (a tiny random model's best spans are near ties, which int8 moves
    far more often than a trained reader's: whether its graph passes the real bounds says
    nothing; test_the_gate_refuses_each_family_s_int8_graph_below_its_bounds judges them)."""
    done = {}

    def bake(name: str) -> tuple:
        if name not in done:
            output = tmp_path_factory.mktemp("baked-int8") / "baked"
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(quantization, "MIN_IDENTICAL", 0.0)
                patch.setattr(quantization, "MIN_F1", 0.0)
                done[name] = output, bake_model(family_dirs[name], output, "--quantize", "int8")
        return done[name]

    return bake


@pytest.mark.parametrize("engine", ["onnx", "torch"])
@pytest.mark.parametrize("name", SERVED)
def test_a_baked_family_answers_as_v4(name, engine, baked, reference):
    expected = reference[name]
    assert isinstance(expected, list), f"v4 cannot serve {name}: {expected}"
    answerer = load_answerer(str(baked(name)), threads=1, engine=engine)
    for case, theirs in zip(CASES, expected, strict=True):
        question, context = case["question"], case["context"]
        ours = [vars(a) for a in answerer.answer(question, context, case_options(case))]
        assert spans(ours) == spans(theirs), (name, question)
        for mine, v4 in zip(ours, theirs, strict=True):
            assert mine["score"] == pytest.approx(v4["score"], abs=1e-5), (name, question)


def tree_replies(model, tmp_path) -> list:
    """[status, body] of each of CASES from the Lambda handler, on Lambda's Python with the
    runtime tree's packages only (-S: no site-packages, so no torch, no transformers, no
    sentencepiece), serving the baked ``model``."""
    if not (TREE / "installed").is_file():
        pytest.skip("no runtime tree: `make runtime` (or `make test`) builds build/runtime")
    event = json.loads((REPO / "events" / "http-api-v2-post-answer.json").read_text())
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": f"{TREE}:{REPO}",
        "QA_MODEL": str(model),
        "QA_THREADS": "1",
        "QA_THROTTLE_RATE": "off",
        "HF_HUB_OFFLINE": "1",
        "DJANGO_ALLOWED_HOSTS": ".execute-api.eu-west-1.amazonaws.com",
    }
    result = subprocess.run(
        [lambda_python(), "-S", "-c", TREE_ANSWERS],
        input=json.dumps({"event": event, "cases": CASES}),
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", IN_THE_TREE)
def test_the_torch_free_tree_on_lambdas_python_answers_as_v4(name, baked, reference, tmp_path):
    replies = tree_replies(baked(name), tmp_path)
    for case, (status, body), theirs in zip(CASES, replies, reference[name], strict=True):
        assert status == 200, (name, body)
        assert spans(body["answers"]) == spans(theirs), (name, case["question"])


def int8_answers(answerer) -> list[list[dict]]:
    """Every case's answers from ``answerer``, each checked to be a span of its context."""
    replies = []
    for case in CASES:
        answers = [
            vars(a) for a in answerer.answer(case["question"], case["context"], case_options(case))
        ]
        for answer in answers:
            assert case["context"][answer["start"] : answer["end"]] == answer["answer"]
        replies.append(answers)
    return replies


@pytest.mark.parametrize("name", SERVED)
def test_a_family_bakes_in_int8_and_serves_each_window_alone(name, baked_int8):
    """``bake_model --quantize int8`` on every family: the gate's figures printed, int8 recorded
    and served as spans of their contexts, and each window's logits the same alone as among
    others (a dynamically quantized pass scales over all its windows: the engine runs each
    alone)."""
    output, report = baked_int8(name)
    assert "Quality gate (int8 against float32) passed:" in report
    record = json.loads((output / "source.json").read_text())
    assert record["quantization"] == "int8" and set(record["quality_gate"]) == {
        "probes",
        "identical_share",
        "f1",
    }
    assert session(output / "model.onnx", threads=1).quantization == "int8"
    int8_answers(load_answerer(str(output), threads=1, engine="onnx"))
    config = read_config(output)
    forward = load(output / "model.onnx", config, threads=1)
    assert_each_window_runs_alone(forward, vocabulary=config["vocab_size"], width=128)


@pytest.mark.parametrize("name", SERVED)
def test_the_gate_refuses_each_family_s_int8_graph_below_its_bounds(
    name, baked, tmp_path, monkeypatch
):
    """The gate on each family's own tokenizer and graph, bounds no graph can meet: refused
    with the figures, the float32 graph left as it was."""
    graph = tmp_path / "model.onnx"
    shutil.copy(baked(name) / "model.onnx", graph)
    before = graph.read_bytes()
    monkeypatch.setattr(quantization, "MIN_IDENTICAL", 1.01)
    with pytest.raises(quantization.QualityGateFailed, match=r"of \d+ probes .* give the float32"):
        quantization.quantize_checked(graph, baked(name))
    assert graph.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


@pytest.mark.parametrize("name", ["roberta", "xlm-roberta"])
def test_the_tree_serves_an_int8_reader_as_the_dev_engine_does(name, baked_int8, tmp_path):
    """The strong readers int8 makes fit the zip: the torch-free tree on Lambda's Python serves
    their int8 graph with the answers the same ONNX Runtime gives in process."""
    output, _ = baked_int8(name)
    expected = int8_answers(load_answerer(str(output), threads=1, engine="onnx"))
    replies = tree_replies(output, tmp_path)
    for case, (status, body), ours in zip(CASES, replies, expected, strict=True):
        assert status == 200, (name, body)
        assert spans(body["answers"]) == spans(ours), (name, case["question"])


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_family_qasite_cannot_serve_is_refused_at_bake_with_the_reason(
    name, family_dirs, tmp_path
):
    output = tmp_path / "baked"
    with pytest.raises(CommandError, match=REFUSED[name]):
        bake_model(family_dirs[name], output)
    assert list(tmp_path.iterdir()) == []


# Folders without tokenizer.json, each layout in its family (tests/families.py LEGACY_LAYOUTS),
# and RoBERTa's add_prefix_space and trim_offsets settings over its legacy and its tokenizer.json
# layouts: (family, legacy, tokenizer_config.json settings).
TOKENIZER_VARIANTS = {
    **{layout: (name, True, {}) for layout, name in LEGACY_LAYOUTS.items()},
    "vocab.json + merges.txt, add_prefix_space": ("roberta", True, {"add_prefix_space": True}),
    "vocab.json + merges.txt, no trim_offsets": ("roberta", True, {"trim_offsets": False}),
    "tokenizer.json, add_prefix_space": ("roberta", False, {"add_prefix_space": True}),
    "tokenizer.json, add_prefix_space, no trim_offsets": (
        "roberta",
        False,
        {"add_prefix_space": True, "trim_offsets": False},
    ),
}


@pytest.fixture(scope="module")
def variant_dirs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tokenizer-variants")
    return {
        variant: build_family(name, root / f"v{index}", legacy=legacy, tokenizer_args=settings)
        for index, (variant, (name, legacy, settings)) in enumerate(TOKENIZER_VARIANTS.items())
    }


@pytest.fixture(scope="module")
def variant_reference(reference_python, variant_dirs) -> dict:
    return v4_answers(reference_python, variant_dirs)


@pytest.fixture(scope="module")
def baked_variant(variant_dirs, tmp_path_factory):
    """bake(variant): the variant's folder baked by bake_model, once a module."""
    return baker(variant_dirs, tmp_path_factory)


@pytest.mark.parametrize("variant", list(TOKENIZER_VARIANTS))
def test_every_tokenizer_layout_and_setting_bakes_and_answers_as_v4(
    variant, baked_variant, variant_reference
):
    """v4 converts the legacy files (or applies the settings) itself; the bake converts them
    into tokenizer.json, checks it, and the onnx engine answers from it alone."""
    expected = variant_reference[variant]
    assert isinstance(expected, list), f"v4 cannot serve {variant}: {expected}"
    output = baked_variant(variant)
    assert (output / "tokenizer.json").is_file()
    answerer = load_answerer(str(output), threads=1, engine="onnx")
    for case, theirs in zip(CASES, expected, strict=True):
        ours = [
            vars(a) for a in answerer.answer(case["question"], case["context"], case_options(case))
        ]
        assert spans(ours) == spans(theirs), (variant, case["question"])


@pytest.mark.parametrize("variant", ["sentencepiece.bpe.model", "spm.model"])
def test_the_tree_serves_a_baked_sentencepiece_layout_as_v4(
    variant, baked_variant, variant_reference, tmp_path
):
    """Converted at bake, a SentencePiece layout needs neither sentencepiece nor transformers
    on Lambda: tokenizer.json alone."""
    replies = tree_replies(baked_variant(variant), tmp_path)
    for case, (status, body), theirs in zip(
        CASES, replies, variant_reference[variant], strict=True
    ):
        assert status == 200, (variant, body)
        assert spans(body["answers"]) == spans(theirs), (variant, case["question"])
