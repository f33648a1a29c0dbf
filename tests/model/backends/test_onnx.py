"""The onnx engine: ONNX Runtime gives the torch model's logits, and the spans it decodes."""

import shutil

import numpy as np
import onnxruntime
import pytest

from qa.model.backends import onnx
from qa.model.backends.onnx import session
from qa.model.loading import load_answerer
from qa.reader.answerer import Options
from qa.reader.errors import ModelLoadError
from tests.helpers import garble, truncate

LONG_CONTEXT = "the river was long and the city was built in the year 1200 by kit. " * 40


def test_onnx_runtime_gives_the_logits_of_the_torchscript_trace_on_padded_batches(
    baked_model_dir,
):
    from qa.model.backends import torch as torch_backend
    from qa.model.files import read_config

    config = read_config(baked_model_dir)
    on_onnx = onnx.load(baked_model_dir / "model.onnx", config, threads=1)
    on_torch = torch_backend.load(baked_model_dir, config, threads=1, fast=False, trace=True)
    rng = np.random.default_rng(2)
    for batch, length in [(1, 5), (3, 57), (7, 384), (18, 100)]:
        ids = rng.integers(0, config["vocab_size"], (batch, length))
        mask = np.ones_like(ids)
        mask[-1, length // 2 :] = 0
        mask[0, length - 1 :] = 0
        types = (np.arange(length) >= length // 4) * mask
        for got, expected in zip(
            on_onnx(ids * mask, mask, types), on_torch(ids * mask, mask, types), strict=True
        ):
            np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "question, options",
    [
        ("When was it built?", Options()),
        ("Who?", Options(max_seq_len=64, doc_stride=16, top_k=5)),
        ("Where?", Options(max_seq_len=48, doc_stride=8, top_k=3, handle_impossible_answer=True)),
    ],
)
def test_the_onnx_engine_answers_as_the_torch_engine(baked_model_dir, question, options):
    on_onnx = load_answerer(str(baked_model_dir), threads=1, engine="onnx")
    on_torch = load_answerer(str(baked_model_dir), threads=1, engine="torch")
    for context in (LONG_CONTEXT, LONG_CONTEXT[:300], "Kit-Ho Mak is here."):
        got = on_onnx.answer(question, context, options)
        expected = on_torch.answer(question, context, options)
        assert [(a.answer, a.start, a.end) for a in got] == [
            (a.answer, a.start, a.end) for a in expected
        ]
        assert [a.score for a in got] == pytest.approx([a.score for a in expected], abs=1e-5)


def test_session_options_threads_sequential_and_the_optimisation_level(
    baked_model_dir, monkeypatch
):
    created = []
    real = onnxruntime.InferenceSession
    monkeypatch.setattr(
        onnxruntime, "InferenceSession", lambda *a, **k: created.append(a[1]) or real(*a, **k)
    )
    session(baked_model_dir / "model.onnx", threads=3)
    [options] = created
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    assert options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.enable_cpu_mem_arena


def test_a_request_of_several_windows_gives_the_arena_back_afterwards(baked_model_dir, monkeypatch):
    runs = []
    real_session = onnx.session

    def recording_session(*args, **kwargs):
        run = real_session(*args, **kwargs)

        def recorded(input_ids, *rest, release_memory=False):
            runs.append((input_ids.shape, release_memory))
            return run(input_ids, *rest, release_memory=release_memory)

        recorded.quantization = run.quantization
        return recorded

    monkeypatch.setattr(onnx, "session", recording_session)
    forward = onnx.load(baked_model_dir / "model.onnx", {"hidden_size": 32}, threads=1)
    ids = np.arange(3 * 40).reshape(3, 40) % 50
    mask = np.ones_like(ids)
    mask[-1, 20:] = 0
    several = forward(ids, mask, mask * 0)
    one = forward(ids[:1], mask[:1], mask[:1] * 0)
    assert runs == [((3, 40), False), ((1, 1), True), ((1, 40), False)]
    np.testing.assert_allclose(several[0][:1], one[0], atol=1e-6)  # the release changes nothing


@pytest.mark.parametrize(
    "breaks, reason",
    [
        (garble, "The model weights could not be loaded."),
        (truncate, "The model weights could not be loaded."),
    ],
    ids=["garbage", "truncated"],
)
def test_a_broken_graph_is_refused_with_a_reason_free_of_paths(
    baked_model_dir, tmp_path, breaks, reason
):
    graph = shutil.copy(baked_model_dir / "model.onnx", tmp_path / "model.onnx")
    breaks(graph)
    with pytest.raises(ModelLoadError) as raised:
        session(graph, threads=1)
    assert raised.value.reason == reason


def test_a_weights_file_other_than_the_graph_s_is_refused(baked_model_dir, tmp_path):
    """Another bake's file of the same size (its bytes here reversed) would load and answer:
    the graph's recorded fingerprint tells it apart."""
    for name in ("model.optimized.onnx", "model.optimized.onnx.data"):
        shutil.copy(baked_model_dir / name, tmp_path)
    data = tmp_path / "model.optimized.onnx.data"
    data.write_bytes(data.read_bytes()[::-1])
    with pytest.raises(ModelLoadError) as raised:
        session(tmp_path / "model.optimized.onnx", threads=1)
    assert raised.value.reason == "The graph's weights file is not the one it was saved with."


def test_a_graph_of_another_kind_of_model_is_refused(tmp_path):
    import onnx as onnx_format
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["pixels"], ["label"])],
        "classifier",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("label", TensorProto.FLOAT, [1, 3])],
    )
    onnx_format.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        tmp_path / "model.onnx",
    )
    with pytest.raises(ModelLoadError, match="not a question-answering model"):
        session(tmp_path / "model.onnx", threads=1)


def test_a_quantized_graph_runs_window_by_window_and_others_in_passes(
    baked_model_dir, int8_model_dir, monkeypatch
):
    """The graph's own metadata (qasite.quantization) decides, not the directory it is in."""
    chosen = []
    monkeypatch.setattr(onnx, "window_by_window", lambda run: chosen.append("window") or run)
    monkeypatch.setattr(onnx, "in_passes", lambda run, **_: chosen.append("passes") or run)
    onnx.load(int8_model_dir / "model.onnx", {"hidden_size": 32}, threads=1)
    onnx.load(baked_model_dir / "model.onnx", {"hidden_size": 32}, threads=1)
    assert chosen == ["window", "passes"]
