"""The ONNX graph of a torch model, checked against the model before it is written.

Build-time tooling (torch and transformers): ``bake_model`` bakes the graph beside the weights
(qa/model/baking/bake.py), and the onnx engine exports a model directory that has none
(qa/model/baking/graph_cache.py).
"""

import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path

import torch

from qa.model.backends.onnx import INPUT_NAMES, session
from qa.model.backends.torch import Logits, tensors
from qa.model.files import ONNX_FILE
from qa.model.probes import Probes

logger = logging.getLogger(__name__)

# torch's TorchScript-based exporter, opset 17, eager attention: the fastest graph of those
# measured that keeps parity (docs/how-it-works.md, "The ONNX graph"; bench/onnx_graphs.py).
# Changing how the graph
# is made means changing qa.model.baking.graph_cache.EXPORT_VARIANT too.
OPSET = 17
# Largest difference allowed between the graph's logits and the torch model's. A logit error of
# at most d moves each log-softmax by at most 2d, so a span's score P(start)P(end) by a factor of
# at most e^(4d): 2.5e-5 bounds every score's change by 1e-4, the parity bound against transformers
# v4. Measured on the probes: 8.1e-6 for the real MiniLM, 2.4e-7 for bert-tiny's shape.
TOLERANCE = 2.5e-5
OUTPUT_NAMES = ["start_logits", "end_logits"]
# torch's exporter keeps its state in globals (torch.onnx's GLOBALS): a second export while one
# runs in the same process fails ("GLOBALS.in_onnx_export must be False"). One at a time.
_EXPORTING = threading.Lock()


class GraphMismatch(ValueError):
    """The exported graph's logits differ from the torch model's by more than TOLERANCE."""


def export_onnx(
    model, path: Path, probes: Probes, *, dynamo: bool = False, check: bool = True
) -> None:
    """Export the transformers QA ``model`` (float32) to ``path`` as an ONNX graph with dynamic
    batch and sequence axes: int64 [windows, tokens] inputs (token_type_ids only if the model
    takes them, qa.model.inputs), float32 [windows, tokens] logits. Traced on the first of
    ``probes``' batches (qa/model/probes.py).

    With ``check``, the graph runs in ONNX Runtime on every probe batch, up to the longest
    window the model takes, and is written only if its logits agree with the model's within
    TOLERANCE; GraphMismatch otherwise (also if ONNX Runtime cannot run it at some length).
    ``dynamo``: torch's torch.export-based exporter instead of the TorchScript-based one
    (measured, not served). Safe to call from several threads: the exports run one at a time.
    """
    logits = Logits(model, token_types=probes.token_types).eval()
    names = list(INPUT_NAMES[: 3 if logits.takes_token_types else 2])
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        exported = Path(scratch) / ONNX_FILE
        with _EXPORTING, torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about Python values in the model
            axes = {0: "windows", 1: "tokens"}
            torch.onnx.export(
                logits,
                tuple(tensors(probes.batches[0], logits)),
                str(exported),
                input_names=names,
                output_names=OUTPUT_NAMES,
                opset_version=18 if dynamo else OPSET,
                dynamo=dynamo,
                **(
                    {"dynamic_shapes": dict.fromkeys(names, axes), "external_data": False}
                    if dynamo
                    else {"dynamic_axes": dict.fromkeys(names + OUTPUT_NAMES, axes)}
                ),
            )
        if check:
            worst = check_graph(logits, exported, probes)
            logger.info("QA model's ONNX graph agrees with it within %.1e", worst)
        os.replace(exported, path)


def check_graph(logits: Logits, graph: Path, probes: Probes) -> float:
    """The largest difference between ``graph``'s logits in ONNX Runtime and the model's on
    ``probes``' batches; raises GraphMismatch above TOLERANCE, or if ONNX Runtime fails on one
    (a graph that holds only at the length it was traced with)."""
    run = session(graph, threads=torch.get_num_threads())
    worst = 0.0
    for batch in probes.batches:
        with torch.inference_mode():
            expected = logits(*tensors(batch, logits))
        try:
            got = run(*batch)
        except Exception as error:
            raise GraphMismatch(
                f"the ONNX graph fails on {batch[0].shape[1]}-token windows "
                f"({type(error).__name__}: {error})"
            ) from error
        for got_logits, want in zip(got, expected, strict=True):
            worst = max(worst, float(abs(torch.from_numpy(got_logits) - want).max()))
    if worst > TOLERANCE:
        raise GraphMismatch(
            f"the ONNX graph's logits differ from the model's by up to {worst:.1e} "
            f"(tolerance {TOLERANCE:.0e})"
        )
    return worst
