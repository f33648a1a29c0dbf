"""The ONNX graph: exported with dynamic axes, refused when it disagrees, cached by content."""

import numpy as np
import pytest
import torch

from qa.model.backends.onnx import session
from qa.model.backends.torch import load_model
from qa.model.baking.export import GraphMismatch, export_onnx
from qa.model.files import read_config
from qa.model.probes import probes


def probed(directory):
    return probes(directory, read_config(directory))


def test_the_graph_takes_any_number_of_windows_of_any_length(modern_model_dir, tmp_path):
    export_onnx(load_model(modern_model_dir), tmp_path / "model.onnx", probed(modern_model_dir))
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
        torch.onnx,
        "export",
        lambda module, *args, **kwargs: real_export(
            type(module)(other, token_types=True).eval(), *args, **kwargs
        ),
    )
    with pytest.raises(GraphMismatch, match=r"differ from the model's by up to 1\.0e-03"):
        export_onnx(model, tmp_path / "model.onnx", probed(modern_model_dir))
    assert list(tmp_path.iterdir()) == []
