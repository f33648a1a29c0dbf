"""qasite against transformers v4's question-answering pipeline, side by side in one run.

    .venv/bin/python bench/run.py [--quick]

qasite runs on both its engines: ONNX Runtime (the default, QA_ENGINE=onnx) and TorchScript
(QA_ENGINE=torch, with its bfloat16 fast mode). Creates what it measures on first use and reuses
it: the reference virtualenv (bench/.venv-ref: transformers 4.57.6, torch 2.13.0), the baked
models, the torch-free runtime tree and Lambda zip with a model of the production model's shape
(bench/.runtime, bench/.lambda-x86_64.zip: docker/build-runtime.sh, assemble.sh, zip.sh, for
Lambda's Python 3.12), and the reference's dependencies installed the same way
(bench/.ref-runtime). Then it measures parity, warm latency, memory, cold start, throughput
and footprint, the real model in int8 against float32 (bake_model --quantize int8), and writes
bench/results/latest.{json,md} and latest-latency.png (quick.* with
--quick). Timings are medians of interleaved runs in the same machine and run; ratios are
qasite / reference.
"""

import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SHARED = ROOT.parent / "shared"
REAL_MODEL = SHARED / "models" / "qa-minilm-squad"
SQUAD = SHARED / "data" / "squad-v1.1-dev-sample.json"
REF_VENV = BENCH / ".venv-ref"
# With torch's CPU build (requirements/torch.txt; reference_pip_install); sentencepiece and
# protobuf for v4 to read (and convert) the SentencePiece tokenizer layouts the parity tests bake.
REF_PACKAGES = [
    "transformers==4.57.6",
    "numpy==2.4.6",
    "gunicorn==27.0.1",
    "sentencepiece==0.2.3",
    "protobuf==7.36.2",
]
REF_RUNTIME = ["transformers==4.57.6", "numpy==2.4.6"]
TORCH_REQUIREMENTS = ROOT / "requirements" / "torch.txt"
# As the Makefile's .venv takes torch: from PyTorch's CPU index alone, a bounded wait where it does
# not answer (then pip's local wheels only); TORCH_INDEX, as for make, names a mirror of it.
TORCH_INDEX = os.environ.get("TORCH_INDEX", "https://download.pytorch.org/whl/cpu")
PYTHON = sys.executable
REF_PYTHON = str(REF_VENV / "bin" / "python")
# The torch-free runtime tree with a model of the production model's shape, and its zip.
TREE = BENCH / ".runtime"
ZIP = BENCH / ".lambda-x86_64.zip"
REF_TREE = BENCH / ".ref-runtime"
EVENT = ROOT / "events" / "http-api-v2-post-answer.json"

if not __package__:  # run as a script, bench/run.py: the repository's packages become importable
    sys.path.insert(0, str(ROOT))
from bench.report import (  # noqa: E402  (after the path, above)
    FIRST_ANSWER_LABEL,
    FIRST_PAGE_LABEL,
    REFERENCE_LABEL,
    chart,
    markdown,
)
from bench.squad import best_over_truths, exact_match, f1, load_questions  # noqa: E402  (after the path, above)
from qa.operations.measure import cpu  # noqa: E402  (after the path, above)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- set-up ------------------------------------------------------------------------------------


def reference_pip_install(packages: list[str], *options: str) -> None:
    """pip install torch's CPU build, then ``packages`` and torch's own dependencies from pip's
    usual index, with the reference virtualenv's pip (``options`` before them, e.g. ``--target
    DIR``), one index per install, as the Makefile's .venv. Raises subprocess.CalledProcessError
    if pip fails."""
    pip = [REF_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--no-warn-conflicts", *options]
    torch_only = ["--no-deps", "--index-url", TORCH_INDEX, "--retries", "1", "--timeout", "5"]
    subprocess.run([*pip, *torch_only, "-r", str(TORCH_REQUIREMENTS)], check=True)
    needs = subprocess.run(
        [REF_PYTHON, "-c", TORCH_NEEDS, *options], capture_output=True, text=True, check=True
    )
    subprocess.run([*pip, *packages, *needs.stdout.split()], check=True)


# The requirements of the torch installed (into the directory of a --target DIR option, else the
# virtualenv), without its extras', one a line.
TORCH_NEEDS = """
import importlib.metadata, sys
path = [sys.argv[sys.argv.index("--target") + 1]] if "--target" in sys.argv else sys.path
[torch] = importlib.metadata.distributions(name="torch", path=path)
print("\\n".join(r.replace(" ", "") for r in torch.requires or [] if "extra ==" not in r))
"""


def ensure_reference_venv() -> None:
    marker = REF_VENV / "installed"
    if marker.is_file() and marker.read_text() == " ".join(REF_PACKAGES):
        return
    log("creating the reference virtualenv (transformers 4.57.6)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(REF_VENV)], check=True)
    reference_pip_install(REF_PACKAGES)
    marker.write_text(" ".join(REF_PACKAGES))


def make_bert_tiny_shape(directory: Path) -> Path:
    """Random weights with exactly the shape of mrm8488/bert-tiny-5-finetuned-squadv2 (2 layers,
    hidden 128): speed does not depend on the weight values. Tokenizer: the real model's."""
    if (directory / "model.safetensors").is_file():
        return directory
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=512,
    )
    BertForQuestionAnswering(config).eval().save_pretrained(directory)
    for name in ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]:
        shutil.copy(REAL_MODEL / name, directory)
    return directory


def bake(source: Path, output: Path, quantize: str | None = None) -> Path:
    """What production serves: the model as `manage.py bake_model [--quantize int8]` writes it
    (ONNX and TorchScript)."""
    from qa.model.baking.bake import save_for_serving
    from qa.model.files import FAST_TORCHSCRIPT_FILE, ONNX_FILE, TORCHSCRIPT_FILE

    if not all(
        (output / name).is_file() for name in (ONNX_FILE, TORCHSCRIPT_FILE, FAST_TORCHSCRIPT_FILE)
    ):
        log(f"baking {source.name} (bake_model's ONNX graph and TorchScript traces, {quantize})")
        save_for_serving(source, output, name=source.name, revision=None, quantize=quantize)
    return output


def lambda_python() -> str | None:
    """Lambda's Python (3.12), as docker/lambda-python.sh finds it, or None."""
    result = subprocess.run(
        [str(ROOT / "docker" / "lambda-python.sh")], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def fingerprint(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def docker_script(name: str, *arguments: Path, environment: dict) -> None:
    """Run docker/``name`` with ``arguments``, its output dropped. Raises
    subprocess.CalledProcessError if it fails."""
    command = [str(ROOT / "docker" / name), *map(str, arguments)]
    subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)


def ensure_runtime_tree(baked: Path) -> str | None:
    """The torch-free runtime tree as Lambda runs it, with the ``baked`` model, and its zip, by
    the Dockerfile's and `make zip`'s own scripts. The installed packages are reused while what
    build-runtime.sh reads (itself, wheel-platforms.sh, runtime.lock, runtime-tree.txt) is
    unchanged; the app and the model are put in afresh each run. Returns Lambda's Python, or
    None (saying so) when there is none."""
    python = lambda_python()
    if python is None:
        log(
            "no Python 3.12 (AWS Lambda's; see docker/lambda-python.sh): the runtime tree, its "
            "zip, its cold start and its footprint are left out of this run"
        )
        return None
    environment = {**os.environ, "PYTHON": python}
    stamp = fingerprint(
        ROOT / "docker" / "build-runtime.sh",
        ROOT / "docker" / "wheel-platforms.sh",
        ROOT / "requirements" / "runtime.lock",
        ROOT / "docker" / "runtime-tree.txt",
    )
    marker = TREE / "installed"  # zip.sh leaves out this name, as it does the Makefile's marker
    if not marker.is_file() or marker.read_text() != stamp:
        log("building the torch-free runtime tree (docker/build-runtime.sh)")
        shutil.rmtree(TREE, ignore_errors=True)
        docker_script("build-runtime.sh", TREE, environment=environment)
        marker.write_text(stamp)
    for app in ("qa", "qasite", "templates"):  # so that no file deleted from the app lingers
        shutil.rmtree(TREE / app, ignore_errors=True)
    docker_script("assemble.sh", TREE, baked, environment=environment)
    docker_script("zip.sh", TREE, ZIP, environment=environment)
    return python


def ensure_reference_tree() -> None:
    """The reference's dependencies installed as a runtime tree is (pip --target, bytecode
    compiled), and its size, measured once: it never changes, and gzipping a gigabyte takes a
    minute."""
    if not (REF_TREE / "installed").is_file():
        log("installing the reference's runtime tree (transformers, torch, numpy)")
        shutil.rmtree(REF_TREE, ignore_errors=True)
        reference_pip_install(REF_RUNTIME, "--target", str(REF_TREE))
        shutil.copy(BENCH / "reference_app.py", REF_TREE)
        subprocess.run(
            [
                REF_PYTHON,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "-x",
                "py312_intrinsics",
                str(REF_TREE),
            ],
            stdout=subprocess.DEVNULL,
        )
        (REF_TREE / "installed").write_text("")
    if not (REF_TREE / "size.json").is_file():
        (REF_TREE / "size.json").write_text(json.dumps(tree_size(REF_TREE, exclude="size.json")))


def latency_inputs(questions: list[dict]) -> dict[str, tuple[str, str]]:
    """The four sizes: Kit-Ho Mak, a typical SQuAD paragraph, 5,000 and 20,000 characters."""
    paragraphs = list(dict.fromkeys(q["context"] for q in questions))
    long_text = " ".join(paragraphs)
    question = questions[0]["question"]
    return {
        "Kit-Ho Mak": ("What is my name?", "I'm Kit-Ho Mak. I come from Hong Kong."),
        "SQuAD paragraph": (question, questions[0]["context"]),
        "5,000 chars": (question, long_text[:5000]),
        "20,000 chars": (question, long_text[:20000]),
    }


# --- worker processes --------------------------------------------------------------------------


class Worker:
    """One side (qasite on an engine, or the reference) in its own process; see bench/worker.py.
    ``model``: {"qasite": baked directory, "reference": the same weights as transformers saves
    them}."""

    def __init__(self, side: str, model: dict):
        reference = side.startswith("ref-")
        self.process = subprocess.Popen(
            [
                REF_PYTHON if reference else PYTHON,
                str(BENCH / "worker.py"),
                side,
                str(model["reference" if reference else "qasite"]),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        )
        self.ready = self._read()["ready"]

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("benchmark worker died")
        return json.loads(line)

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def answer(self, question: str, context: str, **options) -> list[dict]:
        return self.ask(do="answer", question=question, context=context, options=options)["result"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


# --- 1. parity ---------------------------------------------------------------------------------


OPTION_SETS = {
    "defaults": {},
    "handle_impossible_answer": {"handle_impossible_answer": True},
    "top_k=3": {"top_k": 3},
}
SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")


def spans(answers: list[dict]) -> list[tuple]:
    """What "identical" compares: each candidate's text and offsets."""
    return [(a["answer"], a["start"], a["end"]) for a in answers]


def why_different(item: dict, ours: list[dict], theirs: list[dict]) -> str:
    """The differences on purpose (docs/how-it-works.md, "The QA algorithm"), or "other"."""
    if any(token in item["question"] + item["context"] for token in SPECIAL_TOKENS):
        return "typed special token (text in qasite, a token in v4)"
    if any(answer["score"] == 0 for answer in theirs):
        return "degenerate window (v4 lists spans scoring 0; qasite drops them)"
    return "other"


def quality(side: str, best: list[str], items: list[dict]) -> dict:
    """Exact match and F1 (in %) of each question's best answer against its gold answers."""
    return {
        f"{side}_{name}": 100
        * sum(
            best_over_truths(metric, answer, item["answers"])
            for answer, item in zip(best, items, strict=True)
        )
        / len(items)
        for name, metric in (("exact_match", exact_match), ("f1", f1))
    }


def parity(questions: list[dict], count: int, model: dict) -> dict:
    """The onnx engine against v4's pipeline on the real model: each question with each option
    set; the differing ones listed with the reason."""
    ours, reference = Worker("qasite-engine", model), Worker("ref-pipeline", model)
    items = questions[:count]
    results = {}
    for label, options in OPTION_SETS.items():
        max_diff = 0.0
        best = {"qasite": [], "reference": []}
        differences = []
        for index, item in enumerate(items):
            mine = ours.answer(item["question"], item["context"], **options)
            theirs = reference.answer(item["question"], item["context"], **options)
            if spans(mine) == spans(theirs):
                # v4's summed scores can pass 1 on long contexts; qasite reports them capped at 1.
                max_diff = max(
                    [max_diff]
                    + [
                        abs(a["score"] - min(b["score"], 1.0))
                        for a, b in zip(mine, theirs, strict=True)
                    ]
                )
            else:
                differences.append(
                    {
                        "index": index,
                        "why": why_different(item, mine, theirs),
                        "qasite": mine,
                        "reference": theirs,
                    }
                )
            best["qasite"].append(mine[0]["answer"])
            best["reference"].append(theirs[0]["answer"])
        same = count - len(differences)
        results[label] = {
            "questions": count,
            "identical": same,
            "identical_share": same / count,
            "max_score_diff_when_identical": max_diff,
            "differences": differences,
            **quality("qasite", best["qasite"], items),
            **quality("reference", best["reference"], items),
        }
        log(f"parity {label}: {same}/{count} identical, max score diff {max_diff:.2e}")
    ours.close()
    reference.close()
    return results


def fast_agreement(questions: list[dict], count: int, model: dict) -> dict:
    """Fast mode (TorchScript in bfloat16) against exact mode (the onnx engine), on the real
    model."""
    items = questions[:count]
    best = {}
    for mode, side in (("exact", "qasite-engine"), ("fast", "qasite-engine-fast")):
        worker = Worker(side, model)
        best[mode] = [worker.answer(item["question"], item["context"])[0] for item in items]
        worker.close()
    same = sum(spans([a]) == spans([b]) for a, b in zip(best["exact"], best["fast"], strict=True))
    log(f"fast mode: {same}/{count} answers identical to exact mode")
    return {
        "questions": count,
        "identical": same,
        "identical_share": same / count,
        **quality("exact", [a["answer"] for a in best["exact"]], items),
        **quality("fast", [a["answer"] for a in best["fast"]], items),
    }


def int8(
    questions: list[dict],
    count: int,
    real: dict,
    quantized: dict,
    inputs: dict,
    rounds: int,
    repeat: dict,
) -> dict:
    """The real MiniLM baked with --quantize int8 against its float32 bake on the onnx engine:
    the bake's quality gate (source.json), EM / F1 of both and the share of identical best
    answers on ``count`` SQuAD questions, and warm latency in process, interleaved."""
    items = questions[:count]
    workers = {"float32": Worker("qasite-engine", real), "int8": Worker("qasite-engine", quantized)}
    best = {
        side: [worker.answer(item["question"], item["context"])[0] for item in items]
        for side, worker in workers.items()
    }
    same = sum(spans([a]) == spans([b]) for a, b in zip(best["float32"], best["int8"], strict=True))
    log(f"int8: {same}/{count} best answers identical to float32's")
    latency = interleaved(workers, inputs, rounds, repeat, label="MiniLM float32 / int8")
    for worker in workers.values():
        worker.close()
    return {
        "questions": count,
        "identical": same,
        "identical_share": same / count,
        **quality("float32", [a["answer"] for a in best["float32"]], items),
        **quality("int8", [a["answer"] for a in best["int8"]], items),
        "quality_gate": json.loads((quantized["qasite"] / "source.json").read_text())[
            "quality_gate"
        ],
        "model_mb": {
            side: (model["qasite"] / "model.onnx").stat().st_size / 1e6
            for side, model in (("float32", real), ("int8", quantized))
        },
        "latency": latency,
    }


# --- 2. warm latency ---------------------------------------------------------------------------


# Each layer's sides, all interleaved round by round; "reference" is what ratios divide by.
LAYERS = {
    "in-process": {
        "onnx": "qasite-engine",
        "TorchScript": "qasite-engine-torch",
        "TorchScript bf16 (fast mode)": "qasite-engine-fast",
        "floor": "qasite-floor",
        "reference": "ref-pipeline",
    },
    # The Lambda handler (Django, DRF, apig-wsgi) against a bare WSGI app around the pipeline.
    "end-to-end": {"onnx": "qasite-handler", "reference": "ref-wsgi"},
}


def warm_latency(inputs: dict, plan: dict, rounds: int, repeat: dict) -> dict:
    """``plan``: {model name: (model, [layers])}. Returns
    {model: {layer: {size: {side: summary}}}}."""
    results = {}
    for model_name, (model, layers) in plan.items():
        for layer in layers:
            workers = {side: Worker(name, model) for side, name in LAYERS[layer].items()}
            results.setdefault(model_name, {})[layer] = interleaved(
                workers, inputs, rounds, repeat, label=f"{model_name} {layer}"
            )
            for worker in workers.values():
                worker.close()
    return results


def interleaved(workers: dict, inputs: dict, rounds: int, repeat: dict, label: str) -> dict:
    """Each worker's latency on each input, interleaved: {size: {side: summary}}."""
    table = {}
    for size, (question, context) in inputs.items():
        timings = {side: [] for side in workers}
        # Interleaved in slices of a tenth of a round (about 10 ms or one request), so that
        # a burst of load from the machine's other users hits every side alike.
        step = max(1, repeat[size] // 10)
        for _ in range(rounds * -(-repeat[size] // step)):
            for side, worker in workers.items():
                timings[side] += worker.ask(
                    do="time", question=question, context=context, repeat=step
                )["durations"]
        row = table[size] = {side: summary(values) for side, values in timings.items()}
        log(
            f"latency {label} {size}: "
            + ", ".join(f"{side} {row[side]['median_ms']:.2f} ms" for side in row)
        )
    return table


def summary(durations: list[float]) -> dict:
    ordered = sorted(durations)
    return {
        "median_ms": 1000 * statistics.median(ordered),
        "p90_ms": 1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "n": len(ordered),
    }


def floor(inputs: dict, model: dict, repeat: dict) -> dict:
    """The floor (worker.qasite_floor) split into its two parts: {size: {"tokenization_ms",
    "forward_ms", "total_ms"}}, medians, in a process of its own (the latency tables' "floor"
    column is the floor interleaved with the other sides)."""
    script = (
        "import json, statistics, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from qa.reader.answerer import Options\n"
        "from qa.model.loading import load_answerer\n"
        f"answerer = load_answerer({str(model['qasite'])!r}, threads=1)\n"
        f"inputs = json.loads({json.dumps(json.dumps(inputs))})\n"
        f"repeat = {json.dumps(repeat)}\n"
        "out = {}\n"
        "for size, (q, c) in inputs.items():\n"
        "    times = {'tokenization_ms': [], 'forward_ms': [], 'total_ms': []}\n"
        "    for _ in range(repeat[size] * 3):\n"
        "        start = time.perf_counter()\n"
        "        batch = answerer._batch(answerer._encode(answerer.windows(q, c, Options())))\n"
        "        middle = time.perf_counter()\n"
        "        answerer._forward(*batch)\n"
        "        end = time.perf_counter()\n"
        "        times['tokenization_ms'].append(middle - start)\n"
        "        times['forward_ms'].append(end - middle)\n"
        "        times['total_ms'].append(end - start)\n"
        "    out[size] = {key: 1000 * statistics.median(values) for key, values in times.items()}\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- 3. memory ---------------------------------------------------------------------------------


MEMORY_SIDES = {
    "onnx": "qasite-handler",
    "TorchScript": "qasite-handler-torch",
    "reference": "ref-wsgi",
}


def answer_each(worker, questions: list[tuple[str, str]], *, times: int) -> None:
    """Ask ``worker`` each (question, context), ``times`` over."""
    for _ in range(times):
        for question, context in questions:
            worker.answer(question, context)


def memory(inputs: dict, models: dict) -> dict:
    """RSS in MB around a 20,000-character request, through the Lambda handler (qasite, each
    engine) and the reference's WSGI app, each in a fresh process: once warm (short requests
    answered), the peak after the long request, right after it, and after short requests again."""
    short = [inputs["Kit-Ho Mak"], inputs["SQuAD paragraph"]]
    results = {}
    for model_name, model in models.items():
        for side, name in MEMORY_SIDES.items():
            worker = Worker(name, model)
            answer_each(worker, short, times=3)
            warm = worker.ask(do="rss")
            worker.answer(*inputs["20,000 chars"])
            after = worker.ask(do="rss")
            answer_each(worker, short, times=3)
            later = worker.ask(do="rss")
            worker.close()
            row = results.setdefault(model_name, {})[side] = {
                "warm_mb": warm["current_mb"],
                "peak_mb": after["peak_mb"],
                "after_mb": after["current_mb"],
                "after_short_mb": later["current_mb"],
            }
            log(
                f"memory {model_name} {side}: warm {row['warm_mb']:.0f} MB, "
                f"peak {row['peak_mb']:.0f}, after {row['after_mb']:.0f}, "
                f"after short ones {row['after_short_mb']:.0f}"
            )
    return results


# --- 4. cold start -----------------------------------------------------------------------------


# Each script ends by printing the process's peak RSS (MB); a script's first argument is the event.
FIRST_ANSWER = """
import json, sys
from qasite import lambda_handler
response = lambda_handler.handler(json.load(open(sys.argv[1])), None)
assert response["statusCode"] == 200, response
"""
FIRST_PAGE = """
import io
from qasite.wsgi import application
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "localhost",
           "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
           "HTTP_HOST": "localhost"}
status = []
body = b"".join(application(environ, lambda s, h: status.append(s)))
assert status[0].startswith("200"), status
"""
REFERENCE_FIRST_ANSWER = """
import io, json
from reference_app import application
question = {"question": "What is my name?", "context": "I'm Kit-Ho Mak. I come from Hong Kong."}
body = json.dumps(question).encode()
environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/answer", "CONTENT_LENGTH": str(len(body)),
           "wsgi.input": io.BytesIO(body)}
json.loads(b"".join(application(environ, lambda s, h: None)))
"""
PEAK_RSS = """
import os
status = open("/proc/self/status").read().splitlines()
print([int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")][0])
os._exit(0)  # without waiting for a background model load: the page is what is timed
"""


def cold_environment(**variables: str) -> dict:
    """The environment of a timed fresh process: this one's, offline, one thread, any host,
    and ``variables``."""
    return {
        **os.environ,
        "DJANGO_ALLOWED_HOSTS": "*",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        **variables,
    }


def first_answer_command(model_dir: Path, tree_python: str | None) -> tuple:
    """(argv, environment, working directory) of a fresh process answering EVENT (Kit-Ho Mak)
    through the Lambda handler with ``model_dir`` on the onnx engine, printing its peak RSS: as
    Lambda runs the tree (its Python, nothing but the tree on the path: -S, no site-packages)
    when ``tree_python``, else from the dev virtualenv."""
    if tree_python:
        environment = cold_environment(PYTHONPATH=str(TREE), QA_MODEL=str(model_dir))
        return [tree_python, "-S", "-c", FIRST_ANSWER + PEAK_RSS, str(EVENT)], environment, TREE
    environment = cold_environment(PYTHONPATH=str(ROOT), QA_MODEL=str(model_dir), QA_ENGINE="onnx")
    return [PYTHON, "-c", FIRST_ANSWER + PEAK_RSS, str(EVENT)], environment, ROOT


def cold_commands(tiny: dict, tree_python: str | None) -> dict:
    """{label: (argv, environment, working directory)} of each fresh process timed."""
    commands = {}
    if tree_python:
        commands[FIRST_ANSWER_LABEL] = first_answer_command(TREE / "model", tree_python)
        argv, environment, cwd = commands[FIRST_ANSWER_LABEL]
        commands[FIRST_PAGE_LABEL] = ([*argv[:3], FIRST_PAGE + PEAK_RSS], environment, cwd)
    onnx = first_answer_command(tiny["qasite"], None)
    commands["qasite first answer: dev virtualenv, Lambda handler, onnx (Python 3.11)"] = onnx
    argv, environment, cwd = onnx
    commands[
        "qasite first answer: dev virtualenv, Lambda handler, TorchScript (QA_ENGINE=torch)"
    ] = (argv, {**environment, "QA_ENGINE": "torch"}, cwd)
    commands[REFERENCE_LABEL] = (
        [REF_PYTHON, "-c", REFERENCE_FIRST_ANSWER + PEAK_RSS],
        cold_environment(PYTHONPATH=str(BENCH), QA_MODEL=str(tiny["reference"])),
        BENCH,
    )
    return commands


def time_fresh_processes(commands: dict, runs: int) -> dict:
    """Each of ``commands`` ({label: (argv, environment, working directory)}, each printing its
    peak RSS in MB last) run ``runs`` times, interleaved: {label: {"median_s": seconds from
    process start to exit, "runs", "peak_rss_mb"}}. Raises RuntimeError if a process fails."""
    times = {label: [] for label in commands}
    rss = {label: [] for label in commands}
    for _ in range(runs):
        for label, (argv, environment, cwd) in commands.items():
            start = time.perf_counter()
            result = subprocess.run(argv, capture_output=True, text=True, env=environment, cwd=cwd)
            times[label].append(time.perf_counter() - start)
            if result.returncode != 0:
                raise RuntimeError(f"{label} failed: {result.stderr[-2000:]}")
            rss[label].append(float(result.stdout.strip().splitlines()[-1]))
    results = {}
    for label in commands:
        results[label] = {
            "median_s": statistics.median(times[label]),
            "runs": runs,
            "peak_rss_mb": max(rss[label]),
        }
        log(f"cold start {label}: {results[label]['median_s']:.2f} s")
    return results


def cold_start(tiny: dict, tree_python: str | None, runs: int) -> dict:
    """Each command's seconds from process start to exit (median of ``runs``, interleaved) and
    peak RSS; then, once, where the tree's time goes (-X importtime)."""
    commands = cold_commands(tiny, tree_python)
    results = time_fresh_processes(commands, runs)
    if tree_python:
        for label in (FIRST_PAGE_LABEL, FIRST_ANSWER_LABEL):
            argv, environment, cwd = commands[label]
            results[label]["imports_ms"] = import_times(
                [argv[0], "-X", "importtime", *argv[1:]], environment, cwd
            )
    return results


def import_times(argv: list[str], environment: dict, cwd: Path, top: int = 14) -> dict:
    """Import time (ms) by distribution: each module's own time (python -X importtime's "self")
    summed by its top-level package, largest first, and the total. One run, so a profile, not a
    timing (importtime itself slows imports down)."""
    stderr = subprocess.run(argv, capture_output=True, text=True, env=environment, cwd=cwd).stderr
    own = {}
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            own[package] = own.get(package, 0) + int(match.group(1)) / 1000
    ordered = sorted(own.items(), key=lambda item: -item[1])
    return {"total": sum(own.values()), **dict(ordered[:top])}


# --- 5. throughput -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(side: str, model: dict, port: int) -> subprocess.Popen:
    """gunicorn on loopback: 2 workers (one per core), 1 thread each, torch on 1 thread."""
    common = ["-w", "2", "--threads", "1", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    env = {
        **os.environ,
        "QA_MODEL": str(model[side]),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "QA_THROTTLE_RATE": "off",
    }  # one client
    if side == "qasite":
        command = [
            str(Path(PYTHON).parent / "gunicorn"),
            "--chdir",
            str(ROOT),
            *common,
            "qasite.wsgi:application",
        ]
    else:
        command = [
            str(REF_VENV / "bin" / "gunicorn"),
            "--chdir",
            str(BENCH),
            *common,
            "reference_app:application",
        ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def load(port: int, path: str, body: bytes, concurrency: int, seconds: float) -> dict:
    """Closed-loop load: each client sends its next request when the last is answered."""
    latencies, errors = [], [0]
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                latencies.append(time.perf_counter() - start) if ok else None
                errors[0] += 0 if ok else 1

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begin
    ordered = sorted(latencies) or [0.0]
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "errors": errors[0],
    }


def wait_for(port: int, path: str, body: bytes, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on port {port} never answered")


def throughput(model: dict, inputs: dict, levels: list[int], seconds: float) -> dict:
    question, context = inputs["SQuAD paragraph"]
    body = json.dumps({"question": question, "context": context}).encode()
    results = {}
    for side, path in (("qasite", "/api/answer/"), ("reference", "/answer")):
        port = free_port()
        server = serve(side, model, port)
        try:
            wait_for(port, path, body)
            # Until every worker has loaded its model (one answered is not all loaded).
            load(port, path, body, max(levels), seconds=3)
            for level in levels:
                results[f"{side} | concurrency {level}"] = row = load(
                    port, path, body, level, seconds
                )
                log(
                    f"throughput {side} c={level}: {row['requests_per_s']:.0f} req/s, "
                    f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                    f"errors {row['errors']}"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


# --- 6. footprint ------------------------------------------------------------------------------


def tree_size(path: Path, exclude: str | None = None) -> dict:
    """Installed size, and gzipped size of a tar of it, in MB; without the ``exclude`` folder."""
    skipped = path / exclude if exclude else None
    files = [f for f in path.rglob("*") if f.is_file() and not (skipped and skipped in f.parents)]
    with tempfile.TemporaryFile() as file:
        with tarfile.open(fileobj=file, mode="w:gz", compresslevel=6) as archive:
            for f in files:
                archive.add(f, arcname=str(f.relative_to(path)), recursive=False)
        gzipped = file.tell()
    return {"installed_mb": sum(f.stat().st_size for f in files) / 1e6, "gzipped_mb": gzipped / 1e6}


def footprint(tiny: dict, with_tree: bool) -> dict:
    """The torch-free runtime tree (with the production-shape model, and without), its zip, and
    the reference's dependencies (and with the same weights as transformers saves them)."""
    reference = json.loads((REF_TREE / "size.json").read_text())
    weights = tree_size(tiny["reference"])
    results = {
        "reference": reference,
        "reference with the model": {key: reference[key] + weights[key] for key in reference},
    }
    if with_tree:
        results["qasite with the model"] = tree_size(TREE)
        results["qasite"] = tree_size(TREE, exclude="model")
        with zipfile.ZipFile(ZIP) as archive:
            unzipped = sum(entry.file_size for entry in archive.infolist())
        results["zip"] = {"zip_mb": ZIP.stat().st_size / 1e6, "unzipped_mb": unzipped / 1e6}
    log(f"footprint: {results}")
    return results


# --- report ------------------------------------------------------------------------------------


def machine() -> dict:
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    return {
        **cpu(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "transformers (qasite, build time)": transformers.__version__,
        "tokenizers (qasite)": tokenizers.__version__,
        "transformers (reference)": "4.57.6",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer questions and repeats (< 3 min)"
    )
    args = parser.parse_args()
    if not REAL_MODEL.is_dir() or not SQUAD.is_file():
        sys.exit(f"needs the shared model and data beside the repo: {SHARED}")
    quick = args.quick
    setup_started = time.perf_counter()
    ensure_reference_venv()
    questions = load_questions(SQUAD)
    inputs = latency_inputs(questions)
    tiny_weights = make_bert_tiny_shape(BENCH / ".bert-tiny-shape")
    tiny = {"qasite": bake(tiny_weights, BENCH / ".bert-tiny-baked"), "reference": tiny_weights}
    real = {"qasite": bake(REAL_MODEL, BENCH / ".minilm-baked"), "reference": REAL_MODEL}
    tree_python = ensure_runtime_tree(tiny["qasite"])
    ensure_reference_tree()
    repeat = {
        "Kit-Ho Mak": 20 if quick else 100,
        "SQuAD paragraph": 10 if quick else 50,
        "5,000 chars": 2 if quick else 10,
        "20,000 chars": 1 if quick else 4,
    }
    started = time.perf_counter()
    report = {
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "setup_seconds": started - setup_started,
        "load_average_start": os.getloadavg(),
    }
    report["parity"] = parity(questions, 60 if quick else 1000, real)
    report["fast_mode"] = fast_agreement(questions, 60 if quick else 1000, real)
    report["int8"] = int8(
        questions,
        60 if quick else 300,
        real,
        {"qasite": bake(REAL_MODEL, BENCH / ".minilm-int8-baked", quantize="int8")},
        inputs,
        rounds=3 if quick else 5,
        repeat=repeat,
    )
    plan = {"bert-tiny shape": (tiny, ["in-process", "end-to-end"])}
    if not quick:
        plan["MiniLM (real)"] = (real, ["in-process"])
    report["latency"] = warm_latency(inputs, plan, rounds=3 if quick else 5, repeat=repeat)
    report["floor_ms"] = floor(inputs, tiny, repeat)
    report["memory"] = memory(
        inputs,
        {"bert-tiny shape": tiny} if quick else {"bert-tiny shape": tiny, "MiniLM (real)": real},
    )
    report["cold_start"] = cold_start(tiny, tree_python, runs=2 if quick else 7)
    report["throughput"] = throughput(
        tiny, inputs, [4] if quick else [1, 4, 16], 3 if quick else 15
    )
    report["footprint"] = footprint(tiny, with_tree=tree_python is not None)
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    name = "quick" if quick else "latest"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(report))
    chart(report, RESULTS / f"{name}-latency.png")
    log(f"done in {report['seconds']:.0f} s: bench/results/{name}.md")


if __name__ == "__main__":
    main()
