"""The torch engine: the model traced with TorchScript (baked by bake_model, or traced at load),
or the transformers model as it is. Also what qa/model/baking/export.py and qa/model/baking/bake.py
build from.
"""

import ctypes
import inspect
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from qa.model.backends import Run, in_passes
from qa.model.files import FAST_TORCHSCRIPT_FILE, TORCHSCRIPT_FILE
from qa.model.imports import IMPORT_LOCK
from qa.model.probes import Batch, Probes, probes
from qa.reader.answerer import Forward
from qa.reader.errors import ModelLoadError, one_line

logger = logging.getLogger(__name__)


def load_model(directory: Path, *, fast: bool = False, attention: str | None = None):
    """The transformers model in inference mode; transformers picks safetensors over
    pytorch_model.bin. Raises ModelLoadError if there is no config or the weights do not load.

    ``fast``: in bfloat16, with plain matrix-product attention. On a CPU with bfloat16 units
    (AVX512-BF16, AMX, Graviton3) the matrix products cost less, where PyTorch's fused attention
    kernel gains nothing; a few answers differ from float32's (docs/how-it-works.md, "Fast mode").
    ``attention``: the attention implementation ("eager", "sdpa"; default transformers').
    """
    with IMPORT_LOCK:
        from transformers import AutoModelForQuestionAnswering
        from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if not (directory / "config.json").is_file():
        raise ModelLoadError("The model has no config.json.")
    variant = {"dtype": torch.bfloat16, "attn_implementation": "eager"} if fast else {}
    if attention:
        variant["attn_implementation"] = attention
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(
            directory, local_files_only=True, **variant
        )
    except Exception as error:
        raise ModelLoadError("The model weights could not be loaded.", str(error)) from error
    return model.eval()


class Logits(torch.nn.Module):
    """A transformers QA model as a module from (input_ids, attention_mask[, token_type_ids])
    tensors to (start, end) logits: the form TorchScript traces and ONNX exports. It takes token
    types when its tokenizer gives them (``token_types``, qa.model.inputs) and the model's
    forward has them."""

    def __init__(self, model, *, token_types: bool):
        super().__init__()
        self.model = model  # registered, so that its weights are parameters, not constants
        self.takes_token_types = (
            token_types and "token_type_ids" in inspect.signature(model.forward).parameters
        )

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, **types)
        return output.start_logits, output.end_logits


def tensors(batch: Batch, logits: Logits) -> list[torch.Tensor]:
    """A probe batch (qa/model/probes.py) as the tensors ``logits`` takes."""
    return [torch.from_numpy(array) for array in batch[: 3 if logits.takes_token_types else 2]]


class TorchLogits(NamedTuple):
    """``module`` maps int64 tensors ``[windows, tokens]`` (input_ids, attention_mask and, if
    ``takes_token_types``, token_type_ids) to the (start, end) logits, each
    ``[windows, tokens]``."""

    module: Callable
    takes_token_types: bool


def logits_module(model, probes: Probes, *, trace: bool) -> TorchLogits:
    """The start/end logits of a transformers question-answering model, as a module, fed the
    inputs ``probes`` says it takes.

    With ``trace``, the model is traced once with TorchScript (on the first probe batch) and
    frozen: the same arithmetic without transformers' Python dispatch per layer, which is most
    of the cost of a short input. If tracing fails or disagrees with the model on any probe
    batch, the model runs as it is, with a warning of one line.
    """
    eager = Logits(model, token_types=probes.token_types).eval()
    return TorchLogits(_traced(eager, probes) if trace else eager, eager.takes_token_types)


def _traced(eager: Logits, probes: Probes) -> Callable:
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about Python values in the model
            example = tensors(probes.batches[0], eager)
            # check_trace=False: torch's own check traces again and, on any difference, raises
            # an error holding both graphs (thousands of lines); the probes below check more
            # (other shapes, against the model itself) and say it in one line.
            traced = torch.jit.freeze(
                torch.jit.trace(eager, example, strict=False, check_trace=False)
            )
            for batch in probes.batches[1:]:
                probe = tensors(batch, eager)
                for got, expected in zip(traced(*probe), eager(*probe), strict=True):
                    if not torch.allclose(got, expected, atol=1e-5, rtol=0):
                        raise ValueError("the traced model disagrees with the model")
    except Exception as error:  # any model TorchScript cannot trace: run it as it is
        logger.warning("QA model runs untraced (%s)", one_line(error))
        return eager
    return traced


def _load_torchscript(path: Path) -> TorchLogits:
    """A model traced by save_for_serving: loads without importing transformers at all."""
    try:
        logits = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise ModelLoadError("The model weights could not be loaded.", str(error)) from error
    # Arguments: self, input_ids, attention_mask[, token_type_ids].
    return TorchLogits(logits, len(logits.forward.schema.arguments) == 4)


def numpy_logits(logits: Callable, *, takes_token_types: bool) -> Run:
    """``logits`` (tensors in, tensors out) as a Run on numpy arrays, without autograd."""

    def run(input_ids, attention_mask, token_type_ids):
        batch = [input_ids, attention_mask] + ([token_type_ids] if takes_token_types else [])
        with torch.inference_mode():
            start, end = logits(*map(torch.from_numpy, batch))
        return start.float().numpy(), end.float().numpy()

    return run


# glibc's mallopt parameters, and the values qasite sets (see keep_scratch_memory).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's maximum
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def keep_scratch_memory() -> bool:
    """Let glibc keep torch's scratch memory for a forward pass in the heap between requests.

    By default a block over 128 KiB (a batch's activations are megabytes) is a fresh mmap,
    unmapped when freed, so every request page-faults all its activations in again; glibc raises
    that threshold only after the process happens to free a large block. Measured on bert-tiny's
    5,000-character request in bfloat16: 19 ms with this, 20 to 25 ms without, depending on what
    the process did before. Returns False where the C library is not glibc (nothing is changed).
    The onnx engine leaves glibc as it is: these thresholds would keep in the heap what ONNX
    Runtime's arena gives back after a long request (MiniLM: 17 MB more after it, instead of 0).
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def load(directory: Path, config: dict, *, threads: int, fast: bool, trace: bool) -> Forward:
    """The reader's Forward on torch: the baked trace if there is one (no transformers import,
    no model construction), else the transformers model, traced unless ``trace`` is False."""
    torch.set_num_threads(threads)
    keep_scratch_memory()
    if fast and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        logger.warning("QA_FAST: this CPU has no bfloat16 units; fast mode runs slower here")
    script = directory / (FAST_TORCHSCRIPT_FILE if fast else TORCHSCRIPT_FILE)
    if trace and script.is_file():
        logits, takes_token_types = _load_torchscript(script)
    else:
        model = load_model(directory, fast=fast)
        logits, takes_token_types = logits_module(model, probes(directory, config), trace=trace)
    return in_passes(
        numpy_logits(logits, takes_token_types=takes_token_types),
        hidden_size=config.get("hidden_size", 768),
    )
