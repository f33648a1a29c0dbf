"""Everything needed to answer, from a hub id or a model directory: the tokenizer and the
model's Forward on the configured engine (qa/backends), checked against each other.

torch and transformers are imported only by the torch engine, and by an export of a directory
that has no baked ONNX graph; serving a baked graph imports neither.
"""

from pathlib import Path

from qa.backends import load_forward
from qa.engine import QuestionAnswerer
from qa.errors import ModelLoadError
from qa.model_files import read_config, resolve_model_dir
from qa.tokenization import load_tokenizer, longest_input


def load_answerer(
    model: str,
    *,
    threads: int,
    revision: str | None = None,
    engine: str = "onnx",
    cache_dir: Path | None = None,
    fast: bool = False,
    trace: bool = True,
) -> QuestionAnswerer:
    """The answerer for ``model`` (hub id or directory) on ``engine`` ("onnx" or "torch"), on
    ``threads`` CPU threads; a hub id at ``revision`` (the hub's default branch if None). Raises
    ModelLoadError, with a reason free of paths, if it cannot be
    loaded.

    A directory baked by ``manage.py bake_model`` loads fastest (no transformers import, no model
    construction): that is what the Lambda image serves. ``cache_dir``: where the onnx engine
    caches the graph of a directory without one (qa.export.exported_graph). ``fast`` (bfloat16,
    README "Fast mode") and ``trace`` are torch-engine options (see qa.backends.load_forward).
    """
    directory = resolve_model_dir(model, revision)
    tokenizer, special_tokens, declared_max_length = load_tokenizer(directory)
    config = read_config(directory)
    served = load_forward(
        directory,
        config,
        engine=engine,
        threads=threads,
        cache_dir=cache_dir,
        fast=fast,
        trace=trace,
    )
    vocab_size = config.get("vocab_size", 0)
    if tokenizer.get_vocab_size() > vocab_size:
        raise ModelLoadError(
            "The tokenizer does not match the model (its vocabulary is larger than the model's).",
            f"{tokenizer.get_vocab_size()} > {vocab_size}",
        )
    return QuestionAnswerer(
        tokenizer=tokenizer,
        forward=served.forward,
        engine=served.engine,
        special_tokens=special_tokens,
        model_max_length=longest_input(declared_max_length, config),
    )
