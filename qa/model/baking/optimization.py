"""The baked graph as ONNX Runtime loads it fastest: optimized once, at bake time, with its weights
in a file of their own beside it, which ONNX Runtime maps into memory instead of parsing and
copying them out of the graph.

Build-time: ``bake_model`` writes it last, from the graph it serves (float32 or int8;
qa/model/baking/bake.py), and the onnx engine serves it where a directory has it
(qa.model.loading.load_forward). Creating the session then skips reading the weights through
protobuf, turning them into tensors and most of the graph optimizations: for a roberta-base-shaped
int8 graph (125 MB) 0.10 s instead of 0.39 s; docs/how-it-works.md ("The ONNX graph") has the
measurements and what else was tried.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx as onnx_format
import onnxruntime

from qa.model.backends.onnx import DATA_FINGERPRINT_KEY, OPTIMIZATION_LEVELS, session
from qa.model.files import OPTIMIZED_DATA_FILE, OPTIMIZED_ONNX_FILE, data_fingerprint
from qa.model.probes import Probes

# ONNX Runtime's graph optimizations up to "extended": constant folding and the fusions of its CPU
# provider (attention's MatMul and scale, Gelu, skip layer normalization, int8 MatMuls). Not
# "all", whose layout transformations ONNX Runtime marks as specific to the CPU that saved them;
# the session that serves the graph still runs every level, which finds nothing left to do on
# this CPU and does there what is specific to its own.
LEVEL = "extended"
# Initializers of at least this many bytes go to OPTIMIZED_DATA_FILE; smaller ones (shapes,
# scalars) stay in the graph.
EXTERNAL_MIN_BYTES = 1024


class OptimizedGraphMismatch(ValueError):
    """The optimized graph's logits are not bit-identical to the graph's it was made from."""


def save_optimized(graph: Path, probes: Probes) -> None:
    """Write ``graph`` (an ONNX graph file) optimized by ONNX Runtime up to LEVEL beside it, as
    OPTIMIZED_ONNX_FILE with its initializers of EXTERNAL_MIN_BYTES or more in
    OPTIMIZED_DATA_FILE (the graph names that file, relative to itself: the two stay together;
    its metadata holds the file's fingerprint, record_fingerprint),
    if its logits on every batch of ``probes`` (qa/model/probes.py) are bit-identical to
    ``graph``'s, both on one thread; nothing is written beside ``graph`` otherwise.

    Raises OptimizedGraphMismatch if they differ or the optimized graph has no data file (no
    initializer that large), and ONNX Runtime's error if it cannot load ``graph``.
    """
    with tempfile.TemporaryDirectory(dir=graph.parent) as scratch:
        optimized = Path(scratch) / OPTIMIZED_ONNX_FILE
        data = Path(scratch) / OPTIMIZED_DATA_FILE
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = OPTIMIZATION_LEVELS[LEVEL]
        options.optimized_model_filepath = str(optimized)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", OPTIMIZED_DATA_FILE
        )
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes",
            str(EXTERNAL_MIN_BYTES),
        )
        options.log_severity_level = 3  # errors only
        onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        if not data.is_file():
            raise OptimizedGraphMismatch(
                f"the optimized graph has no initializer of {EXTERNAL_MIN_BYTES} bytes or more "
                "to map from a file of its own"
            )
        record_fingerprint(optimized, data)
        compare(graph, optimized, probes)
        os.replace(data, graph.parent / OPTIMIZED_DATA_FILE)
        os.replace(optimized, graph.parent / OPTIMIZED_ONNX_FILE)


def record_fingerprint(optimized: Path, data: Path) -> None:
    """Add to the metadata of the graph file ``optimized`` the fingerprint of its weights file
    ``data`` (DATA_FINGERPRINT_KEY, qa.model.files.data_fingerprint), which the onnx engine
    checks when it loads the graph; the weights stay where they are."""
    model = onnx_format.load(str(optimized), load_external_data=False)
    entry = model.metadata_props.add()
    entry.key, entry.value = DATA_FINGERPRINT_KEY, data_fingerprint(data)
    onnx_format.save(model, str(optimized))


def compare(graph: Path, optimized: Path, probes: Probes) -> None:
    """Raise OptimizedGraphMismatch unless ``optimized``'s logits are bit-identical to
    ``graph``'s on every batch of ``probes``, each served as the onnx engine serves a graph
    (qa.model.backends.onnx.session), on one thread."""
    plain, served = session(graph, threads=1), session(optimized, threads=1)
    for batch in probes.batches:
        for name, want, got in zip(("start", "end"), plain(*batch), served(*batch), strict=True):
            if not np.array_equal(want, got):
                worst = float(np.abs(want - got).max())
                raise OptimizedGraphMismatch(
                    f"the optimized graph's {name} logits on {batch[0].shape[1]}-token windows "
                    f"differ from the graph's by up to {worst:.1e}"
                )
