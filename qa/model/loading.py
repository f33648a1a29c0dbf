"""Everything needed to answer, from a hub id or a model directory: the tokenizer and the
model's Forward on the configured engine (qa/model/backends), checked against each other.

The engine is chosen here (load_forward): ONNX Runtime on the baked graph; for a directory
without one, a graph exported once and cached (qa/model/baking/graph_cache.py), or the torch engine
if the export fails, never silently (one warning line says why, and health names the engine that
serves). torch and transformers are imported only by the torch engine, and by an export of a
directory that has no baked ONNX graph; serving a baked graph imports neither.
"""

import logging
from pathlib import Path
from typing import NamedTuple

from qa.model.files import (
    ONNX_FILE,
    OPTIMIZED_DATA_FILE,
    OPTIMIZED_ONNX_FILE,
    read_config,
    resolve_model_dir,
)
from qa.model.imports import IMPORT_LOCK
from qa.model.tokenization import load_tokenizer, longest_input
from qa.reader.answerer import Forward, QuestionAnswerer
from qa.reader.errors import ModelLoadError, one_line

logger = logging.getLogger(__name__)

ENGINES = ("onnx", "torch")


class Served(NamedTuple):
    """The model's Forward, and the engine that computes it (one of ENGINES): the one asked
    for, or torch where the onnx engine could not export the model."""

    engine: str
    forward: Forward


# Why a directory's optimized graph cannot be served (no paths: health shows it).
OPTIMIZED_BROKEN = (
    f"The optimized graph ({OPTIMIZED_ONNX_FILE} and its weights, {OPTIMIZED_DATA_FILE}) could "
    "not be loaded: copy both as bake_model wrote them, or bake the model again."
)


def served_graph(directory: Path) -> Path | None:
    """The graph file the onnx engine serves from ``directory``: the bake's optimized graph
    (OPTIMIZED_ONNX_FILE: the same logits, a shorter load), else its graph (ONNX_FILE); None if
    it has neither.

    A graph newer than the optimized graph made from it (a graph changed after the bake, say
    quantized by hand) is served instead, with a warning of one line: the optimized graph is
    then stale. A copy that did not keep the files' times may serve the graph so too (the same
    logits, a longer load).
    """
    optimized, graph = directory / OPTIMIZED_ONNX_FILE, directory / ONNX_FILE
    if not optimized.is_file():
        return graph if graph.is_file() else None
    if graph.is_file() and graph.stat().st_mtime_ns > optimized.stat().st_mtime_ns:
        logger.warning(
            "%s is newer than %s, which bake_model made from it (changed since the bake, or "
            "copied without the files' times: cp -a keeps them): serving %s, which loads slower",
            ONNX_FILE,
            OPTIMIZED_ONNX_FILE,
            ONNX_FILE,
        )
        return graph
    return optimized


def load_forward(
    directory: Path,
    config: dict,
    *,
    engine: str,
    threads: int,
    cache_dir: Path | None = None,
    fast: bool = False,
    trace: bool = True,
) -> Served:
    """The Forward of the model in ``directory`` (whose parsed ``config.json`` is ``config``)
    on ``engine`` ("onnx" or "torch"), computing on ``threads`` CPU threads, and the engine that
    serves it.

    onnx: the baked graph as ONNX Runtime optimized it (OPTIMIZED_ONNX_FILE, written by
    qa/model/baking/optimization.py) where the directory has it, else the baked graph (ONNX_FILE;
    see served_graph; an optimized graph that does not load, its data file missing or cut short,
    is a ModelLoadError whose reason is OPTIMIZED_BROKEN); a directory with neither is exported,
    into ``cache_dir`` (see qa.model.baking.graph_cache.exported_graph); if that fails, the torch
    engine serves, with a warning of one line that says why.
    ``fast`` (bfloat16) and ``trace`` (False: the transformers model as it is) are torch-engine
    options. Raises ModelLoadError if the model cannot be loaded on either engine.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if engine == "onnx" and fast:
        raise ValueError("fast mode (bfloat16) is a torch-engine option")
    if engine == "onnx":
        from qa.model.backends import onnx

        graph = served_graph(directory)
        if graph is not None:
            try:
                return Served("onnx", onnx.load(graph, config, threads=threads))
            except ModelLoadError as error:
                if graph.name != OPTIMIZED_ONNX_FILE:
                    raise
                raise ModelLoadError(OPTIMIZED_BROKEN, str(error)) from error
        from qa.model.baking.graph_cache import exported_graph

        try:
            with exported_graph(directory, cache_dir) as graph:
                return Served("onnx", onnx.load(graph, config, threads=threads))
        except ModelLoadError:
            raise  # the weights themselves cannot be loaded: torch could not serve them either
        except Exception as error:
            logger.warning(
                "QA_ENGINE=onnx: the model could not be exported to ONNX (%s); "
                "the torch engine serves it",
                one_line(error),
            )
    with IMPORT_LOCK:
        from qa.model.backends import torch

    return Served("torch", torch.load(directory, config, threads=threads, fast=fast, trace=trace))


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
    caches the graph of a directory without one (qa.model.baking.graph_cache.exported_graph).
    ``fast`` (bfloat16, docs/how-it-works.md "Fast mode") and ``trace`` are torch-engine options
    (see load_forward).
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
