"""A model baked to serve: ONNX graph, traces, safetensors, fast tokenizer."""

from qa.baking import save_for_serving
from qa.engine import Options
from qa.loading import load_answerer


def test_a_baked_directory_holds_the_graph_the_traces_and_the_weights(baked_model_dir):
    assert {
        "model.onnx",
        "model.torchscript.pt",
        "model.bf16.torchscript.pt",
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } == {path.name for path in baked_model_dir.iterdir()}


def test_every_engine_answers_from_the_baked_directory_as_from_the_original(
    baked_model_dir, legacy_model_dir
):
    context = "the river was long and the city was built in the year 1200. " * 30
    options = Options(max_seq_len=64, doc_stride=16, top_k=5)
    for engine in ({"engine": "onnx"}, {"engine": "torch"}, {"engine": "torch", "fast": True}):
        baked = load_answerer(str(baked_model_dir), threads=1, **engine)
        original = load_answerer(
            str(legacy_model_dir), threads=1, trace=False, **{**engine, "engine": "torch"}
        )
        got = [(a.answer, a.start, a.end) for a in baked.answer("When?", context, options)]
        expected = [(a.answer, a.start, a.end) for a in original.answer("When?", context, options)]
        assert got == expected, engine


def test_a_graph_that_disagrees_leaves_nothing_half_baked(legacy_model_dir, tmp_path, monkeypatch):
    import pytest

    from qa import baking
    from qa.export import GraphMismatch

    def mismatch(*args, **kwargs):
        raise GraphMismatch("off")

    monkeypatch.setattr(baking, "export_onnx", mismatch)
    with pytest.raises(GraphMismatch):
        save_for_serving(legacy_model_dir, tmp_path / "baked")
    assert not any((tmp_path / "baked").iterdir())
