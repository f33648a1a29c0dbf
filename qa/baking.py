"""A model directory made ready to serve: what ``manage.py bake_model`` writes."""

import json
from pathlib import Path

import torch

from qa.backends.torch import load_model, logits_module
from qa.export import export_onnx
from qa.model_files import FAST_TORCHSCRIPT_FILE, ONNX_FILE, SOURCE_FILE, TORCHSCRIPT_FILE
from qa.quantization import Agreement, quantize_checked
from qa.tokenization import load_tokenizer, longest_input, tokenizer_config


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

    - ``model.onnx``: the ONNX graph (qa/export.py), written only if it agrees with the model;
    - safetensors weights, ``config.json``, a fast ``tokenizer.json`` and its config;
    - TorchScript traces for the torch engine, exact (float32) and fast (bfloat16), when the
      model traces;
    - ``source.json``: the model's ``name`` (its hub id) and hub ``revision``, for health.

    ``quantize="int8"``: ``model.onnx`` is the graph quantized to int8, if it passes the quality
    gate against the float32 graph or ``force`` (qa.quantization.quantize_checked), and
    ``source.json`` records the quantization and the gate's figures. Returns the gate's figures
    (None without ``quantize``).
    Raises ModelLoadError if the model cannot be loaded, GraphMismatch if its graph disagrees,
    QualityGateFailed if the quantized graph fails the gate.
    """
    tokenizer, _, declared_max_length = load_tokenizer(source)
    model = load_model(source)
    output.mkdir(parents=True, exist_ok=True)
    export_onnx(load_model(source, attention="eager"), output / ONNX_FILE)
    gate = quantize_checked(output / ONNX_FILE, source, force=force) if quantize else None
    model.save_pretrained(output)
    tokenizer.save(str(output / "tokenizer.json"))
    config = tokenizer_config(source)
    config["model_max_length"] = longest_input(declared_max_length, model.config.to_dict())
    (output / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    fast_model = load_model(source, fast=True)
    for filename, variant in [(TORCHSCRIPT_FILE, model), (FAST_TORCHSCRIPT_FILE, fast_model)]:
        logits, _ = logits_module(variant, trace=True)
        if isinstance(logits, torch.jit.ScriptModule):
            torch.jit.save(logits, str(output / filename))
    source_record = {"model": name, "revision": revision}
    if gate:
        source_record |= {"quantization": quantize, "quality_gate": gate.record()}
    (output / SOURCE_FILE).write_text(json.dumps(source_record, indent=2), encoding="utf-8")
    return gate
