"""Model backends: what turns a model directory into the engine's Forward function.

Two engines, chosen by the QA_ENGINE setting, give the same logits (within float32 rounding):

- ``onnx``: ONNX Runtime on the graph ``bake_model`` baked (``model.onnx``); imports neither torch
  nor transformers. A directory without one gets a graph exported once, cached (qa/graph_cache.py),
  and runs on torch if the export fails: never silently (one warning line says why, and health
  names the engine that serves).
- ``torch``: the TorchScript trace ``bake_model`` baked, or the transformers model traced at load
  (run as it is if it cannot be traced). Only this engine has fast mode (bfloat16).

Each backend module makes a Run (one pass of the model) and has ``load(...) -> Forward``, the Run in
cache-sized passes (in_passes), or window by window for a quantized graph (window_by_window);
load_forward picks the backend and says which one serves.
"""

import logging
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from qa.engine import Forward
from qa.errors import ModelLoadError, one_line
from qa.imports import IMPORT_LOCK
from qa.model_files import ONNX_FILE

logger = logging.getLogger(__name__)

ENGINES = ("onnx", "torch")


class Served(NamedTuple):
    """The model's Forward, and the engine that computes it (one of ENGINES): the one asked
    for, or torch where the onnx engine could not export the model."""

    engine: str
    forward: Forward


class Run(Protocol):
    """One pass of a model: int64 [windows, tokens] arrays in, float32 (start, end) logits of the
    same shape out."""

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


# Windows per forward pass are capped so that a pass's hidden states (windows x tokens x hidden
# floats) stay about this size, near a core's L2 cache: one big pass runs slower per token than
# several cache-sized ones, for the same results (README, "How it works"). Small passes also bound
# the scratch memory a long context needs, in either engine.
PASS_HIDDEN_FLOATS = 2**18


def in_passes(run: Run, *, hidden_size: int) -> Forward:
    """The engine's Forward over ``run``, running a long context's windows in cache-sized passes
    (PASS_HIDDEN_FLOATS; ``hidden_size`` 0 means one pass)."""

    def forward(input_ids, attention_mask, token_type_ids):
        windows, tokens = input_ids.shape
        rows = (
            max(1, round(PASS_HIDDEN_FLOATS / (tokens * hidden_size))) if hidden_size else windows
        )
        if rows >= windows:
            return run(input_ids, attention_mask, token_type_ids)
        starts, ends = zip(
            *(
                run(
                    input_ids[first : first + rows],
                    attention_mask[first : first + rows],
                    token_type_ids[first : first + rows],
                )
                for first in range(0, windows, rows)
            ),
            strict=True,
        )
        return np.concatenate(starts), np.concatenate(ends)

    return forward


def window_by_window(run: Run) -> Forward:
    """The engine's Forward over ``run``, each window in a pass of its own and without its
    padding (its first ``attention_mask.sum()`` tokens; the logits of padding come out as
    float32's lowest value).

    For graphs whose results depend on the whole pass: a dynamically quantized graph
    (qa/quantization.py) scales each activation tensor by its largest value over the pass, so a
    window's logits would change with the windows (and padding) beside it. Run alone, a window
    gets the same logits whatever its request, batch or pass size.
    """

    def forward(input_ids, attention_mask, token_type_ids):
        shape = input_ids.shape
        starts = np.full(shape, np.finfo(np.float32).min, dtype=np.float32)
        ends = starts.copy()
        for row, length in enumerate(attention_mask.sum(axis=1)):
            one = slice(row, row + 1), slice(0, max(int(length), 1))
            starts[one], ends[one] = run(input_ids[one], attention_mask[one], token_type_ids[one])
        return starts, ends

    return forward


def load_forward(
    directory: Path,
    config: dict,
    *,
    engine: str,
    threads: int,
    cache_dir: Path | None = None,
    fast: bool = False,
    trace: bool = True,
) -> Served:
    """The Forward of the model in ``directory`` (whose parsed ``config.json`` is ``config``)
    on ``engine`` ("onnx" or "torch"), computing on ``threads`` CPU threads, and the engine that
    serves it.

    onnx: a directory without a baked graph is exported, into ``cache_dir`` (see
    qa.graph_cache.exported_graph); if that fails, the torch engine serves, with a warning of
    one line that says why.
    ``fast`` (bfloat16) and ``trace`` (False: the transformers model as it is) are torch-engine
    options. Raises ModelLoadError if the model cannot be loaded on either engine.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if engine == "onnx" and fast:
        raise ValueError("fast mode (bfloat16) is a torch-engine option")
    if engine == "onnx":
        from qa.backends import onnx

        if (directory / ONNX_FILE).is_file():
            return Served("onnx", onnx.load(directory / ONNX_FILE, config, threads=threads))
        from qa.graph_cache import exported_graph

        try:
            with exported_graph(directory, cache_dir) as graph:
                return Served("onnx", onnx.load(graph, config, threads=threads))
        except ModelLoadError:
            raise  # the weights themselves cannot be loaded: torch could not serve them either
        except Exception as error:
            logger.warning(
                "QA_ENGINE=onnx: the model could not be exported to ONNX (%s); "
                "the torch engine serves it",
                one_line(error),
            )
    with IMPORT_LOCK:
        from qa.backends import torch

    return Served("torch", torch.load(directory, config, threads=threads, fast=fast, trace=trace))
