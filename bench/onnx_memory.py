"""Memory of the onnx engine around a 20,000-character request: ONNX Runtime's memory arena on or
off, windows in cache-sized passes or in one pass; each configuration in a fresh process.

    .venv/bin/python bench/onnx_memory.py [--runs 3]

Needs the graphs bench/onnx_graphs.py exports (bench/.onnx-graphs/<model>/legacy-eager.onnx).
Prints, per model and configuration, the medians over runs of: RSS once warm (short requests
answered), peak RSS after the 20,000-character request, RSS right after it, and RSS after three
more short requests; in MB.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BENCH, REAL_MODEL, latency_inputs, squad_questions  # noqa: E402

MODELS = {"bert-tiny shape": BENCH / ".bert-tiny-shape", "MiniLM": REAL_MODEL}
CONFIGS = {
    "arena, cache-sized passes": {"memory_arena": True, "passes": True},
    "no arena, cache-sized passes": {"memory_arena": False, "passes": True},
    "arena, one pass": {"memory_arena": True, "passes": False},
    "no arena, one pass": {"memory_arena": False, "passes": False},
}

CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from qa.backends import in_passes
from qa.backends.onnx import session
from qa.engine import QuestionAnswerer
from qa.loading import keep_scratch_memory
from qa.model_files import read_config
from qa.tokenization import load_tokenizer

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

keep_scratch_memory()
directory = Path({directory!r})
tokenizer, special, _ = load_tokenizer(directory)
run = session(Path({graph!r}), threads=1, memory_arena={memory_arena!r})
hidden = read_config(directory)["hidden_size"] if {passes!r} else 0
answerer = QuestionAnswerer(tokenizer=tokenizer, forward=in_passes(run, hidden_size=hidden),
                            special_tokens=special, model_max_length=512)
inputs = json.loads({inputs!r})
short = [inputs["Kit-Ho Mak"], inputs["SQuAD paragraph"]]
for _ in range(3):
    for question, context in short:
        answerer.answer(question, context)
warm = rss("VmRSS")
answerer.answer(*inputs["20,000 chars"])
peak, after = rss("VmHWM"), rss("VmRSS")
for _ in range(3):
    for question, context in short:
        answerer.answer(question, context)
print(json.dumps({{"warm": warm, "peak": peak, "after": after, "after short": rss("VmRSS")}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    inputs = json.dumps(latency_inputs(squad_questions()))
    samples = {}
    for _ in range(args.runs):  # interleaved: each configuration once per run
        for name, directory in MODELS.items():
            graph = BENCH / ".onnx-graphs" / name.replace(" ", "-") / "legacy-eager.onnx"
            for label, config in CONFIGS.items():
                script = CHILD.format(root=str(ROOT), directory=str(directory), graph=str(graph),
                                      inputs=inputs, **config)
                result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                        text=True, check=True)
                samples.setdefault(f"{name} | {label}", []).append(json.loads(result.stdout))
    report = {
        key: {field: round(statistics.median(run[field] for run in runs), 1) for field in runs[0]}
        for key, runs in samples.items()
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
