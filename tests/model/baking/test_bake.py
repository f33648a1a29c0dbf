"""A model baked to serve: ONNX graph, traces, safetensors, fast tokenizer, source."""

import json
import shutil

import pytest

from qa.model.baking import bake as bake_module
from qa.model.baking.bake import BakeError, bake
from qa.model.loading import load_answerer
from qa.reader.answerer import Options
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


def test_a_graph_that_disagrees_leaves_nothing_behind(legacy_model_dir, tmp_path, monkeypatch):
    from qa.model.baking.export import GraphMismatch

    def mismatch(*args, **kwargs):
        raise GraphMismatch("off")

    monkeypatch.setattr(bake_module, "export_onnx", mismatch)
    with pytest.raises(BakeError, match="ONNX graph cannot be made faithfully"):
        bake(legacy_model_dir, tmp_path / "baked", name="tiny", revision=None)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_bake_keeps_the_earlier_bake_and_a_good_one_replaces_it(
    baked_model_dir, legacy_model_dir, tmp_path, monkeypatch
):
    output = shutil.copytree(baked_model_dir, tmp_path / "baked")
    before = {path.name: path.read_bytes() for path in output.iterdir()}

    def broken_check(directory, label, **engine):
        raise BakeError(f"the baked model does not answer on the {label} engine")

    with monkeypatch.context() as patched:
        patched.setattr(bake_module, "_check", broken_check)
        with pytest.raises(BakeError, match="does not answer on the onnx engine"):
            bake(legacy_model_dir, output, name="tiny/other", revision=None)
    assert {path.name: path.read_bytes() for path in output.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["baked"]
    bake(legacy_model_dir, output, name="tiny/other", revision=None)
    assert json.loads((output / "source.json").read_text())["model"] == "tiny/other"
    assert [path.name for path in tmp_path.iterdir()] == ["baked"]


def test_fast_mode_failing_leaves_its_trace_out_and_the_bake_stands(
    legacy_model_dir, tmp_path, monkeypatch, caplog
):
    """bfloat16 is an option of the torch engine: a model that fails in it (XLNet's bake did,
    in its fast-mode check) still bakes for the default engines."""
    real = bake_module.load_answerer

    def no_bfloat16(directory, *, fast=False, **engine):
        if fast:
            raise RuntimeError("expected scalar type Float but found BFloat16")
        return real(directory, **engine)

    monkeypatch.setattr(bake_module, "load_answerer", no_bfloat16)
    answers, gate = bake(legacy_model_dir, tmp_path / "baked", name="tiny", revision=None)
    assert gate is None
    assert set(answers) == {"onnx", "torch"}
    assert not (tmp_path / "baked" / "model.bf16.torchscript.pt").exists()
    assert (tmp_path / "baked" / "model.onnx").is_file()
    assert "fast mode left out (RuntimeError: expected scalar type Float" in caplog.text


def test_a_tokenizer_that_would_tokenize_otherwise_is_refused_and_leaves_nothing(
    tmp_path, monkeypatch
):
    """Were a setting (here RoBERTa's add_prefix_space) lost on the way to tokenizer.json, the
    bake's check against transformers' tokenizer of the folder refuses it, naming the layout
    and the settings."""
    from qa.model import tokenization
    from tests.families import build_family

    source = build_family("roberta", tmp_path / "source", tokenizer_args={"add_prefix_space": True})
    monkeypatch.setattr(
        tokenization, "_prefix_space_settings", lambda tokenizer, *a, **k: tokenizer
    )
    with pytest.raises(BakeError, match=r"tokenizer\.json, settings .*'add_prefix_space': True"):
        bake(source, tmp_path / "out" / "baked", name="tiny", revision=None)
    assert list((tmp_path / "out").iterdir()) == []


def _empty(output):
    output.mkdir()


def _earlier_bake(output):
    output.mkdir()
    (output / "source.json").write_text('{"model": "earlier", "revision": null}')
    (output / "model.onnx").write_text("the earlier graph")


def _other_files(output):
    output.mkdir()
    (output / "notes.txt").write_text("keep me")


def _a_file(output):
    output.write_text("keep me")


def _a_link(output):
    output.symlink_to(output.parent)


# What --output holds before a bake -> whether the bake may replace it.
OUTPUTS = {
    "new": (None, True),
    "empty directory": (_empty, True),
    "earlier bake": (_earlier_bake, True),
    "directory of other files": (_other_files, False),
    "a file": (_a_file, False),
    "a link": (_a_link, False),
}


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_only_a_new_empty_or_baked_output_is_replaced(legacy_model_dir, tmp_path, case):
    """A bake replaces its --output whole: anything but an earlier bake or an empty directory
    is refused before any work, and left as it was."""
    make, replaced = OUTPUTS[case]
    output = tmp_path / "out" / "baked"
    output.parent.mkdir()
    if make:
        make(output)
    before = sorted(p.name for p in output.parent.iterdir())
    if replaced:
        bake(legacy_model_dir, output, name="tiny", revision=None)
        assert json.loads((output / "source.json").read_text())["model"] == "tiny"
        assert oct(output.stat().st_mode & 0o777) == oct(0o755)
    else:
        with pytest.raises(BakeError, match="is not an earlier bake"):
            bake(legacy_model_dir, output, name="tiny", revision=None)
        assert sorted(p.name for p in output.parent.iterdir()) == before
        if case != "a link":
            assert "keep me" in (
                output.read_text() if output.is_file() else (output / "notes.txt").read_text()
            )
