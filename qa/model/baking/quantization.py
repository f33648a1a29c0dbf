"""Dynamic int8 quantization of a baked ONNX graph, and the quality gate it must pass.

Build-time tooling (ONNX Runtime's quantization tools and onnx, which the runtime tree drops):
``bake_model --quantize int8`` (qa/model/baking/bake.py). The quantized graph stores its weights in
int8 and
quantizes each activation tensor per pass, at run time; the onnx engine reads the graph's
QUANTIZATION_KEY and runs it window by window (qa.model.backends.window_by_window), so that a
window's
answer never depends on the windows beside it. docs/benchmark.md ("int8") has the measurements
behind the settings and the gate's bounds.
"""

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qa.model.backends import onnx
from qa.model.backends.onnx import QUANTIZATION_KEY
from qa.model.files import read_config
from qa.model.tokenization import load_tokenizer, longest_input
from qa.reader.answer_metrics import f1
from qa.reader.answerer import QuestionAnswerer

# Per-channel, signed int8 weights, every operator type ONNX Runtime quantizes dynamically
# (MatMul, and Gather: the embeddings too). Measured on the real MiniLM (docs/benchmark.md,
# "int8"): per-tensor scales lose 5 SQuAD F1; unsigned weights run 1.6-1.7x slower here; MatMul
# alone keeps the float32 embeddings, 2.5x the file for no better answers.
SETTINGS = {"per_channel": True, "weight_type": "QInt8", "op_types_to_quantize": None}
# The probes the quantized graph's answers are compared on against its own float32 graph's:
# SQuAD-style questions on short paragraphs written for qasite (``answer`` is the span a reader
# should give), and each paragraph's first question again over all the paragraphs joined, which
# takes several windows.
PROBES_FILE = Path(__file__).with_name("quality_probes.json")
# The gate's bounds: the share of probes whose best answer is the same span of the context, and
# the mean F1 (SQuAD's, in %) of the quantized graph's best answers against the float32 graph's.
# Measured on the probes (docs/benchmark.md, "int8"): the real MiniLM with SETTINGS 92.2% and
# 96.4 (on 300 SQuAD questions: 89.7% identical, F1 77.15 against float32's 77.42); with
# per-tensor scales 85.7% and 92.9 (SQuAD F1 5 points lower), which the gate refuses.
MIN_IDENTICAL = 0.88
MIN_F1 = 94.0


class QualityGateFailed(ValueError):
    """The quantized graph's answers agree with the float32 graph's less than the bounds ask."""


@dataclass(frozen=True)
class Agreement:
    """How the quantized graph's best answers compare with the float32 graph's on the probes."""

    probes: int
    identical: int  # the same span (start and end in the context)
    f1: float  # mean SQuAD F1 (%) of the quantized answer against the float32 one

    @property
    def identical_share(self) -> float:
        return self.identical / self.probes

    @property
    def passes(self) -> bool:
        return self.identical_share >= MIN_IDENTICAL and self.f1 >= MIN_F1

    def __str__(self) -> str:
        return (
            f"{self.identical} of {self.probes} probes ({100 * self.identical_share:.1f}%) give "
            f"the float32 graph's answer, F1 agreement {self.f1:.1f} (bounds: "
            f"{100 * MIN_IDENTICAL:.0f}% and {MIN_F1:.0f})"
        )

    def record(self) -> dict:
        """The figures as the bake record (source.json) keeps them."""
        return {
            "probes": self.probes,
            "identical_share": round(self.identical_share, 4),
            "f1": round(self.f1, 2),
        }


def load_probes() -> list[dict]:
    """PROBES_FILE's questions (dicts of ``question`` and ``context``), then each paragraph's
    first question over all the paragraphs joined."""
    written = json.loads(PROBES_FILE.read_text(encoding="utf-8"))
    paragraphs = list(dict.fromkeys(probe["context"] for probe in written))
    joined = "\n\n".join(paragraphs)
    firsts = {probe["context"]: probe["question"] for probe in reversed(written)}
    return [
        *({"question": p["question"], "context": p["context"]} for p in written),
        *({"question": firsts[paragraph], "context": joined} for paragraph in paragraphs),
    ]


class DynamicQuantizationNotices(logging.Filter):
    """Drops what ONNX Runtime's quantizer logs that says nothing to a dynamic quantization's
    user (quantize_int8): its notices (INFO: each activation left to run time, each MatMul of two
    activations left in float32) and its advice to pre-process for static quantization. Its
    other warnings and errors pass."""

    ADVICE = "Please consider to run pre-processing"

    def filter(self, record: logging.LogRecord) -> bool:
        if f"{os.sep}onnxruntime{os.sep}quantization{os.sep}" not in record.pathname:
            return True
        return record.levelno > logging.INFO and not record.getMessage().startswith(self.ADVICE)


def quantize_int8(graph: Path, output: Path) -> None:
    """Write ``graph`` (a float32 ONNX graph) dynamically quantized to int8 with SETTINGS to
    ``output``, marked as such (QUANTIZATION_KEY in its metadata). Same inputs and outputs as
    ``graph``. Source: ONNX Runtime's ``quantize_dynamic``."""
    import onnx as onnx_format
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs on the root logger: a line for each activation it leaves to run time
    # (what dynamic quantization is) and advice to pre-process the graph for static
    # quantization, which this is not. Those two notices go; its other warnings and errors show.
    root = logging.getLogger()
    notices = DynamicQuantizationNotices()
    root.addFilter(notices)
    try:
        quantize_dynamic(
            graph,
            output,
            per_channel=SETTINGS["per_channel"],
            weight_type=QuantType[SETTINGS["weight_type"]],
            op_types_to_quantize=SETTINGS["op_types_to_quantize"],
        )
    finally:
        root.removeFilter(notices)
    model = onnx_format.load(str(output))
    onnx_format.helper.set_model_props(model, {QUANTIZATION_KEY: "int8"})
    onnx_format.save(model, str(output))


def agreement(reference: QuestionAnswerer, quantized: QuestionAnswerer) -> Agreement:
    """``quantized``'s best answers against ``reference``'s on the probes (load_probes)."""
    identical, total_f1 = 0, 0.0
    probes = load_probes()
    for probe in probes:
        [want] = reference.answer(probe["question"], probe["context"])
        [got] = quantized.answer(probe["question"], probe["context"])
        identical += (got.start, got.end) == (want.start, want.end)
        total_f1 += f1(got.answer, want.answer)
    return Agreement(len(probes), identical, 100 * total_f1 / len(probes))


def graph_answerer(source: Path, graph: Path) -> QuestionAnswerer:
    """The answerer of the model in ``source`` (its tokenizer and config) over ``graph`` on the
    onnx engine, on every core. Raises ModelLoadError if either cannot be loaded."""
    tokenizer, special_tokens, declared_max_length = load_tokenizer(source)
    config = read_config(source)
    return QuestionAnswerer(
        tokenizer=tokenizer,
        forward=onnx.load(graph, config, threads=os.cpu_count() or 1),
        special_tokens=special_tokens,
        model_max_length=longest_input(declared_max_length, config),
    )


def quantize_checked(graph: Path, source: Path, *, force: bool = False) -> Agreement:
    """Replace the float32 ``graph`` of the model in ``source`` by its int8 quantization
    (quantize_int8) if the quantized graph's answers agree with the float32 graph's within the
    bounds (MIN_IDENTICAL, MIN_F1) on the probes, or ``force``. Returns the agreement measured;
    raises QualityGateFailed (``graph`` left as it was) below the bounds without ``force``.
    """
    with tempfile.TemporaryDirectory(dir=graph.parent) as scratch:
        quantized = Path(scratch) / graph.name
        quantize_int8(graph, quantized)
        measured = agreement(graph_answerer(source, graph), graph_answerer(source, quantized))
        if not measured.passes and not force:
            raise QualityGateFailed(
                f"the int8 graph fails the quality gate: {measured}; bake without --quantize, "
                "or with --force to keep it anyway"
            )
        os.replace(quantized, graph)
    return measured
