"""Dynamic int8 quantization of a baked graph, and the quality gate it must pass."""

import json
import logging
import shutil

import pytest

from qa.model import backends
from qa.model.backends.onnx import load, session
from qa.model.baking.quantization import (
    MIN_F1,
    MIN_IDENTICAL,
    PROBES_FILE,
    Agreement,
    DynamicQuantizationNotices,
    QualityGateFailed,
    load_probes,
    quantize_checked,
    quantize_int8,
)
from qa.model.files import read_config
from qa.model.loading import load_answerer
from qa.reader.answerer import Options
from tests.conftest import build_tiny_model
from tests.helpers import REAL_MODEL, assert_each_window_runs_alone


def test_the_probes_are_squad_style_questions_whose_answer_is_in_their_context(tiny_answerer):
    written = json.loads(PROBES_FILE.read_text(encoding="utf-8"))
    assert len(written) >= 50
    assert len({probe["question"] for probe in written}) == len(written)
    for probe in written:
        assert probe["question"].endswith("?") and probe["answer"] in probe["context"]
    probes = load_probes()
    paragraphs = {probe["context"] for probe in written}
    joined = probes[len(written) :]
    assert len(joined) == len(paragraphs)
    # The joined paragraphs take several windows: the gate sees long contexts too.
    assert min(tiny_answerer.windows(p["question"], p["context"]).count for p in joined) >= 3


def test_an_int8_graph_is_marked_smaller_and_answers(int8_model_dir, baked_model_dir):
    assert session(int8_model_dir / "model.onnx", threads=1).quantization == "int8"
    assert session(baked_model_dir / "model.onnx", threads=1).quantization is None
    answerer = load_answerer(str(int8_model_dir), threads=1)
    [best] = answerer.answer("What is my name?", "I'm Kit-Ho Mak. I come from Hong Kong.")
    assert "I'm Kit-Ho Mak. I come from Hong Kong."[best.start : best.end] == best.answer


def test_int8_logits_of_a_window_do_not_depend_on_the_windows_beside_it(int8_model_dir):
    """A dynamically quantized graph scales activations over its whole pass: the engine runs
    each window alone, so a window gets the same logits in any batch, padded or not."""
    config = read_config(int8_model_dir)
    forward = load(int8_model_dir / "model.onnx", config, threads=1)
    assert_each_window_runs_alone(forward, vocabulary=config["vocab_size"])


def test_an_int8_question_gets_the_same_answers_whatever_windows_share_its_passes(
    int8_model_dir, monkeypatch
):
    """The same answers, scores included, whether the engine's passes would hold one window,
    several or all of them (PASS_HIDDEN_FLOATS): a quantized graph's scales would move with the
    windows sharing its pass, so each window runs alone."""
    answerer = load_answerer(str(int8_model_dir), threads=1)
    context = " ".join(
        f"Kit-Ho Mak {i} comes from Hong Kong and the city is long." for i in range(60)
    )
    options = Options(top_k=3, max_seq_len=64, doc_stride=16)
    assert answerer.windows("Who comes from Hong Kong?", context, options).count > 4
    answers = []
    for floats in (1, backends.PASS_HIDDEN_FLOATS, 2**40):
        monkeypatch.setattr(backends, "PASS_HIDDEN_FLOATS", floats)
        answers.append(answerer.answer("Who comes from Hong Kong?", context, options))
    assert answers[0] == answers[1] == answers[2]


def test_quantizing_prints_no_notice_per_tensor_but_other_warnings_show(
    baked_model_dir, tmp_path, caplog
):
    """ONNX Runtime's quantizer logs a line for every activation left to run time (40 for
    MiniLM), for every MatMul of two activations, and advice meant for static quantization: none
    of it reaches the bake's output; any other warning does, and nothing stays filtered after."""
    caplog.set_level(logging.INFO)
    quantize_int8(baked_model_dir / "model.onnx", tmp_path / "model.onnx")
    assert caplog.records == []
    logging.warning("Quantized bias exceeds the range of a int32")
    assert [record.getMessage() for record in caplog.records] == [
        "Quantized bias exceeds the range of a int32"
    ]
    assert logging.getLogger().filters == []


QUANTIZER = "/venv/site-packages/onnxruntime/quantization/onnx_quantizer.py"


@pytest.mark.parametrize(
    "pathname, level, message, shown",
    [
        (QUANTIZER, logging.INFO, 'Quantization parameters for tensor:"x" not specified', False),
        (QUANTIZER, logging.INFO, "Ignore MatMul due to non constant B: /[MatMul]", False),
        (
            QUANTIZER,
            logging.WARNING,
            "Please consider to run pre-processing before quantization",
            False,
        ),
        (QUANTIZER, logging.WARNING, "Failed to infer data type of tensor: x", True),
        (QUANTIZER, logging.ERROR, "Quantization failed", True),
        ("/app/qa/model/baking/bake.py", logging.INFO, "QA model loaded in 0.3 s", True),
    ],
)
def test_the_quantizer_s_notices_are_dropped_and_its_warnings_kept(pathname, level, message, shown):
    record = logging.makeLogRecord(
        {
            "pathname": pathname,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": message,
        }
    )
    assert DynamicQuantizationNotices().filter(record) is shown


def copy_graph(directory, tmp_path):
    graph = tmp_path / "model" / "model.onnx"
    graph.parent.mkdir()
    shutil.copy(directory / "model.onnx", graph)
    return graph


def test_the_gate_keeps_an_int8_graph_that_agrees(baked_model_dir, tmp_path):
    graph = copy_graph(baked_model_dir, tmp_path)
    agreement = quantize_checked(graph, baked_model_dir)
    assert agreement.passes and agreement.probes == len(load_probes())
    assert session(graph, threads=1).quantization == "int8"
    assert graph.stat().st_size < (baked_model_dir / "model.onnx").stat().st_size
    assert list(graph.parent.iterdir()) == [graph]  # no scratch file left


@pytest.fixture(scope="module")
def other_model_graph(tmp_path_factory):
    """The graph of a tiny model with other weights: its answers are not the baked model's."""
    from qa.model.backends.torch import load_model
    from qa.model.baking.export import export_onnx
    from qa.model.files import read_config
    from qa.model.probes import probes

    source = build_tiny_model(tmp_path_factory.mktemp("other"), legacy=False, seed=7)
    graph = source / "other.onnx"
    export_onnx(load_model(source, attention="eager"), graph, probes(source, read_config(source)))
    return graph


def test_the_gate_refuses_a_graph_that_disagrees_unless_forced(
    baked_model_dir, tmp_path, monkeypatch, other_model_graph
):
    from qa.model.baking import quantization

    real = quantization.quantize_int8
    # A quantization that breaks the model: the graph of other weights, quantized.
    monkeypatch.setattr(
        quantization, "quantize_int8", lambda graph, output: real(other_model_graph, output)
    )
    graph = copy_graph(baked_model_dir, tmp_path)
    before = graph.read_bytes()
    with pytest.raises(QualityGateFailed, match=r"probes .* F1 agreement .*--force") as refused:
        quantize_checked(graph, baked_model_dir)
    assert graph.read_bytes() == before and list(graph.parent.iterdir()) == [graph]
    print(refused.value)
    forced = quantize_checked(graph, baked_model_dir, force=True)
    assert not forced.passes
    assert session(graph, threads=1).quantization == "int8"


@pytest.mark.parametrize(
    ("identical", "f1", "passes"),
    [
        (100, 100.0, True),
        (round(100 * MIN_IDENTICAL), MIN_F1, True),
        (round(100 * MIN_IDENTICAL) - 1, 99.0, False),
        (99, MIN_F1 - 0.1, False),
    ],
)
def test_the_gate_bounds(identical, f1, passes):
    agreement = Agreement(probes=100, identical=identical, f1=f1)
    assert agreement.passes is passes
    assert f"{identical} of 100 probes" in str(agreement)
    assert agreement.record() == {"probes": 100, "identical_share": identical / 100, "f1": f1}


@pytest.mark.quality
def test_the_real_model_passes_the_gate(tmp_path):
    if not REAL_MODEL.is_dir():
        pytest.skip(f"needs the trained model in {REAL_MODEL}")
    from qa.model.backends.torch import load_model
    from qa.model.baking.export import export_onnx
    from qa.model.files import read_config
    from qa.model.probes import probes

    graph = tmp_path / "model.onnx"
    export_onnx(
        load_model(REAL_MODEL, attention="eager"),
        graph,
        probes(REAL_MODEL, read_config(REAL_MODEL)),
    )
    agreement = quantize_checked(graph, REAL_MODEL)
    print(agreement)
    assert agreement.passes
