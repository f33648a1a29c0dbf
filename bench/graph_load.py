"""Loading a baked graph: the graph the onnx engine serves (model.optimized.onnx, its weights mapped
from model.optimized.onnx.data; qa/model/baking/optimization.py) against model.onnx, which it is
made from, in fresh processes from the runtime tree on Python 3.12, as Lambda runs it.

    .venv/bin/python bench/graph_load.py [--runs N] BAKED_DIR ...

Each BAKED_DIR is an output of `manage.py bake_model` (bench/models.py leaves them in
bench/.models/*/baked-*; the runtime tree, bench/.runtime, must exist: bench/models.py or
bench/run.py builds it). Beside each, "plain": a directory of links to its files but the optimized
graph, which qa.model.loading then serves model.onnx from, as before the optimized graph existed.
For every side, interleaved, medians of N fresh processes: ONNX Runtime's session alone
(qa.model.backends.onnx.session on the graph the directory serves) and the first answer through
the Lambda handler (bench/run.py's cold start), with its peak RSS. Prints a table; leaves nothing
behind.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script, bench/graph_load.py: the repository's packages importable
    sys.path.insert(0, str(ROOT))
from bench.run import TREE, cold_environment, first_answer_command, lambda_python  # noqa: E402
from qa.model.files import OPTIMIZED_DATA_FILE, OPTIMIZED_ONNX_FILE  # noqa: E402

# A fresh process that creates the session on the graph the directory serves (the optimized one
# first, as qa.model.loading chooses) and prints the seconds that took.
SESSION = """
import sys, time
from pathlib import Path
from qa.model.backends.onnx import session
directory = Path(sys.argv[1])
graph = next(directory / name for name in sys.argv[2:] if (directory / name).is_file())
started = time.perf_counter()
session(graph, threads=1)
print(time.perf_counter() - started)
"""


def plain_copy(baked: Path, into: Path) -> Path:
    """A directory in ``into`` of links to ``baked``'s files but the optimized graph's."""
    plain = into / baked.parent.name / baked.name
    plain.mkdir(parents=True)
    for path in baked.iterdir():
        if path.name not in (OPTIMIZED_ONNX_FILE, OPTIMIZED_DATA_FILE):
            (plain / path.name).symlink_to(path.resolve())
    return plain


def measure(sides: dict, python: str, runs: int) -> dict:
    """{label: {"session_s", "first_answer_s", "peak_rss_mb"}}: medians (peak: the largest) of
    ``runs`` fresh processes per side and measure, interleaved."""
    figures = {label: {"session": [], "first_answer": [], "rss": []} for label in sides}
    for _ in range(runs):
        for label, directory in sides.items():
            environment = cold_environment(PYTHONPATH=str(TREE))
            names = [OPTIMIZED_ONNX_FILE, "model.onnx"]
            command = [python, "-S", "-c", SESSION, str(directory), *names]
            done = subprocess.run(
                command, capture_output=True, text=True, env=environment, cwd=TREE, check=True
            )
            figures[label]["session"].append(float(done.stdout.split()[-1]))
            argv, environment, cwd = first_answer_command(directory, python)
            started = time.perf_counter()
            done = subprocess.run(
                argv, capture_output=True, text=True, env=environment, cwd=cwd, check=True
            )
            figures[label]["first_answer"].append(time.perf_counter() - started)
            figures[label]["rss"].append(float(done.stdout.split()[-1]))
    return {
        label: {
            "session_s": statistics.median(values["session"]),
            "first_answer_s": statistics.median(values["first_answer"]),
            "peak_rss_mb": max(values["rss"]),
        }
        for label, values in figures.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baked", nargs="+", type=Path, metavar="BAKED_DIR")
    parser.add_argument("--runs", type=int, default=11, help="fresh processes a side (11)")
    args = parser.parse_args()
    python = lambda_python()
    if python is None or not (TREE / "installed").is_file():
        sys.exit("needs a Python 3.12 and the runtime tree (bench/.runtime): run bench/models.py")
    with tempfile.TemporaryDirectory(prefix="graph-load-", dir=ROOT / "bench") as scratch:
        sides = {}
        for baked in args.baked:
            label = f"{baked.parent.name}/{baked.name}"
            sides[f"{label}, served"] = baked.resolve()
            sides[f"{label}, model.onnx"] = plain_copy(baked.resolve(), Path(scratch))
        results = measure(sides, python, args.runs)
    print(f"| side | session s | first answer s | peak RSS MB |  (medians of {args.runs})")
    print("|---|---:|---:|---:|")
    for label, row in results.items():
        print(
            f"| {label} | {row['session_s']:.3f} | {row['first_answer_s']:.3f} | "
            f"{row['peak_rss_mb']:.0f} |"
        )
    print(json.dumps({"load_average": os.getloadavg(), "results": results}))


if __name__ == "__main__":
    main()
