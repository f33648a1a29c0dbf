"""Where a model's files are: a hub id or a local directory, and what each file is called.

A model is a Hugging Face hub id or a local directory, in the hub's legacy layout (``config.json``,
``pytorch_model.bin``, ``vocab.txt``) or the modern one (``model.safetensors``, ``tokenizer.json``),
plus what ``manage.py fetch_model`` bakes beside them (an ONNX graph and TorchScript traces).
"""

import json
from pathlib import Path

from qa.errors import ModelLoadError

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
# The weights as transformers saves them, in the order it prefers them.
WEIGHTS_FILES = ["model.safetensors", "pytorch_model.bin"]
# What fetch_model bakes beside the weights: the ONNX graph (the onnx engine), and the model
# traced with TorchScript in float32 and in bfloat16 (the torch engine, exact and fast mode).
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"
FAST_TORCHSCRIPT_FILE = "model.bf16.torchscript.pt"


def resolve_model_dir(model: str, revision: str | None = None) -> Path:
    """A local directory holding the model, downloading it from the hub if ``model`` is an id
    (at ``revision``, a commit hash, branch or tag; the hub's default branch if None).

    Raises ModelLoadError if there is no such directory, or the download fails.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
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


def read_json(path: Path) -> dict:
    """A JSON object from a model file ({} if there is no such file); ModelLoadError if it is
    not JSON, or not an object."""
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
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
