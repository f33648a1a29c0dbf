"""A model baked to serve: ONNX graph, traces, safetensors, fast tokenizer, source."""

import json

from qa.baking import save_for_serving
from qa.engine import Options
from qa.loading import load_answerer
from tests.helpers import runtime_tree


def test_a_baked_directory_holds_what_the_runtime_tree_list_names(baked_model_dir):
    """The graph, the traces, the weights, the tokenizer and the source: docker/runtime-tree.txt
    says which the tree keeps ("serve") and which it leaves out ("bake")."""
    expected = runtime_tree("serve") + runtime_tree("bake")
    assert sorted(path.name for path in baked_model_dir.iterdir()) == sorted(expected)
    assert json.loads((baked_model_dir / "source.json").read_text()) == {
        "model": "tiny/legacy",
        "revision": None,
    }


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
        save_for_serving(legacy_model_dir, tmp_path / "baked", name="tiny", revision=None)
    assert not any((tmp_path / "baked").iterdir())
