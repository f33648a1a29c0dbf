"""Loading an answerer on either engine, choosing the engine (a baked graph, a graph exported at
load, the torch fallback said in one line), refusing broken models clearly, and serving a baked
graph without torch or transformers."""

import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa.model.files import read_config
from qa.model.loading import OPTIMIZED_BROKEN, load_answerer, load_forward
from qa.reader.errors import ModelLoadError
from qa.reader.examples import KIT_HO
from tests.helpers import PATIENCE, REPO, garble

ENGINES = ["onnx", "torch"]


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
    from qa.model.backends.torch import Logits

    original = Logits.forward

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        self.calls = getattr(self, "calls", 0) + 1
        start, end = original(self, input_ids, attention_mask, token_type_ids)
        return start + self.calls, end

    monkeypatch.setattr(Logits, "forward", forward)


def half_imported_once(monkeypatch) -> None:
    """The export's first load of the model finds transformers half imported by another thread
    (as two loads at once did, before a process had one)."""
    import qa.model.backends.torch as torch_backend

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

    monkeypatch.setattr("qa.model.baking.graph_cache.exported_graph", refuse)


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
        lambda m: m.setattr("qa.model.baking.export.TOLERANCE", -1.0),
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
    monkeypatch.setitem(
        sys.modules, "qa.model.baking.export", None
    )  # as if torch were not installed
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


@pytest.mark.parametrize("engine", ENGINES)
def test_both_layouts_load_and_answer_with_exact_offsets(tiny_model_dir, engine):
    answerer = load_answerer(str(tiny_model_dir), threads=1, engine=engine)
    context = KIT_HO["context"]
    [best] = answerer.answer(KIT_HO["question"], context)
    assert context[best.start : best.end] == best.answer
    assert answerer.model_max_length == 512


@pytest.mark.parametrize("engine", ENGINES)
def test_a_broken_model_is_refused_at_load_with_a_reason_free_of_paths(broken_model, engine):
    with pytest.raises(ModelLoadError) as raised:
        load_answerer(str(broken_model.directory), threads=1, engine=engine)
    assert raised.value.reason == broken_model.reason
    assert "/" not in raised.value.reason


def test_a_directory_without_a_graph_is_exported_once_into_the_cache(modern_model_dir, tmp_path):
    for _ in range(2):
        load_answerer(str(modern_model_dir), threads=1, cache_dir=tmp_path)
    [graph] = (tmp_path / "onnx").glob("*/model.onnx")
    assert graph.stat().st_size > 0


def test_the_optimized_graph_serves_where_there_is_one_else_the_baked_graph(
    baked_model_dir, tmp_path, monkeypatch
):
    """The tree holds only the optimized graph; a directory whose bake predates it, only
    model.onnx."""
    from qa.model.backends import onnx

    served = []
    monkeypatch.setattr(onnx, "load", lambda graph, config, **_: served.append(graph.name))
    config = read_config(baked_model_dir)
    load_forward(baked_model_dir, config, engine="onnx", threads=1)
    older = shutil.copytree(baked_model_dir, tmp_path / "older")
    (older / "model.optimized.onnx").unlink()
    load_forward(older, config, engine="onnx", threads=1)
    assert served == ["model.optimized.onnx", "model.onnx"]


def test_a_graph_newer_than_its_optimized_graph_serves_with_a_warning(
    baked_model_dir, tmp_path, monkeypatch, caplog
):
    """model.onnx changed after the bake (quantized by hand, say): the optimized graph made from
    the earlier one would answer for a model that is no longer there."""
    from qa.model.backends import onnx

    served = []
    monkeypatch.setattr(onnx, "load", lambda graph, config, **_: served.append(graph.name))
    directory = shutil.copytree(baked_model_dir, tmp_path / "model")
    optimized = (directory / "model.optimized.onnx").stat().st_mtime_ns
    os.utime(directory / "model.onnx", ns=(optimized + 10**9, optimized + 10**9))
    with caplog.at_level(logging.WARNING, logger="qa.model.loading"):
        load_forward(directory, read_config(directory), engine="onnx", threads=1)
    assert served == ["model.onnx"]
    assert "model.onnx is newer than model.optimized.onnx" in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data.unlink(),  # copied without it (a glob of *.onnx)
        lambda data: os.truncate(data, data.stat().st_size // 2),  # a copy cut short
        lambda data: data.write_bytes(data.read_bytes()[::-1]),  # another bake's, the same size
    ],
    ids=["missing", "truncated", "another"],
)
def test_an_optimized_graph_without_its_whole_data_file_is_refused_saying_so(
    baked_model_dir, tmp_path, damage
):
    directory = shutil.copytree(baked_model_dir, tmp_path / "model")
    damage(directory / "model.optimized.onnx.data")
    with pytest.raises(ModelLoadError) as raised:
        load_forward(directory, read_config(directory), engine="onnx", threads=1)
    assert raised.value.reason == OPTIMIZED_BROKEN


def test_serving_a_baked_graph_imports_neither_torch_nor_transformers(baked_model_dir):
    script = (
        "import sys\n"
        "from qa.model.loading import load_answerer, load_forward\n"
        f"answerer = load_answerer({str(baked_model_dir)!r}, threads=1, engine='onnx')\n"
        "[best] = answerer.answer('Who?', 'Kit-Ho Mak is here. ' * 200)\n"
        "assert best.answer, best\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'transformers'}))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=PATIENCE
    )
    assert fresh.stdout.strip() == "[]", fresh.stderr


def test_the_baked_trace_loads_without_transformers(baked_model_dir):
    script = (
        "import sys\n"
        "from qa.model.loading import load_answerer, load_forward\n"
        "for fast in (False, True):\n"
        f"    load_answerer({str(baked_model_dir)!r}, threads=1, engine='torch', fast=fast)"
        ".answer('When?', 'In 1200.')\n"
        "print('transformers' in sys.modules)\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=PATIENCE
    )
    assert fresh.stdout.strip() == "False", fresh.stderr
