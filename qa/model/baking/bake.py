"""A model directory made ready to serve: what ``manage.py bake_model`` writes.

A bake is all or nothing: everything is written to a scratch directory beside the output, checked
there, and moved into place only when every check passed; a failed bake leaves the output as it
found it (absent, or the earlier bake).
"""

import json
import logging
import shutil
import tempfile
from pathlib import Path

import torch

from qa.model.backends.torch import load_model, logits_module
from qa.model.baking.export import export_onnx
from qa.model.baking.optimization import OptimizedGraphMismatch, save_optimized
from qa.model.baking.quantization import Agreement, QualityGateFailed, quantize_checked
from qa.model.baking.tokenizer_check import disagreement
from qa.model.files import (
    FAST_TORCHSCRIPT_FILE,
    ONNX_FILE,
    SOURCE_FILE,
    TORCHSCRIPT_FILE,
    read_config,
    tokenizer_layout,
)
from qa.model.loading import load_answerer
from qa.model.probes import probes
from qa.model.tokenization import load_tokenizer, longest_input, tokenizer_config
from qa.reader.answerer import Answer
from qa.reader.errors import ModelLoadError
from qa.reader.examples import KIT_HO

logger = logging.getLogger(__name__)

# The engines a baked directory serves on, each checked on Kit-Ho Mak once written. Fast mode
# (bfloat16) is an option of the torch engine: when it fails, its trace is left out, and the
# bake stands.
CHECKS = {"onnx": {"engine": "onnx"}, "torch": {"engine": "torch"}}
FAST_CHECK = {"engine": "torch", "fast": True}


class BakeError(Exception):
    """The model cannot be baked; the message says why and what can be done."""


def bake(
    source: Path,
    output: Path,
    *,
    name: str,
    revision: str | None,
    quantize: str | None = None,
    force: bool = False,
) -> tuple[dict[str, Answer], Agreement | None]:
    """Bake the model in ``source`` into ``output`` (save_for_serving, with ``quantize`` and
    ``force``), all or nothing, and return each engine's answer to Kit-Ho Mak's question (keys
    of CHECKS, and "torch, fast mode" when its trace works) and the quality gate's figures
    (None without ``quantize``).

    ``output`` must be new, empty, or an earlier bake (it holds ``source.json``): anything else
    is refused before any work, so that a mistyped ``--output`` never replaces a directory of
    other files.

    Raises BakeError, or ModelLoadError (the model or its tokenizer cannot be loaded, or is of
    a kind qasite cannot serve); ``output`` is then untouched.
    """
    _check_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{output.name}.baking-", dir=output.parent))
    scratch.chmod(0o755)  # mkdtemp's 0700 would keep the bake from anyone else who serves it
    try:
        gate = save_for_serving(
            source, scratch, name=name, revision=revision, quantize=quantize, force=force
        )
        answers = {label: _check(scratch, label, **engine) for label, engine in CHECKS.items()}
        try:
            answers["torch, fast mode"] = load_answerer(
                str(scratch), threads=1, **FAST_CHECK
            ).answer(**KIT_HO)[0]
        except Exception as error:  # fast mode is optional: the default engines still serve
            logger.warning("bake_model: fast mode left out (%s: %s)", type(error).__name__, error)
            (scratch / FAST_TORCHSCRIPT_FILE).unlink(missing_ok=True)
        _replace(scratch, output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return answers, gate


def _check_output(output: Path) -> None:
    if not output.exists() and not output.is_symlink():
        return
    if output.is_dir() and not output.is_symlink():
        if (output / SOURCE_FILE).is_file() or not any(output.iterdir()):
            return
    raise BakeError(
        f"--output {output} exists and is not an earlier bake (it has no {SOURCE_FILE}); a bake "
        "replaces its --output whole, so choose a new or empty directory"
    )


def _check(directory: Path, label: str, **engine) -> Answer:
    try:
        return load_answerer(str(directory), threads=1, **engine).answer(**KIT_HO)[0]
    except ModelLoadError:
        raise
    except Exception as error:
        raise BakeError(
            f"the baked model does not answer on the {label} engine "
            f"({type(error).__name__}: {error})"
        ) from error


def _replace(scratch: Path, output: Path) -> None:
    """Move the checked bake into place: an earlier bake in ``output`` is set aside first, and
    removed once the new one is there."""
    earlier = None
    if output.exists():
        earlier = Path(tempfile.mkdtemp(prefix=f".{output.name}.earlier-", dir=output.parent))
        output.rename(earlier / output.name)
    scratch.rename(output)
    if earlier is not None:
        shutil.rmtree(earlier, ignore_errors=True)


# The tokenizer settings that change how text is tokenized (tokenizer_config.json).
TOKENIZER_SETTINGS = [
    "tokenizer_class",
    "do_lower_case",
    "strip_accents",
    "tokenize_chinese_chars",
    "add_prefix_space",
    "trim_offsets",
]


def _check_tokenizer(source: Path, output: Path) -> None:
    """Raise BakeError unless the tokenizer baked into ``output`` tokenizes the probes of
    qa/model/baking/tokenizer_check.py as transformers' tokenizer of ``source`` does."""
    why = disagreement(source, output)
    if why is None:
        return
    settings = tokenizer_config(source)
    named = {name: settings[name] for name in TOKENIZER_SETTINGS if name in settings}
    raise BakeError(
        f"its tokenizer ({tokenizer_layout(source)}, settings {named or 'none'}) would not "
        f"tokenize as transformers' does, so answers would differ from v4's: {why}. Give the "
        "folder a tokenizer.json saved by transformers' fast tokenizer (save_pretrained), or "
        "report the layout and settings to qasite's maintainers"
    )


def save_for_serving(
    source: Path,
    output: Path,
    *,
    name: str,
    revision: str | None,
    quantize: str | None = None,
    force: bool = False,
) -> Agreement | None:
    """Write the model in ``source`` to ``output`` ready to serve, so that loading converts
    nothing and imports neither torch nor transformers on the onnx engine:

    - ``model.onnx``: the ONNX graph (qa/model/baking/export.py), written only if it agrees with
    the model on
      probes of several lengths up to the longest it takes (qa/model/probes.py);
    - ``model.optimized.onnx`` and ``model.optimized.onnx.data``: that graph (after its
      quantization, if any) as ONNX Runtime optimized it, its weights in the data file, checked
      bit-identical to it on the probes (qa/model/baking/optimization.py): what the onnx engine
      serves, loaded in a fraction of the time;
    - safetensors weights, ``config.json``, a fast ``tokenizer.json`` and its config;
    - TorchScript traces for the torch engine, exact (float32) and fast (bfloat16), when the
      model traces;
    - ``source.json``: the model's ``name`` (its hub id) and hub ``revision``, for health.

    The tokenizer written is checked against transformers' own of ``source``
    (qa/model/baking/tokenizer_check.py).

    ``quantize="int8"``: ``model.onnx`` is the graph quantized to int8, if it passes the quality
    gate against the float32 graph or ``force`` (qa.model.baking.quantization.quantize_checked), and
    ``source.json`` records the quantization and the gate's figures. Returns the gate's figures
    (None without ``quantize``).
    Raises ModelLoadError if the model cannot be loaded or is of a kind qasite cannot serve,
    BakeError if its ONNX graph cannot be made or disagrees with it, the quantized graph fails
    the quality gate, the optimized graph's logits are not the graph's, or its tokenizer.json
    does not tokenize as transformers' tokenizer of ``source``.
    """
    tokenizer, _, declared_max_length = load_tokenizer(source)
    config = read_config(source)
    checked = probes(source, config)
    model = load_model(source)
    output.mkdir(parents=True, exist_ok=True)
    try:
        export_onnx(load_model(source, attention="eager"), output / ONNX_FILE, checked)
    except Exception as error:
        raise BakeError(
            f"its ONNX graph cannot be made faithfully ({type(error).__name__}: {error}); "
            "qasite serves a model only with a graph that agrees with it at every window "
            "length it takes (docs/models.md lists the architectures that bake)"
        ) from error
    try:
        gate = quantize_checked(output / ONNX_FILE, source, force=force) if quantize else None
    except QualityGateFailed as error:
        raise BakeError(str(error)) from error
    try:
        save_optimized(output / ONNX_FILE, checked)
    except OptimizedGraphMismatch as error:
        raise BakeError(
            f"{error}; ONNX Runtime's optimizations should never change a logit, so report the "
            "model and onnxruntime's version to qasite's maintainers"
        ) from error
    model.save_pretrained(output)
    tokenizer.save(str(output / "tokenizer.json"))
    settings = tokenizer_config(source)
    settings["model_max_length"] = longest_input(declared_max_length, model.config.to_dict())
    # What qa.model.inputs read from class defaults, written out for a runtime without them.
    settings["model_input_names"] = ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if checked.token_types else []
    )
    (output / "tokenizer_config.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    _check_tokenizer(source, output)
    for filename, fast in [(TORCHSCRIPT_FILE, False), (FAST_TORCHSCRIPT_FILE, True)]:
        try:
            logits, _ = logits_module(load_model(source, fast=fast), checked, trace=True)
        except Exception as error:  # the torch engine then loads the model and runs it as it is
            logger.warning("bake_model: no %s (%s: %s)", filename, type(error).__name__, error)
            continue
        if isinstance(logits, torch.jit.ScriptModule):
            torch.jit.save(logits, str(output / filename))
    source_record = {"model": name, "revision": revision}
    if gate:
        source_record |= {"quantization": quantize, "quality_gate": gate.record()}
    (output / SOURCE_FILE).write_text(json.dumps(source_record, indent=2), encoding="utf-8")
    return gate
