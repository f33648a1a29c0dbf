"""Model backends: what turns a model directory into the reader's Forward function
(qa.reader.answerer.Forward).

Two engines, chosen by the QA_ENGINE setting, give the same logits (within float32 rounding):

- ``onnx``: ONNX Runtime on the graph ``bake_model`` baked (``model.onnx``); imports neither torch
  nor transformers. (A directory without one: qa.model.loading exports and caches its graph.)
- ``torch``: the TorchScript trace ``bake_model`` baked, or the transformers model traced at load
  (run as it is if it cannot be traced). Only this engine has fast mode (bfloat16).

Each backend module makes a Run (one pass of the model) and has ``load(...) -> Forward``, the Run in
cache-sized passes (in_passes), or window by window for a quantized graph (window_by_window);
qa.model.loading.load_forward picks the backend and says which one serves.
"""

from pathlib import Path
from typing import Protocol

import numpy as np

from qa.reader.answerer import Forward


class Run(Protocol):
    """One pass of a model: int64 [windows, tokens] arrays in, float32 (start, end) logits of the
    same shape out."""

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


CPUINFO = Path("/proc/cpuinfo")


def cpu_fields(cpuinfo: Path = CPUINFO) -> dict[str, str]:
    """``cpuinfo``'s fields (Linux's /proc/cpuinfo: "vendor_id", "model name", "flags"...), the
    first value of each (its first processor's); {} where the file is not there."""
    fields: dict[str, str] = {}
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


# Windows per forward pass are capped so that a pass's hidden states (windows x tokens x hidden
# floats) stay about this many floats: one big pass runs slower per token than several smaller
# ones, for the same results (bit for bit), and small passes bound the scratch memory a long
# context needs, in either engine. The best size depends on the CPU, and is chosen by its vendor
# (measured, 1 thread, interleaved: docs/benchmark.md, "float32"): Intel's Xeons (Ice Lake-SP;
# the AMX Xeon of the first prototype too) run fastest with one 384-token window per pass, AMD's
# EPYC (Zen 4, 1 MiB of L2) with passes of about its L2, which a CPU not measured (Graviton,
# others) keeps too.
PASS_HIDDEN_FLOATS_BY_VENDOR = {"GenuineIntel": 2**16, "AuthenticAMD": 2**18}
DEFAULT_PASS_HIDDEN_FLOATS = 2**18


def pass_hidden_floats(fields: dict[str, str]) -> int:
    """Hidden-state floats per forward pass for the CPU whose cpu_fields are ``fields``."""
    return PASS_HIDDEN_FLOATS_BY_VENDOR.get(fields.get("vendor_id", ""), DEFAULT_PASS_HIDDEN_FLOATS)


PASS_HIDDEN_FLOATS = pass_hidden_floats(cpu_fields())


def in_passes(run: Run, *, hidden_size: int) -> Forward:
    """The reader's Forward over ``run``, running a long context's windows in passes of about
    PASS_HIDDEN_FLOATS hidden-state floats, at least one window each (``hidden_size`` 0 means one
    pass)."""

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
    """The reader's Forward over ``run``, each window in a pass of its own and without its
    padding (its first ``attention_mask.sum()`` tokens; the logits of padding come out as
    float32's lowest value).

    For graphs whose results depend on the whole pass: a dynamically quantized graph
    (qa/model/baking/quantization.py) scales each activation tensor by its largest value over the
    pass, so a
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
