"""Where a model's files are: a hub id or a local directory, and what each file is called.

A model is a Hugging Face hub id or a local directory, in the hub's legacy layout (``config.json``,
``pytorch_model.bin``, ``vocab.txt``) or the modern one (``model.safetensors``, ``tokenizer.json``),
plus what ``manage.py bake_model`` writes beside them (an ONNX graph, TorchScript traces and a
record of the model's source). docker/runtime-tree.txt lists the files of a baked directory.
"""

import json
import zlib
from pathlib import Path

from qa.reader.errors import ModelLoadError

# Tokenizers saved before tokenizer.json, which transformers converts
# (qa/model/baking/tokenizer_conversion.py): a byte-level BPE's vocabulary and merges (RoBERTa,
# GPT-2), and SentencePiece models (ALBERT, T5, XLM-R, DeBERTa-v2/v3).
SENTENCEPIECE_FILES = ["spiece.model", "sentencepiece.bpe.model", "spm.model"]
LEGACY_TOKENIZER_FILES = ["vocab.json", "merges.txt", *SENTENCEPIECE_FILES]
# What a model directory may hold that inference needs; the rest of a hub repo is never fetched.
MODEL_FILES = [
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    *LEGACY_TOKENIZER_FILES,
]
# The weights as transformers saves them, in the order it prefers them.
WEIGHTS_FILES = ["model.safetensors", "pytorch_model.bin"]
# What bake_model writes beside the weights: the ONNX graph (the onnx engine), that graph as
# ONNX Runtime optimized it with its weights in a file of their own (what the onnx engine serves
# where it is there: it loads faster; qa/model/baking/optimization.py), the model traced with
# TorchScript in float32 and in bfloat16 (the torch engine, exact and fast mode), and where the
# model came from (its hub id and revision), which health reports.
ONNX_FILE = "model.onnx"
OPTIMIZED_ONNX_FILE = "model.optimized.onnx"
OPTIMIZED_DATA_FILE = "model.optimized.onnx.data"
# A data file's fingerprint (data_fingerprint): the CRC-32 of this many blocks of this many bytes.
FINGERPRINT_BLOCKS = 64
FINGERPRINT_BLOCK_BYTES = 4096
TORCHSCRIPT_FILE = "model.torchscript.pt"
FAST_TORCHSCRIPT_FILE = "model.bf16.torchscript.pt"
SOURCE_FILE = "source.json"
# The quantizations bake_model makes (qa/model/baking/quantization.py), as SOURCE_FILE records them.
QUANTIZATIONS = ("int8",)
# The longest name a SOURCE_FILE may give: a hub id is at most 96 characters each side of its
# "/", a directory's name at most 255 bytes.
MAX_NAME = 255


def data_fingerprint(path: Path) -> str:
    """What tells one bake's weights file (OPTIMIZED_DATA_FILE) from another's, even of a model
    of the same shape, without reading it whole (ONNX Runtime maps it so as not to): its size in
    bytes and the CRC-32 of FINGERPRINT_BLOCKS blocks of FINGERPRINT_BLOCK_BYTES spread evenly
    over it, the first and the last included, as "size:crc" (crc in 8 hex digits). Not a check
    of every byte. Raises OSError if the file cannot be read."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        last = max(0, size - FINGERPRINT_BLOCK_BYTES)
        crc = 0
        for block in range(FINGERPRINT_BLOCKS):
            file.seek(last * block // (FINGERPRINT_BLOCKS - 1))
            crc = zlib.crc32(file.read(FINGERPRINT_BLOCK_BYTES), crc)
    return f"{size}:{crc:08x}"


def tokenizer_layout(directory: Path) -> str:
    """The tokenizer files the folder holds, as named in docs/models.md: "tokenizer.json",
    "vocab.txt", "vocab.json + merges.txt", a SentencePiece model's file name, or "none"."""
    for name in ("tokenizer.json", "vocab.txt"):
        if (directory / name).is_file():
            return name
    present = [name for name in LEGACY_TOKENIZER_FILES if (directory / name).is_file()]
    return " + ".join(present) or "none"


def resolve_model_dir(model: str, revision: str | None = None) -> Path:
    """A local directory holding the model, downloading it from the hub if ``model`` is an id
    (at ``revision``, a commit hash, branch or tag; the hub's default branch if None).

    Raises ModelLoadError if there is no such directory, or the download fails.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if _names_a_directory(model):
        raise ModelLoadError("The model directory does not exist.", f"No directory {path}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, revision=revision, allow_patterns=MODEL_FILES))
    except Exception as error:  # offline, unknown repo, gated repo, disk full...
        raise ModelLoadError(
            f"The model {model!r} could not be downloaded from the Hugging Face hub "
            "(no network, or no such model).",
            f"{type(error).__name__}: {error}",
        ) from error


def _names_a_directory(model: str) -> bool:
    """Whether ``model`` can only be a directory (a hub id is ``name`` or ``owner/name``)."""
    return (
        Path(model).expanduser().is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
    )


def read_json(path: Path) -> dict:
    """A JSON object from a model file ({} if there is no such file); ModelLoadError if it
    cannot be read, is not JSON (not UTF-8, or nested deeper than Python's recursion limit), or
    is not an object."""
    try:
        if not path.is_file():
            return {}
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise ModelLoadError(f"{path.name} is not valid JSON.", str(error)) from error
    if not isinstance(content, dict):
        raise ModelLoadError(f"{path.name} is not a JSON object.")
    return content


def read_config(directory: Path) -> dict:
    """The model's ``config.json``; ModelLoadError if it is missing or unreadable."""
    config = read_json(directory / "config.json")
    if not config:
        raise ModelLoadError("The model has no config.json.")
    return config


def model_quantization(model: str) -> str | None:
    """How the baked directory ``model`` quantized its graph, as its SOURCE_FILE records it
    (``"int8"``), or None: float32, a hub id, or a record that cannot be read or names no
    quantization ``bake_model`` makes. Never raises."""
    try:
        recorded = read_json(Path(model).expanduser() / SOURCE_FILE).get("quantization")
    except (OSError, ValueError, ModelLoadError):
        return None
    return recorded if recorded in QUANTIZATIONS else None


def model_name(model: str) -> str:
    """``model`` (a hub id or a directory) named for people to read: a hub id as it is; a baked
    directory by the source it records (SOURCE_FILE); any other directory, even a missing or
    unreadable one, by its own name, never its path. Never raises: a record that cannot be read,
    or that names nothing a name can be (a string of 1 to MAX_NAME characters), counts as none.
    The name is text, whatever the bytes of the path or the record (a byte or a lone surrogate
    that is not text becomes "?"), so health can always send it.
    """
    path = Path(model).expanduser()
    is_dir, recorded = False, None
    try:
        is_dir = path.is_dir()
        recorded = read_json(path / SOURCE_FILE).get("model") if is_dir else None
    except (OSError, ModelLoadError):  # a directory that may not be searched, a broken record
        pass
    if isinstance(recorded, str) and 0 < len(recorded) <= MAX_NAME:
        name = recorded
    else:
        name = path.name if is_dir or _names_a_directory(model) else model
    return name.encode("utf-8", "replace").decode("utf-8")
