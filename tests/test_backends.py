"""Choosing the engine: a baked graph, a graph exported at load, the torch fallback."""

import logging
import shutil
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from qa.backends import in_passes, load_forward, window_by_window
from qa.errors import ModelLoadError
from qa.model_files import read_config
from tests.helpers import garble


def fake_run(passes):
    """A model whose logits are a function of each row alone, recording the passes it runs."""

    def run(input_ids, attention_mask, token_type_ids):
        passes.append(len(input_ids))
        start = (input_ids * 2 + attention_mask).astype(np.float32)
        return start, start - token_type_ids

    return run


def test_many_windows_run_in_cache_sized_passes_with_the_logits_of_one_pass():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 100, (9, 384))
    mask, types = np.ones_like(ids), rng.integers(0, 2, (9, 384))
    passes = []
    # A hidden size this large allows 2 windows of 384 tokens per pass.
    split = in_passes(fake_run(passes), hidden_size=341)(ids, mask, types)
    whole = in_passes(fake_run(passes), hidden_size=0)(ids, mask, types)
    assert passes == [2, 2, 2, 2, 1, 9]
    for split_logits, whole_logits in zip(split, whole, strict=True):
        assert split_logits.shape == (9, 384)
        np.testing.assert_array_equal(split_logits, whole_logits)


def test_a_baked_graph_is_served_by_onnx_runtime(baked_model_dir, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("a baked graph is not exported again")

    monkeypatch.setattr("qa.graph_cache.exported_graph", no_export)
    forward = load_forward(baked_model_dir, read_config(baked_model_dir), engine="onnx", threads=1)
    ids = np.array([[2, 20, 3, 30, 3]])
    start, end = forward(ids, np.ones_like(ids), np.zeros_like(ids))
    assert start.shape == end.shape == (1, 5) and start.dtype == np.float32


def test_a_model_that_cannot_be_exported_is_served_by_torch_with_a_warning(
    modern_model_dir, monkeypatch, caplog
):
    import torch

    import qa.backends.torch as torch_backend

    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    served = []
    real_torch_load = torch_backend.load
    monkeypatch.setattr(
        torch_backend, "load", lambda *a, **k: served.append("torch") or real_torch_load(*a, **k)
    )
    with caplog.at_level(logging.WARNING, logger="qa.backends"):
        forward = load_forward(
            modern_model_dir, read_config(modern_model_dir), engine="onnx", threads=1
        )
    assert served == ["torch"]
    assert "could not be exported to ONNX (RuntimeError: unsupported operator)" in caplog.text
    assert "the torch engine serves it" in caplog.text
    ids = np.array([[2, 20, 3, 30, 3]])
    assert forward(ids, np.ones_like(ids), np.zeros_like(ids))[0].shape == (1, 5)


def test_weights_that_do_not_load_are_refused_not_handed_to_torch(modern_model_dir, tmp_path):
    directory = shutil.copytree(modern_model_dir, tmp_path / "model")
    garble(directory / "model.safetensors")
    with pytest.raises(ModelLoadError) as raised:
        load_forward(directory, read_config(directory), engine="onnx", threads=1)
    assert raised.value.reason == "The model weights could not be loaded."


def test_without_torch_a_directory_without_a_graph_is_a_clear_error(modern_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "qa.export", None)  # as if torch were not installed
    with pytest.raises(ModelLoadError) as raised:
        load_forward(modern_model_dir, read_config(modern_model_dir), engine="onnx", threads=1)
    assert raised.value.reason == (
        "The model has no ONNX graph (model.onnx) and torch is not installed to export one."
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"engine": "tensorflow"}, "engine must be one of"),
        ({"engine": "onnx", "fast": True}, "torch-engine option"),
    ],
)
def test_options_that_do_not_exist_are_programming_errors(baked_model_dir, options, message):
    with pytest.raises(ValueError, match=message):
        load_forward(baked_model_dir, {}, threads=1, **options)


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_window_by_window_runs_each_window_alone_and_unpadded(lengths, seed):
    """Each row's logits are those of the row alone, cut to its attention mask, whatever rows
    and padding share the batch; padding's logits are float32's lowest."""
    rng = np.random.default_rng(seed)
    width = max(lengths) + int(rng.integers(0, 5))
    ids = rng.integers(1, 100, (len(lengths), width))
    mask = (np.arange(width) < np.array(lengths)[:, None]).astype(np.int64)
    types = rng.integers(0, 2, ids.shape)
    passes = []

    def run(input_ids, attention_mask, token_type_ids):
        # Logits that depend on the whole pass, as a dynamically quantized graph's do.
        passes.append(input_ids.shape)
        start = (input_ids + input_ids.max() + input_ids.shape[1]).astype(np.float32)
        return start, start - token_type_ids

    starts, ends = window_by_window(run)(ids * mask, mask, types)
    assert passes == [(1, length) for length in lengths]
    lowest = np.finfo(np.float32).min
    for row, length in enumerate(lengths):
        alone = run(
            ids[row : row + 1, :length], mask[row : row + 1, :length], types[row : row + 1, :length]
        )
        np.testing.assert_array_equal(starts[row, :length], alone[0][0])
        np.testing.assert_array_equal(ends[row, :length], alone[1][0])
        assert (starts[row, length:] == lowest).all() and (ends[row, length:] == lowest).all()
