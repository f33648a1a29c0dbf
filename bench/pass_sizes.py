"""Windows per forward pass (qa.model.backends.PASS_HIDDEN_FLOATS) against speed, float32.

    .venv/bin/python bench/pass_sizes.py [--rounds 15]

The engine's float32 graph of bert-tiny's shape and of the real MiniLM over 4 and 21 windows of
384 tokens, run in passes of several sizes, interleaved round by round, one thread, medians, as
ratios to today's size (the first of each list). Prints JSON with the CPU (docs/benchmark.md,
"Pass size", quotes it).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script: the repository's packages become importable
    sys.path.insert(0, str(ROOT))

from bench.run import BENCH, REAL_MODEL, bake, log, make_bert_tiny_shape  # noqa: E402  (after the path, above)
from qa.operations.measure import cpu  # noqa: E402  (after the path, above)

# Windows per pass: today's (PASS_HIDDEN_FLOATS at 384 tokens) first, then the alternatives.
SIZES = {"bert-tiny shape": [5, 3, 2, 1, 8, 21], "MiniLM (real)": [2, 1, 3, 4]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    import numpy as np

    from qa.model.backends.onnx import session

    models = {
        "bert-tiny shape": bake(
            make_bert_tiny_shape(BENCH / ".bert-tiny-shape"), BENCH / ".bert-tiny-baked"
        ),
        "MiniLM (real)": bake(REAL_MODEL, BENCH / ".minilm-baked"),
    }
    report = {"machine": cpu(), "rounds": args.rounds}
    rng = np.random.default_rng(0)
    for name, directory in models.items():
        run = session(directory / "model.onnx", threads=1)
        for windows in (4, 21):
            ids = rng.integers(1000, 20000, (windows, 384))
            mask, types = np.ones_like(ids), np.zeros_like(ids)

            def forward(rows, run=run, ids=ids, mask=mask, types=types):
                for first in range(0, len(ids), rows):
                    part = slice(first, first + rows)
                    run(ids[part], mask[part], types[part])

            times = {rows: [] for rows in SIZES[name]}
            for rows in times:
                forward(rows)
            for _ in range(args.rounds):
                for rows in times:
                    started = time.perf_counter()
                    forward(rows)
                    times[rows].append(time.perf_counter() - started)
            today = statistics.median(times[SIZES[name][0]])
            report[f"{name} {windows}x384"] = {
                rows: {"ms": 1000 * statistics.median(t), "ratio": statistics.median(t) / today}
                for rows, t in times.items()
            }
            log(f"{name} {windows}x384: {report[f'{name} {windows}x384']}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
