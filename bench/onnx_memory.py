"""Memory and latency of the onnx engine around a 20,000-character request: ONNX Runtime's memory
arena given back after each request of several windows (what qasite does), shrunk after every
run, kept, or off; glibc as it is, or with the torch engine's heap thresholds; each configuration
in a fresh process, the configurations interleaved run by run.

    .venv/bin/python bench/onnx_memory.py [--runs 3]

Needs the graphs bench/onnx_graphs.py exports (bench/.onnx-graphs/<model>/legacy-eager.onnx).
Prints, per model and configuration, the medians over runs of: RSS once warm (short requests
answered), peak RSS after the 20,000-character request, RSS right after it, and RSS after three
more short requests, in MB; and the median latency of each input size, in ms.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script: the repository's packages become importable
    sys.path.insert(0, str(ROOT))

from bench.run import BENCH, REAL_MODEL, SQUAD, latency_inputs  # noqa: E402  (after the path, above)
from bench.squad import load_questions  # noqa: E402  (after the path, above)

MODELS = {"bert-tiny shape": BENCH / ".bert-tiny-shape", "MiniLM": REAL_MODEL}
CONFIGS = {
    f"arena {arena}{', glibc thresholds' if glibc else ''}": {"arena": arena, "glibc": glibc}
    for arena in ("released after long requests", "shrunk every run", "kept", "off")
    for glibc in (False, True)
    if not glibc or arena == "released after long requests"
}
REPEAT = {"Kit-Ho Mak": 40, "SQuAD paragraph": 20, "5,000 chars": 4, "20,000 chars": 2}

CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from bench.worker import rss_mb
from qa.model.backends import in_passes, onnx
from qa.reader.answerer import QuestionAnswerer
from qa.model.files import read_config
from qa.model.tokenization import load_tokenizer

if {glibc!r}:  # (imports torch: compare this configuration's RSS by differences only)
    from qa.model.backends.torch import keep_scratch_memory
    keep_scratch_memory()
directory, graph, arena = Path({directory!r}), Path({graph!r}), {arena!r}
config = read_config(directory)
tokenizer, special, _ = load_tokenizer(directory)
if arena == "released after long requests":
    forward = onnx.load(graph, config, threads=1)
else:
    run = onnx.session(graph, threads=1, arena=arena != "off")
    forward = in_passes(
        lambda *batch: run(*batch, release_memory=arena == "shrunk every run"),
        hidden_size=config["hidden_size"],
    )
answerer = QuestionAnswerer(tokenizer=tokenizer, forward=forward, special_tokens=special,
                            model_max_length=512)
inputs = json.loads({inputs!r})
short = [inputs["Kit-Ho Mak"], inputs["SQuAD paragraph"]]
for _ in range(3):
    for question, context in short:
        answerer.answer(question, context)
warm = rss_mb("VmRSS")
answerer.answer(*inputs["20,000 chars"])
peak, after = rss_mb("VmHWM"), rss_mb("VmRSS")
for _ in range(3):
    for question, context in short:
        answerer.answer(question, context)
report = {{"warm": warm, "peak": peak, "after": after, "after short": rss_mb("VmRSS")}}
for size, count in {repeat!r}.items():
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        answerer.answer(*inputs[size])
        durations.append(time.perf_counter() - started)
    report[size + " ms"] = 1000 * statistics.median(durations)
report["after all"] = rss_mb("VmRSS")
print(json.dumps(report))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    inputs = json.dumps(latency_inputs(load_questions(SQUAD)))
    samples = {}
    for _ in range(args.runs):  # interleaved: each configuration once per run
        for name, directory in MODELS.items():
            graph = BENCH / ".onnx-graphs" / name.replace(" ", "-") / "legacy-eager.onnx"
            for label, config in CONFIGS.items():
                script = CHILD.format(
                    root=str(ROOT),
                    directory=str(directory),
                    graph=str(graph),
                    inputs=inputs,
                    repeat=REPEAT,
                    **config,
                )
                result = subprocess.run(
                    [sys.executable, "-c", script], capture_output=True, text=True, check=True
                )
                samples.setdefault(f"{name} | {label}", []).append(json.loads(result.stdout))
    report = {
        key: {field: round(statistics.median(run[field] for run in runs), 2) for field in runs[0]}
        for key, runs in samples.items()
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
