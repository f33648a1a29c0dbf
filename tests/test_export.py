"""The ONNX graph: exported with dynamic axes, refused when it disagrees, cached by content."""

import shutil

import numpy as np
import pytest
import torch

from qa import export
from qa.backends.onnx import session
from qa.backends.torch import load_model
from qa.export import GraphMismatch, export_onnx, exported_graph


def test_the_graph_takes_any_number_of_windows_of_any_length(modern_model_dir, tmp_path):
    export_onnx(load_model(modern_model_dir), tmp_path / "model.onnx")
    run = session(tmp_path / "model.onnx", threads=1)
    for windows, tokens in [(1, 1), (1, 512), (17, 384), (5, 3)]:
        ids = np.full((windows, tokens), 7)
        start, end = run(ids, np.ones_like(ids), np.zeros_like(ids))
        assert start.shape == end.shape == (windows, tokens)


def test_a_graph_that_disagrees_with_the_model_is_not_written(
    modern_model_dir, tmp_path, monkeypatch
):
    model = load_model(modern_model_dir)
    other = load_model(modern_model_dir)
    with torch.no_grad():
        other.qa_outputs.bias += 1e-3  # a graph slightly off: what the probe must catch
    real_export = torch.onnx.export
    monkeypatch.setattr(
        torch.onnx, "export",
        lambda module, *args, **kwargs: real_export(type(module)(other).eval(), *args, **kwargs),
    )
    with pytest.raises(GraphMismatch, match=r"differ from the model's by up to 1\.0e-03"):
        export_onnx(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_exported_graph_is_cached_by_the_content_of_the_weights(
    modern_model_dir, tmp_path, monkeypatch
):
    exports = []
    real_export = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: exports.append(1) or real_export(*a, **k))
    model = shutil.copytree(modern_model_dir, tmp_path / "model")
    with exported_graph(model, tmp_path / "cache") as first:
        pass
    with exported_graph(model, tmp_path / "cache") as second:
        pass
    assert first == second and first.is_file() and len(exports) == 1
    assert first.parent.parent == tmp_path / "cache" / "onnx"
    (model / "config.json").write_text((model / "config.json").read_text().replace("}", ' }'))
    with exported_graph(model, tmp_path / "cache") as changed:
        pass
    assert changed != first and len(exports) == 2


def test_without_a_usable_cache_the_graph_lives_as_long_as_the_load(
    modern_model_dir, tmp_path
):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    for cache_dir in (None, not_a_directory / "cache"):
        with exported_graph(modern_model_dir, cache_dir) as graph:
            assert graph.is_file() and not graph.is_relative_to(tmp_path)
        assert not graph.exists()
