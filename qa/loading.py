"""Load a question-answering model and its tokenizer, once per process.

A model is a Hugging Face hub id or a local directory, in the hub's legacy layout (``config.json``,
``pytorch_model.bin``, ``vocab.txt``) or the modern one (``model.safetensors``, ``tokenizer.json``).
torch and transformers are imported only when a model is really loaded, so that code paths
which never answer (the HTML page, health checks) stay light.
"""

import ctypes
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from qa.engine import DEFAULT_MAX_SEQ_LEN, QuestionAnswerer, SpecialTokens

logger = logging.getLogger(__name__)

# What a model directory may hold that inference needs; the rest of a hub repo is never fetched.
MODEL_FILES = [
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
]
# The traced models fetch_model writes beside the weights: exact (float32) and fast (bfloat16).
TORCHSCRIPT_FILE = "model.torchscript.pt"
FAST_TORCHSCRIPT_FILE = "model.bf16.torchscript.pt"
# Windows per forward pass are capped so that a pass's hidden states (windows x tokens x hidden
# floats) stay about this size, near a core's L2 cache: one pass over 17 windows of bert-tiny ran
# 25% slower per token than passes of 4 (and MiniLM's best is 2), for the same results.
PASS_HIDDEN_FLOATS = 2**18
# A sentence any English WordPiece vocabulary covers: a tokenizer that maps it mostly to the
# unknown token was built wrongly (e.g. a vocab file silently ignored).
TOKENIZER_PROBE = "What is my name? I come from Hong Kong and I like reading books."


class ModelLoadError(Exception):
    """The model cannot be loaded. ``reason`` is safe to show anyone (no filesystem paths)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason


def resolve_model_dir(model: str) -> Path:
    """A local directory holding the model, downloading it from the hub if ``model`` is an id."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise ModelLoadError("The model directory does not exist.", f"No directory {path}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, allow_patterns=MODEL_FILES))
    except Exception as error:  # offline, unknown repo, gated repo, disk full...
        raise ModelLoadError(
            f"The model {model!r} could not be downloaded from the Hugging Face hub "
            "(no network, or no such model).",
            f"{type(error).__name__}: {error}",
        ) from error


def _read_json(path: Path) -> dict:
    """A JSON object from a model file ({} if there is no such file)."""
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path.name} is not valid JSON.", str(error)) from error
    if not isinstance(content, dict):
        raise ModelLoadError(f"{path.name} is not a JSON object.")
    return content


def _token_text(value) -> str | None:
    """Special tokens are stored as plain strings or as {"content": ...} objects."""
    return value.get("content") if isinstance(value, dict) else value


def _wordpiece_tokenizer(vocab: Path, *, lowercase: bool, special: dict[str, str]) -> Tokenizer:
    """The fast BERT tokenizer for a directory that has only ``vocab.txt``.

    Built from the tokenizers primitives directly, exactly as transformers converts a slow BERT
    tokenizer, rather than through a tokenizer class that might ignore the vocab file.
    """
    tokenizer = Tokenizer(WordPiece.from_file(str(vocab), unk_token=special["unk"]))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = special["cls"], special["sep"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(list(special.values()))
    return tokenizer


def tokenizer_config(directory: Path) -> dict:
    """The tokenizer's settings and special tokens, from whichever of the two files exist."""
    config = _read_json(directory / "tokenizer_config.json")
    config.update(_read_json(directory / "special_tokens_map.json"))
    return config


def load_tokenizer(directory: Path) -> tuple[Tokenizer, SpecialTokens, int | None]:
    """The fast tokenizer, its [CLS]/[PAD] ids and the longest input it declares (if any)."""
    config = tokenizer_config(directory)
    if config.get("padding_side", "right") != "right":
        raise ModelLoadError("Only tokenizers that put the question first are supported.")
    special = {
        name: _token_text(config.get(f"{name}_token")) or default
        for name, default in [
            ("unk", "[UNK]"),
            ("sep", "[SEP]"),
            ("pad", "[PAD]"),
            ("cls", "[CLS]"),
            ("mask", "[MASK]"),
        ]
    }
    try:
        if (directory / "tokenizer.json").is_file():
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        elif (directory / "vocab.txt").is_file():
            tokenizer = _wordpiece_tokenizer(
                directory / "vocab.txt",
                lowercase=config.get("do_lower_case", True),
                special=special,
            )
        else:
            raise ModelLoadError("The model has no tokenizer (tokenizer.json or vocab.txt).")
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError("The tokenizer files could not be read.", str(error)) from error
    ids = {name: tokenizer.token_to_id(token) for name, token in special.items()}
    if ids["cls"] is None or ids["pad"] is None:
        raise ModelLoadError("The tokenizer has no classifier or padding token.")
    _check_tokenizer(tokenizer, unk_id=ids["unk"])
    return tokenizer, SpecialTokens(cls_id=ids["cls"], pad_id=ids["pad"]), config.get(
        "model_max_length"
    )


def _check_tokenizer(tokenizer: Tokenizer, *, unk_id: int | None) -> None:
    tokens = tokenizer.encode(TOKENIZER_PROBE, add_special_tokens=False).ids
    if not tokens or tokens.count(unk_id) > len(tokens) // 4:
        raise ModelLoadError(
            "The tokenizer does not tokenize text (nearly everything is unknown).",
            f"{tokens.count(unk_id)} of {len(tokens)} probe tokens are unknown",
        )


def load_model(directory: Path, *, fast: bool = False):
    """The torch model in inference mode; transformers picks safetensors over pytorch_model.bin.

    ``fast``: in bfloat16, with plain matrix-product attention. On a CPU with bfloat16 units
    (AVX512-BF16, AMX, Graviton3) that halves the cost of bert-tiny's matrix products, where
    PyTorch's fused attention kernel gains nothing; on SQuAD 299 answers in 300 stay the same.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if not (directory / "config.json").is_file():
        raise ModelLoadError("The model has no config.json.")
    variant = {"dtype": torch.bfloat16, "attn_implementation": "eager"} if fast else {}
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(
            directory, local_files_only=True, **variant
        )
    except Exception as error:
        raise ModelLoadError("The model weights could not be loaded.", str(error)) from error
    return model.eval()


def _longest_input(declared: int | None, config: dict) -> int:
    """The longest input both the tokenizer (if it says) and the model's positions allow."""
    lengths = (declared, config.get("max_position_embeddings"))
    return min((length for length in lengths if length), default=DEFAULT_MAX_SEQ_LEN)


def numpy_forward(logits: Callable, *, takes_token_types: bool, hidden_size: int) -> Callable:
    """The engine's forward function: numpy batches in, numpy logits out, no autograd.

    A long context's windows run in a few cache-sized passes (see PASS_HIDDEN_FLOATS).
    """
    import numpy as np
    import torch

    def forward(input_ids, attention_mask, token_type_ids):
        batch = [input_ids, attention_mask] + ([token_type_ids] if takes_token_types else [])
        rows = max(1, round(PASS_HIDDEN_FLOATS / (input_ids.shape[1] * hidden_size)))
        starts, ends = [], []
        with torch.inference_mode():
            for first in range(0, len(input_ids), rows):
                start, end = logits(*(torch.from_numpy(part[first : first + rows]) for part in batch))
                starts.append(start.float().numpy())
                ends.append(end.float().numpy())
        if len(starts) == 1:
            return starts[0], ends[0]
        return np.concatenate(starts), np.concatenate(ends)

    return forward


def model_logits(model, *, trace: bool) -> tuple[Callable, bool]:
    """(inputs -> (start, end) logits, whether it takes token type ids) for a transformers model.

    With ``trace``, the model is traced once with TorchScript and frozen: the same arithmetic
    without transformers' Python dispatch per layer, which is most of the cost of a short input.
    If tracing fails or disagrees with the model, the model runs as it is.
    """
    takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def eager(*inputs):
        output = model(*inputs)
        return output.start_logits, output.end_logits

    return (_traced(model, eager, takes_token_types) if trace else eager), takes_token_types


def _example_batch(batch: int, length: int, *, vocab_size: int, with_token_types: bool) -> list:
    """Token ids of a right-padded batch (the last row half padding), as the engine builds."""
    import torch

    generator = torch.Generator().manual_seed(batch * 1000 + length)
    input_ids = torch.randint(0, vocab_size, (batch, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, length // 2 :] = 0
    inputs = [input_ids * attention_mask, attention_mask]
    if with_token_types:
        token_type_ids = torch.zeros_like(input_ids)
        token_type_ids[:, length // 4 :] = 1
        inputs.append(token_type_ids * attention_mask)
    return inputs


def _traced(model, eager: Callable, with_token_types: bool) -> Callable:
    import warnings

    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model  # registered, so that its weights are parameters, not constants

        def forward(self, *inputs):
            return eager(*inputs)

    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about Python values in the model
            shape = {"vocab_size": model.config.vocab_size, "with_token_types": with_token_types}
            example = _example_batch(2, 24, **shape)
            traced = torch.jit.freeze(torch.jit.trace(Logits().eval(), example, strict=False))
            probe = _example_batch(3, 57, **shape)
            for got, expected in zip(traced(*probe), eager(*probe)):
                if not torch.allclose(got, expected, atol=1e-5, rtol=0):
                    raise ValueError("the traced model disagrees with the model")
    except Exception as error:  # any model TorchScript cannot trace: run it as it is
        logger.warning("QA model runs untraced: %s", error)
        return eager
    return traced


def _load_torchscript(path: Path) -> tuple[Callable, bool]:
    """A model traced by save_for_serving: loads without importing transformers at all."""
    import torch

    try:
        logits = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise ModelLoadError("The model weights could not be loaded.", str(error)) from error
    # Arguments: self, input_ids, attention_mask[, token_type_ids].
    return logits, len(logits.forward.schema.arguments) == 4


# glibc's mallopt parameters, and the values qasite sets (see keep_scratch_memory).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's maximum
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def keep_scratch_memory() -> bool:
    """Let glibc keep the forward pass's scratch memory in the heap between requests.

    By default a block over 128 KiB (a batch's activations are megabytes) is a fresh mmap,
    unmapped when freed, so every request page-faults all its activations in again; glibc raises
    that threshold only after the process happens to free a large block. Measured on bert-tiny's
    5,000-character request in bfloat16: 19 ms with this, 20 to 25 ms without, depending on what
    the process did before. Returns False where the C library is not glibc (nothing is changed).
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def load_answerer(
    model: str, *, threads: int, trace: bool = True, fast: bool = False
) -> QuestionAnswerer:
    """Everything needed to answer, from a hub id or a directory.

    A directory baked by ``fetch_model`` holds traced models, which load fastest (no
    transformers import, no model construction): that is what the Lambda image serves.
    ``fast`` computes in bfloat16 (see load_model, and README, "Fast mode").
    """
    import torch

    torch.set_num_threads(threads)
    keep_scratch_memory()
    if fast and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        logger.warning("QA_FAST: this CPU has no bfloat16 units; fast mode runs slower here")
    directory = resolve_model_dir(model)
    tokenizer, special_tokens, declared_max_length = load_tokenizer(directory)
    config = _read_json(directory / "config.json")
    if not config:
        raise ModelLoadError("The model has no config.json.")
    script = directory / (FAST_TORCHSCRIPT_FILE if fast else TORCHSCRIPT_FILE)
    if trace and script.is_file():
        logits, takes_token_types = _load_torchscript(script)
    else:
        logits, takes_token_types = model_logits(load_model(directory, fast=fast), trace=trace)
    vocab_size = config.get("vocab_size", 0)
    if tokenizer.get_vocab_size() > vocab_size:
        raise ModelLoadError(
            "The tokenizer does not match the model (its vocabulary is larger than the model's).",
            f"{tokenizer.get_vocab_size()} > {vocab_size}",
        )
    return QuestionAnswerer(
        tokenizer=tokenizer,
        forward=numpy_forward(
            logits,
            takes_token_types=takes_token_types,
            hidden_size=config.get("hidden_size", 768),
        ),
        special_tokens=special_tokens,
        model_max_length=_longest_input(declared_max_length, config),
    )


def save_for_serving(source: Path, output: Path) -> None:
    """Write ``source`` ready to serve: safetensors weights, a fast ``tokenizer.json``, and the
    model traced with TorchScript (when it traces) for exact and for fast mode, so that loading
    converts nothing and does not even import transformers, which keeps cold starts short.
    """
    import torch

    tokenizer, _, declared_max_length = load_tokenizer(source)
    model = load_model(source)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save(str(output / "tokenizer.json"))
    config = tokenizer_config(source)
    config["model_max_length"] = _longest_input(declared_max_length, model.config.to_dict())
    (output / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    fast_model = load_model(source, fast=True)
    for filename, variant in [(TORCHSCRIPT_FILE, model), (FAST_TORCHSCRIPT_FILE, fast_model)]:
        logits, _ = model_logits(variant, trace=True)
        if isinstance(logits, torch.jit.ScriptModule):
            torch.jit.save(logits, str(output / filename))


class LazyAnswerer:
    """Loads the answerer once, when first needed or in a background thread, never twice at once.

    A failed load is remembered (so health can say why) and retried on a later request, waiting
    longer after each failure, so that the service recovers without a restart once fixed.
    """

    def __init__(
        self,
        load: Callable[[], QuestionAnswerer],
        *,
        retry_after: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._load = load
        self._clock = clock  # injectable, so that tests can step past a back-off without sleeping
        self._lock = threading.Lock()
        self._answerer: QuestionAnswerer | None = None
        self._error: ModelLoadError | None = None
        self._loading = False
        self._failures = 0
        self._next_try = 0.0
        self.retry_after = retry_after

    @property
    def state(self) -> str:
        if self._answerer is not None:
            return "ready"
        if self._loading:
            return "loading"
        return "failed" if self._error is not None else "idle"

    @property
    def error(self) -> ModelLoadError | None:
        return self._error

    def seconds_until_retry(self) -> int:
        return max(1, round(self._next_try - self._clock()))

    def get(self, *, timeout: float = -1) -> QuestionAnswerer:
        """The loaded answerer; loads it if needed. Raises ModelLoadError if it cannot be had.

        ``timeout`` bounds the wait for a load already under way in another thread.
        """
        answerer = self._answerer
        if answerer is not None:
            return answerer
        if not self._lock.acquire(timeout=timeout):
            raise ModelLoadError("The model is still loading.")
        try:
            if self._answerer is None:
                if self._error is not None and self._clock() < self._next_try:
                    raise self._error
                self._load_now()
            if self._answerer is None:
                raise self._error
            return self._answerer
        finally:
            self._lock.release()

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self._load_quietly, name="qa-model-loader", daemon=True)
        thread.start()
        return thread

    def _load_quietly(self) -> None:
        try:
            self.get()
        except ModelLoadError:
            pass  # remembered in self._error, reported by health and by requests

    def _load_now(self) -> None:
        self._loading = True
        started = time.monotonic()
        try:
            self._answerer = self._load()
            self._error = None
            self._failures = 0
            logger.info("QA model loaded in %.2f s", time.monotonic() - started)
        except ModelLoadError as error:
            self._fail(error)
        except Exception as error:  # any other bug in loading must not take the service down
            self._fail(ModelLoadError("The model could not be loaded.", repr(error)))
        finally:
            self._loading = False

    def _fail(self, error: ModelLoadError) -> None:
        self._error = error
        self._failures += 1
        delay = min(self.retry_after * 2 ** (self._failures - 1), 60.0)
        self._next_try = self._clock() + delay
        logger.error("QA model failed to load (%s); next try in %.0f s", error, delay)
