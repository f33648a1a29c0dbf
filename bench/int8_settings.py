"""Which dynamic int8 settings to bake: per-channel or per-tensor scales, signed or unsigned
weights, every op type or MatMul only, on the real MiniLM, against its float32 graph.

    .venv/bin/python bench/int8_settings.py [--questions 300] [--rounds 5]

For each setting: model.onnx's size, the forward time over 4 and 21 windows of 384 tokens as a
ratio to float32's (the engine's passes: today's for float32, window by window for int8, and the
served setting in today's passes too), interleaved round by round, one thread, medians; then the
share of best answers identical to float32's and SQuAD EM / F1 on the first ``--questions`` of
the sample, and the same agreement on the quality gate's probes. Prints JSON with the CPU
(docs/benchmark.md, "int8", quotes it).
"""

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script: the repository's packages become importable
    sys.path.insert(0, str(ROOT))

from bench.run import BENCH, REAL_MODEL, SQUAD, bake, log  # noqa: E402  (after the path, above)
from bench.squad import best_over_truths, exact_match, f1, load_questions  # noqa: E402  (after the path, above)
from qa.operations.measure import cpu  # noqa: E402  (after the path, above)

VARIANTS = {
    "per-channel signed": {"per_channel": True, "weight_type": "QInt8"},
    "per-tensor signed": {"per_channel": False, "weight_type": "QInt8"},
    "per-channel unsigned": {"per_channel": True, "weight_type": "QUInt8"},
    "per-channel signed, MatMul only": {
        "per_channel": True,
        "weight_type": "QInt8",
        "op_types_to_quantize": ["MatMul"],
    },
}
SERVED = "per-channel signed"


def quantized(baked: Path, name: str, settings: dict) -> Path:
    """``baked``'s graph quantized with ``settings``, marked int8, in a directory of its own."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qa.model.backends.onnx import QUANTIZATION_KEY

    output = BENCH / ".int8-settings" / name.replace(" ", "-").replace(",", "")
    if not (output / "model.onnx").is_file():
        output.mkdir(parents=True, exist_ok=True)
        for file in ("config.json", "tokenizer.json", "tokenizer_config.json", "source.json"):
            shutil.copy(baked / file, output)
        options = {**settings, "weight_type": QuantType[settings["weight_type"]]}
        quantize_dynamic(baked / "model.onnx", output / "model.onnx", **options)
        model = onnx.load(str(output / "model.onnx"))
        onnx.helper.set_model_props(model, {QUANTIZATION_KEY: "int8"})
        onnx.save(model, str(output / "model.onnx"))
    return output


def agreement(best: dict, items: list[dict] | None) -> dict:
    """Each side's share of best answers identical to float32's, its F1 against them, and, with
    gold ``items``, its SQuAD EM / F1."""
    out = {}
    for side, answers in best.items():
        pairs = list(zip(answers, best["float32"], strict=True))
        row = {
            "identical": sum((a.start, a.end) == (b.start, b.end) for a, b in pairs) / len(pairs),
            "f1_against_float32": 100 * sum(f1(a.answer, b.answer) for a, b in pairs) / len(pairs),
        }
        if items:
            for name, metric in (("exact_match", exact_match), ("f1", f1)):
                row[name] = 100 * statistics.fmean(
                    best_over_truths(metric, a.answer, item["answers"])
                    for a, item in zip(answers, items, strict=True)
                )
        out[side] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import numpy as np

    from qa.model.backends import in_passes, window_by_window
    from qa.model.backends.onnx import session
    from qa.model.baking.quantization import load_probes
    from qa.model.loading import load_answerer

    baked = bake(REAL_MODEL, BENCH / ".minilm-baked")
    directories = {"float32": baked}
    directories |= {name: quantized(baked, name, s) for name, s in VARIANTS.items()}
    report = {
        "machine": cpu(),
        "model_mb": {n: (d / "model.onnx").stat().st_size / 1e6 for n, d in directories.items()},
    }
    runs = {name: session(d / "model.onnx", threads=1) for name, d in directories.items()}
    hidden = json.loads((baked / "config.json").read_text())["hidden_size"]
    sides = {"float32": in_passes(runs["float32"], hidden_size=hidden)}
    sides |= {name: window_by_window(runs[name]) for name in VARIANTS}
    sides[f"{SERVED}, today's passes"] = in_passes(runs[SERVED], hidden_size=hidden)
    rng = np.random.default_rng(0)
    for windows in (4, 21):
        ids = rng.integers(1000, 20000, (windows, 384))
        batch = ids, np.ones_like(ids), np.zeros_like(ids)
        times = {side: [] for side in sides}
        for forward in sides.values():
            forward(*batch)
        for _ in range(args.rounds):
            for side, forward in sides.items():
                started = time.perf_counter()
                forward(*batch)
                times[side].append(time.perf_counter() - started)
        base = statistics.median(times["float32"])
        report[f"{windows}x384_ratio"] = {s: statistics.median(t) / base for s, t in times.items()}
        log(f"{windows}x384: {report[f'{windows}x384_ratio']}")
    answerers = {name: load_answerer(str(d), threads=1) for name, d in directories.items()}
    items = load_questions(SQUAD)[: args.questions]
    for label, questions, gold in (("squad", items, items), ("probes", load_probes(), None)):
        best = {
            name: [answerer.answer(q["question"], q["context"])[0] for q in questions]
            for name, answerer in answerers.items()
        }
        report[label] = agreement(best, gold)
        log(f"{label}: {report[label]}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
