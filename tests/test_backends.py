"""Choosing the engine: a baked graph, a graph exported at load, the torch fallback."""

import logging
import re
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


def refuse_to_export(monkeypatch, error: Exception) -> None:
    """torch's ONNX exporter fails with ``error``."""
    import torch

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch.onnx, "export", refuse)


def graph_changes_between_calls(monkeypatch) -> None:
    """The model's logits move by the number of calls so far: a trace bakes that number in, so
    torch.jit.trace's own check finds the graphs differ (and raises with both graphs, thousands
    of lines) and the torch engine's probe finds the trace disagrees with the model."""
    from qa.backends.torch import Logits

    original = Logits.forward

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        self.calls = getattr(self, "calls", 0) + 1
        start, end = original(self, input_ids, attention_mask, token_type_ids)
        return start + self.calls, end

    monkeypatch.setattr(Logits, "forward", forward)


def half_imported_once(monkeypatch) -> None:
    """The export's first load of the model finds transformers half imported by another thread
    (as two loads at once did, before a process had one)."""
    import qa.backends.torch as torch_backend

    real_load_model = torch_backend.load_model
    calls = []

    def load_model(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ImportError("cannot import name 'AutoModelForQuestionAnswering'")
        return real_load_model(*args, **kwargs)

    monkeypatch.setattr(torch_backend, "load_model", load_model)


def no_export(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a baked graph is not exported again")

    monkeypatch.setattr("qa.graph_cache.exported_graph", refuse)


FALLBACK = (
    r"QA_ENGINE=onnx: the model could not be exported to ONNX \({}\); the torch engine serves it"
)
LONG_ERROR = "unsupported operator aten::fancy\n" + "graph line\n" * 2000
# How each engine serves a model, and when another engine serves it, the one line that says why:
# (directory, engine asked, fault, the engine that serves, the warnings logged, as patterns).
SERVING = {
    "baked graph on onnx": ("baked", "onnx", no_export, "onnx", []),
    "graph exported at load": ("modern", "onnx", None, "onnx", []),
    "exporter fails": (
        "modern",
        "onnx",
        lambda m: refuse_to_export(m, RuntimeError("unsupported operator")),
        "torch",
        [FALLBACK.format(re.escape("RuntimeError: unsupported operator"))],
    ),
    "exporter fails at length": (
        "modern",
        "onnx",
        lambda m: refuse_to_export(m, RuntimeError(LONG_ERROR)),
        "torch",
        [
            FALLBACK.format(
                re.escape("RuntimeError: unsupported operator aten::fancy (+2000 lines)")
            )
        ],
    ),
    "transformers half imported": (
        "modern",
        "onnx",
        lambda m: half_imported_once(m),
        "torch",
        [FALLBACK.format("ImportError: cannot import name 'AutoModelForQuestionAnswering'")],
    ),
    "graph disagrees with the model": (
        "modern",
        "onnx",
        lambda m: m.setattr("qa.export.TOLERANCE", -1.0),
        "torch",
        [
            FALLBACK.format(
                "GraphMismatch: the ONNX graph's logits differ from the model's by up to "
                r"\S+ \(tolerance -1e\+00\)"
            )
        ],
    ),
    "baked trace on torch": ("baked", "torch", None, "torch", []),
    "traced at load on torch": ("modern", "torch", None, "torch", []),
    "graph changes between calls": (
        "modern",
        "torch",
        graph_changes_between_calls,
        "torch",
        [r"QA model runs untraced \(ValueError: the traced model disagrees with the model\)"],
    ),
}


@pytest.mark.parametrize("case", list(SERVING))
def test_the_engine_that_serves_is_named_and_a_fallback_says_why_in_one_line(
    request, monkeypatch, caplog, capfd, case
):
    directory, engine, fault, serves, warnings = SERVING[case]
    directory = request.getfixturevalue(f"{directory}_model_dir")
    if fault:
        fault(monkeypatch)
    capfd.readouterr()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qa"):
        served = load_forward(directory, read_config(directory), engine=engine, threads=1)
    assert served.engine == serves
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == len(warnings)
    for message, expected in zip(logged, warnings, strict=True):
        assert re.fullmatch(expected, message), message
    printed = capfd.readouterr()
    assert "Graphs differed" not in printed.out + printed.err
    ids = np.array([[2, 20, 3, 30, 3]])
    start, end = served.forward(ids, np.ones_like(ids), np.zeros_like(ids))
    assert start.shape == end.shape == (1, 5) and start.dtype == np.float32


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
