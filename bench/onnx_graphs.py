"""Which ONNX graph to bake: torch's two exporters x two attention implementations x ONNX Runtime's
graph optimisation levels (and the legacy eager graph through ONNX Runtime's offline transformer
optimizer), against the TorchScript trace, on the benchmark's four input sizes.

    .venv/bin/python bench/onnx_graphs.py [--rounds 5] [--only REGEX]

For bert-tiny's shape (random weights) and the real MiniLM: each graph's largest difference from
the torch model's logits (float32, padded batches as the engine builds them), and each graph's
median forward time as a ratio to the TorchScript trace's, interleaved round by round, one thread
on both sides. Prints a JSON report (docs/how-it-works.md, "The ONNX graph", quotes it).
"""

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script: the repository's packages become importable
    sys.path.insert(0, str(ROOT))

from bench.run import BENCH, REAL_MODEL, SQUAD, latency_inputs, log, make_bert_tiny_shape  # noqa: E402  (after the path, above)
from bench.squad import load_questions  # noqa: E402  (after the path, above)

GRAPHS = BENCH / ".onnx-graphs"
LEVELS = ("basic", "extended", "all")
REPEAT = {"Kit-Ho Mak": 40, "SQuAD paragraph": 20, "5,000 chars": 4, "20,000 chars": 1}


def batches(directory: Path) -> dict:
    """The engine's own padded batches of windows for the four sizes."""
    from qa.model.tokenization import load_tokenizer
    from qa.reader.answerer import Options, QuestionAnswerer

    tokenizer, special, _ = load_tokenizer(directory)
    answerer = QuestionAnswerer(
        tokenizer=tokenizer, forward=None, special_tokens=special, model_max_length=512
    )
    out = {}
    for size, (question, context) in latency_inputs(load_questions(SQUAD)).items():
        windows = answerer.windows(question, context, Options())  # 384-token windows
        out[size] = answerer.batch(windows)
    return out


def export(directory: Path, exporter: str, attention: str, path: Path) -> float:
    """Seconds to export the model with ``attention`` by ``exporter`` (unchecked: measured)."""
    from qa.model.backends.torch import load_model
    from qa.model.baking.export import export_onnx
    from qa.model.files import read_config
    from qa.model.probes import probes

    model = load_model(directory, attention=attention)
    checked = probes(directory, read_config(directory))
    started = time.perf_counter()
    export_onnx(model, path, checked, dynamo=exporter == "dynamo", check=False)
    return time.perf_counter() - started


def fuse(path: Path, config) -> Path:
    """``path``'s graph through ONNX Runtime's offline transformer optimizer (BERT's fusions:
    EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu), written beside it."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = path.with_name(path.stem + "-fused.onnx")
    optimize_model(
        str(path),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,
    ).save_model_to_file(str(fused))
    return fused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only",
        default="",
        help="a regular expression: graphs to measure, "
        "e.g. 'legacy-eager|dynamo-eager-basic' (default: all)",
    )
    args = parser.parse_args()
    import numpy as np
    import onnxruntime
    import torch

    from qa.model.backends import in_passes
    from qa.model.backends.onnx import session
    from qa.model.backends.torch import load_model, logits_module
    from qa.model.files import read_config
    from qa.model.probes import probes

    torch.set_num_threads(1)
    report = {}
    models = {
        "bert-tiny shape": make_bert_tiny_shape(BENCH / ".bert-tiny-shape"),
        "MiniLM": REAL_MODEL,
    }
    for name, directory in models.items():
        inputs = batches(directory)
        model = load_model(directory)
        hidden = model.config.hidden_size
        checked = probes(directory, read_config(directory))
        eager, _ = logits_module(model, checked, trace=False)
        traced, _ = logits_module(model, checked, trace=True)

        def torch_forward(logits, hidden=hidden):
            def one_pass(*arrays):
                with torch.inference_mode():
                    start, end = logits(*map(torch.from_numpy, arrays))
                return start.numpy(), end.numpy()

            return in_passes(one_pass, hidden_size=hidden)

        expected = {size: torch_forward(eager)(*batch) for size, batch in inputs.items()}
        candidates = {"torchscript": torch_forward(traced)}
        for exporter in ("legacy", "dynamo"):
            for attention in ("eager", "sdpa"):
                path = GRAPHS / name.replace(" ", "-") / f"{exporter}-{attention}.onnx"
                if not any(
                    re.search(args.only, f"{exporter}-{attention}-{level}") for level in LEVELS
                ):
                    continue
                seconds = export(directory, exporter, attention, path)
                report[f"{name} | {exporter}-{attention} | export s"] = round(seconds, 2)
                for level in LEVELS:
                    label = f"{exporter}-{attention}-{level}"
                    if not re.search(args.only, label):
                        continue
                    run = session(path, threads=1, graph_optimization_level=level)
                    candidates[label] = in_passes(run, hidden_size=hidden)
                    if (exporter, attention, level) == ("legacy", "eager", "basic"):
                        candidates[label + "-one-pass"] = in_passes(run, hidden_size=0)
                fused_label = f"{exporter}-{attention}-fused-all"
                if (exporter, attention) == ("legacy", "eager") and re.search(
                    args.only, fused_label
                ):
                    fused = fuse(path, model.config)
                    run = session(fused, threads=1, graph_optimization_level="all")
                    candidates[fused_label] = in_passes(run, hidden_size=hidden)
        for label, forward in candidates.items():
            report[f"{name} | {label} | max |logit diff|"] = max(
                float(np.abs(got - want).max())
                for size, batch in inputs.items()
                for got, want in zip(forward(*batch), expected[size], strict=True)
            )
        timings = {(label, size): [] for label in candidates for size in inputs}
        for round_ in range(args.rounds):
            for size, batch in inputs.items():
                for label, forward in candidates.items():
                    forward(*batch)  # warm
                    for _ in range(REPEAT[size]):
                        started = time.perf_counter()
                        forward(*batch)
                        timings[label, size].append(time.perf_counter() - started)
            log(f"{name}: round {round_ + 1} of {args.rounds}")
        for size, batch in inputs.items():
            reference = statistics.median(timings["torchscript", size])
            shape = "x".join(map(str, batch[0].shape))
            report[f"{name} | torchscript | {size} ({shape}) ms"] = round(1000 * reference, 3)
            for label in candidates:
                if label != "torchscript":
                    ratio = statistics.median(timings[label, size]) / reference
                    report[f"{name} | {label} | {size} ratio"] = round(ratio, 3)
    report["onnxruntime"] = onnxruntime.__version__
    report["torch"] = torch.__version__
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
