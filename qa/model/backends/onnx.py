"""The onnx engine: ONNX Runtime on a graph exported from the torch model
(qa/model/baking/export.py).

Imports only onnxruntime and numpy: serving from a baked graph needs neither torch nor
transformers, which is what makes a small runtime and a short cold start possible.
"""

from pathlib import Path

import numpy as np
import onnxruntime

from qa.model.backends import Run, in_passes, window_by_window
from qa.model.files import OPTIMIZED_DATA_FILE, data_fingerprint
from qa.reader.answerer import Forward
from qa.reader.errors import ModelLoadError

# The graph's inputs, as qa/model/baking/export.py names them (a graph without token types has the
# first two).
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# The graph's metadata key that names its quantization ("int8"; qa/model/baking/quantization.py
# writes it).
QUANTIZATION_KEY = "qasite.quantization"
# The graph's metadata key that holds the fingerprint (qa.model.files.data_fingerprint) of the
# weights file beside it (OPTIMIZED_DATA_FILE) it was saved with (qa/model/baking/optimization.py
# writes it): another bake's file of the same size would otherwise be read as this one's.
DATA_FINGERPRINT_KEY = "qasite.data_fingerprint"
OPTIMIZATION_LEVELS = {
    "disabled": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(
    graph: Path, *, threads: int, graph_optimization_level: str = "all", arena: bool = True
) -> Run:
    """``graph`` in an ONNX Runtime CPU session, as a Run (qa.model.backends.Run). Called with
    ``release_memory=True``, the run ends by giving back to the C library what the memory arena
    took beyond its first chunk (otherwise the arena keeps its largest size for good).

    ``threads``: intra-op threads (operators run one at a time: sequential execution, one
    inter-op thread). ``graph_optimization_level``: a key of OPTIMIZATION_LEVELS; ``arena``:
    False allocates with malloc directly (docs/how-it-works.md, "The ONNX graph" and "Memory after
    a large
    request", has the measurements behind the defaults).
    The Run's ``quantization`` attribute is the graph's QUANTIZATION_KEY (None if absent).
    Raises ModelLoadError if the file is not an ONNX graph of a question-answering model, or if
    the graph records the fingerprint of its weights file (DATA_FINGERPRINT_KEY) and the file
    beside it is not that one.
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPTIMIZATION_LEVELS[graph_optimization_level]
    options.enable_cpu_mem_arena = arena
    options.log_severity_level = 3  # errors only
    releasing = onnxruntime.RunOptions()
    releasing.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    try:
        ort = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # not a graph, truncated, or an operator this runtime lacks
        raise ModelLoadError("The model weights could not be loaded.", str(error)) from error
    names = [node.name for node in ort.get_inputs()]
    if names not in (list(INPUT_NAMES[:2]), list(INPUT_NAMES)) or len(ort.get_outputs()) != 2:
        raise ModelLoadError("The ONNX graph is not a question-answering model.", f"inputs {names}")

    def run(input_ids, attention_mask, token_type_ids, *, release_memory=False):
        # A graph without token_type_ids names two inputs: zip stops there.
        feed = dict(zip(names, (input_ids, attention_mask, token_type_ids), strict=False))
        start, end = ort.run(None, feed, releasing if release_memory else None)
        return start, end

    metadata = ort.get_modelmeta().custom_metadata_map
    _check_data_file(graph.with_name(OPTIMIZED_DATA_FILE), metadata.get(DATA_FINGERPRINT_KEY))
    run.quantization = metadata.get(QUANTIZATION_KEY)
    return run


def _check_data_file(data: Path, fingerprint: str | None) -> None:
    """ModelLoadError unless ``data`` has ``fingerprint`` (None: the graph recorded none)."""
    if fingerprint is None:
        return
    try:
        found = data_fingerprint(data)
    except OSError as error:
        raise ModelLoadError("The graph's weights file cannot be read.", str(error)) from error
    if found != fingerprint:
        raise ModelLoadError(
            "The graph's weights file is not the one it was saved with.",
            f"{data}: fingerprint {found}, the graph's {fingerprint}",
        )


def load(graph: Path, config: dict, *, threads: int) -> Forward:
    """The reader's Forward for ``graph``, in cache-sized passes (see qa.model.backends.in_passes),
    or
    window by window if the graph is quantized (qa.model.backends.window_by_window).

    A request of several windows grows the memory arena to its largest pass; a one-token run with
    arena shrinkage then gives that back, so that a long request leaves the process as large as it
    found it. Requests of one window skip it: for them the extra run would cost a large share of
    the request (docs/how-it-works.md, "Memory after a large request", has the measurements).
    Raises ModelLoadError if ``graph`` is not an ONNX graph of a question-answering model.
    """
    run = session(graph, threads=threads)
    passes = (
        window_by_window(run)
        if run.quantization
        else in_passes(run, hidden_size=config.get("hidden_size", 768))
    )
    one_token = np.ones((1, 1), dtype=np.int64)

    def forward(input_ids, attention_mask, token_type_ids):
        logits = passes(input_ids, attention_mask, token_type_ids)
        if len(input_ids) > 1:
            run(one_token, one_token, one_token * 0, release_memory=True)
        return logits

    return forward
