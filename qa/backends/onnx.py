"""The onnx engine: ONNX Runtime on a graph exported from the torch model (qa/export.py).

Imports only onnxruntime and numpy: serving from a baked graph needs neither torch nor
transformers, which is what makes a small runtime and a short cold start possible.
"""

from collections.abc import Callable
from pathlib import Path

import onnxruntime

from qa.backends import in_passes
from qa.engine import Forward
from qa.model_files import ModelLoadError

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPTIMIZATION_LEVELS = {
    "disabled": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(
    graph: Path, *, threads: int, graph_optimization_level: str = "basic", memory_arena: bool = True
) -> Callable:
    """``graph`` in an ONNX Runtime CPU session: a function from int64 [windows, tokens] arrays
    (input_ids, attention_mask, token_type_ids) to float32 (start, end) logits of that shape.

    ``threads``: intra-op threads (operators run one at a time: sequential execution, one
    inter-op thread). See README, "ONNX graph", for the optimisation level and memory arena.
    Raises ModelLoadError if the file is not an ONNX graph of a question-answering model.
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPTIMIZATION_LEVELS[graph_optimization_level]
    options.enable_cpu_mem_arena = memory_arena
    options.log_severity_level = 3  # errors only
    try:
        ort = onnxruntime.InferenceSession(
            str(graph), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # not a graph, truncated, or an operator this runtime lacks
        raise ModelLoadError("The model weights could not be loaded.", str(error)) from error
    names = [node.name for node in ort.get_inputs()]
    if names not in (list(INPUT_NAMES[:2]), list(INPUT_NAMES)) or len(ort.get_outputs()) != 2:
        raise ModelLoadError(
            "The ONNX graph is not a question-answering model.", f"inputs {names}"
        )

    def run(input_ids, attention_mask, token_type_ids):
        feed = dict(zip(names, (input_ids, attention_mask, token_type_ids)))
        start, end = ort.run(None, feed)
        return start, end

    return run


def load(graph: Path, config: dict, *, threads: int) -> Forward:
    """The engine's Forward for ``graph``, in cache-sized passes (see qa.backends.in_passes)."""
    return in_passes(session(graph, threads=threads), hidden_size=config.get("hidden_size", 768))
