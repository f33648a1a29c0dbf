"""The ONNX graph of a torch model, checked against the model before it is written.

Build-time tooling (torch and transformers): ``fetch_model`` bakes the graph beside the weights,
and the onnx engine exports a model directory that has none once, caching the graph by the
content of the weights (see README, "ONNX graph").
"""

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from qa.backends.onnx import session
from qa.backends.torch import Logits, example_batch, load_model
from qa.model_files import ONNX_FILE, WEIGHTS_FILES

logger = logging.getLogger(__name__)

# torch's TorchScript-based exporter, opset 17, eager attention: the fastest graph of those
# measured that keeps parity (README, "ONNX graph"; bench/onnx_graphs.py).
OPSET = 17
EXPORT_VARIANT = f"torchscript-exporter-eager-attention-opset{OPSET}"
# Largest difference allowed between the graph's logits and the torch model's (see README,
# "ONNX graph": twice the largest measured on the real MiniLM).
TOLERANCE = 5e-5
# Padded probe batches (windows, tokens) the graph must agree with the model on: one unpadded
# row, rows with padding, a full window.
PROBES = [(1, 23), (3, 57), (2, 384)]
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT_NAMES = ["start_logits", "end_logits"]


class GraphMismatch(ValueError):
    """The exported graph's logits differ from the torch model's by more than TOLERANCE."""


def export_onnx(model, path: Path, *, dynamo: bool = False, check: bool = True) -> None:
    """Export the transformers QA ``model`` (float32) to ``path`` as an ONNX graph with dynamic
    batch and sequence axes: int64 [windows, tokens] inputs, float32 [windows, tokens] logits.

    With ``check``, the graph runs in ONNX Runtime on PROBES and is written only if its logits
    agree with the model's within TOLERANCE; GraphMismatch otherwise. ``dynamo``: torch's
    torch.export-based exporter instead of the TorchScript-based one (measured, not served).
    """
    logits = Logits(model).eval()
    shape = {"vocab_size": model.config.vocab_size, "with_token_types": logits.takes_token_types}
    names = INPUT_NAMES[: 3 if logits.takes_token_types else 2]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        exported = Path(scratch) / ONNX_FILE
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about Python values in the model
            axes = {0: "windows", 1: "tokens"}
            torch.onnx.export(
                logits, tuple(example_batch(2, 24, **shape)), str(exported),
                input_names=names, output_names=OUTPUT_NAMES, opset_version=18 if dynamo else OPSET,
                dynamo=dynamo,
                **({"dynamic_shapes": dict.fromkeys(names, axes), "external_data": False} if dynamo
                   else {"dynamic_axes": dict.fromkeys(names + OUTPUT_NAMES, axes)}),
            )
        if check:
            check_graph(logits, exported, shape)
        os.replace(exported, path)


def check_graph(logits: Logits, graph: Path, shape: dict) -> float:
    """The largest difference between ``graph``'s logits in ONNX Runtime and the model's on the
    padded PROBES; raises GraphMismatch above TOLERANCE."""
    run = session(graph, threads=torch.get_num_threads())
    worst = 0.0
    for windows, tokens in PROBES:
        probe = example_batch(windows, tokens, **shape)
        with torch.inference_mode():
            expected = logits(*probe)
        arrays = [tensor.numpy() for tensor in probe]
        token_types = arrays[2] if len(arrays) == 3 else arrays[0] * 0  # unused by such a graph
        for got, want in zip(run(arrays[0], arrays[1], token_types), expected):
            worst = max(worst, float(abs(torch.from_numpy(got) - want).max()))
    if worst > TOLERANCE:
        raise GraphMismatch(
            f"the ONNX graph's logits differ from the model's by up to {worst:.1e} "
            f"(tolerance {TOLERANCE:.0e})"
        )
    return worst


def weights_digest(directory: Path) -> str:
    """A SHA-256 over the exporter variant, torch's version, ``config.json`` and the weights:
    what the exported graph depends on (the tokenizer does not enter the graph)."""
    digest = hashlib.sha256(f"{EXPORT_VARIANT} torch {torch.__version__}".encode())
    for name in ["config.json", *WEIGHTS_FILES]:
        if (directory / name).is_file():
            digest.update(name.encode())
            with open(directory / name, "rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


@contextlib.contextmanager
def exported_graph(directory: Path, cache_dir: Path | None) -> Iterator[Path]:
    """The ONNX graph of the model in ``directory``, for as long as the context lasts:
    ``cache_dir/onnx/<weights_digest>/model.onnx``, exported (and checked) there on first use.
    Without a ``cache_dir``, or if it cannot be written, the graph is exported to a temporary
    directory, removed when the context ends (ONNX Runtime reads the file once, at load).

    Raises ModelLoadError if the weights cannot be loaded; GraphMismatch, or torch's exporter's
    own errors, if the model cannot be exported faithfully.
    """
    if cache_dir is not None:
        graph = Path(cache_dir) / "onnx" / weights_digest(directory) / ONNX_FILE
        try:
            graph.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            logger.warning("QA model: cannot cache its ONNX graph (%s)", type(error).__name__)
        else:
            if not graph.is_file():
                export_onnx(load_model(directory, attention="eager"), graph)
                logger.info("QA model exported to ONNX, cached in %s", graph.parent)
            yield graph
            return
    with tempfile.TemporaryDirectory(prefix="qasite-onnx-") as scratch:
        graph = Path(scratch) / ONNX_FILE
        export_onnx(load_model(directory, attention="eager"), graph)
        yield graph
