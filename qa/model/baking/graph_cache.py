"""ONNX graphs exported at load from model directories that have none, cached by their content.

Torch is imported only to export: a graph already in the cache loads without it.
"""

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from qa.model.files import ONNX_FILE, WEIGHTS_FILES, read_config
from qa.model.imports import IMPORT_LOCK
from qa.model.probes import probes
from qa.reader.errors import ModelLoadError

logger = logging.getLogger(__name__)

# Changes to how qa/model/baking/export.py exports (exporter, attention, opset) must change this,
# so that a
# graph cached by an earlier version is not served.
EXPORT_VARIANT = "torchscript-exporter eager-attention opset17 tokenizer-probes"


def _torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "absent"


def weights_digest(directory: Path) -> str:
    """A SHA-256 over the export variant, torch's version, ``config.json``, the tokenizer's
    settings (which decide the graph's inputs, qa.model.inputs) and the weights: what the
    exported graph depends on. Hashing the weights costs far less than exporting them again."""
    digest = hashlib.sha256(f"{EXPORT_VARIANT} torch {_torch_version()}".encode())
    settings = ["tokenizer_config.json", "special_tokens_map.json"]
    for name in ["config.json", *settings, *WEIGHTS_FILES]:
        if (directory / name).is_file():
            digest.update(name.encode())
            with open(directory / name, "rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


def _export(directory: Path, graph: Path) -> None:
    try:
        with IMPORT_LOCK:
            from qa.model.backends.torch import load_model
            from qa.model.baking.export import export_onnx
    except ImportError as error:  # a runtime without torch, and no graph baked
        raise ModelLoadError(
            f"The model has no ONNX graph ({ONNX_FILE}) and torch is not installed to export one.",
            str(error),
        ) from error
    model = load_model(directory, attention="eager")
    export_onnx(model, graph, probes(directory, read_config(directory)))


@contextlib.contextmanager
def exported_graph(directory: Path, cache_dir: Path | None) -> Iterator[Path]:
    """The ONNX graph of the model in ``directory``, for as long as the context lasts:
    ``cache_dir/onnx/<weights_digest>/model.onnx``, exported (and checked) there on first use.
    Without a ``cache_dir``, or if it cannot be written, the graph is exported to a temporary
    directory, removed when the context ends (ONNX Runtime reads the file once, at load).

    Raises ModelLoadError if torch is not installed or the weights cannot be loaded;
    qa.model.baking.export.GraphMismatch, or torch's exporter's own errors, if the model cannot be
    exported
    faithfully.
    """
    if cache_dir is not None:
        graph = Path(cache_dir) / "onnx" / weights_digest(directory) / ONNX_FILE
        try:
            graph.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            logger.warning("QA model: cannot cache its ONNX graph (%s)", type(error).__name__)
        else:
            if not graph.is_file():
                _export(directory, graph)
                logger.info("QA model exported to ONNX, cached in %s", graph.parent)
            yield graph
            return
    with tempfile.TemporaryDirectory(prefix="qasite-onnx-") as scratch:
        graph = Path(scratch) / ONNX_FILE
        _export(directory, graph)
        yield graph
