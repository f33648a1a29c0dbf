"""qasite against transformers v4's question-answering pipeline, side by side in one run.

    .venv/bin/python bench/run.py [--quick]

Creates the reference virtualenv (bench/.venv-ref: transformers 4.57.6, torch 2.13.0) on first use,
then measures parity, warm latency, cold start, memory, throughput and footprint, and writes
bench/results/latest.{json,md} and bench/results/latency.png. Timings are medians of interleaved
runs in the same machine and run; ratios are qasite / reference.
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SHARED = ROOT.parent / "shared"
REAL_MODEL = SHARED / "models" / "qa-minilm-squad"
SQUAD = SHARED / "data" / "squad-v1.1-dev-sample.json"
REF_VENV = BENCH / ".venv-ref"
REF_PACKAGES = ["transformers==4.57.6", "torch==2.13.0", "numpy==2.4.6", "gunicorn==27.0.1"]
REF_RUNTIME = ["transformers==4.57.6", "torch==2.13.0", "numpy==2.4.6"]
PYTHON = sys.executable
REF_PYTHON = str(REF_VENV / "bin" / "python")

sys.path.insert(0, str(ROOT))
from tests.squad import best_over_truths, exact_match, f1  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- set-up ------------------------------------------------------------------------------------


def ensure_reference_venv() -> None:
    marker = REF_VENV / "installed"
    if marker.is_file() and marker.read_text() == " ".join(REF_PACKAGES):
        return
    log("creating the reference virtualenv (transformers 4.57.6)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(REF_VENV)], check=True)
    subprocess.run(
        [REF_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REF_PACKAGES],
        check=True,
    )
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
        vocab_size=30522, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=512, max_position_embeddings=512,
    )
    BertForQuestionAnswering(config).eval().save_pretrained(directory)
    for name in ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]:
        shutil.copy(REAL_MODEL / name, directory)
    return directory


def bake(source: Path, output: Path) -> Path:
    """What production serves: the model as `manage.py fetch_model` writes it (ONNX, TorchScript)."""
    from qa.baking import save_for_serving
    from qa.model_files import FAST_TORCHSCRIPT_FILE, ONNX_FILE, TORCHSCRIPT_FILE

    if not all((output / name).is_file() for name in (ONNX_FILE, TORCHSCRIPT_FILE, FAST_TORCHSCRIPT_FILE)):
        save_for_serving(source, output)
    return output


def squad_questions() -> list[dict]:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    return [
        {"question": qa["question"], "context": p["context"], "answers": [a["text"] for a in qa["answers"]]}
        for article in data for p in article["paragraphs"] for qa in p["qas"]
    ]


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
    """One side (qasite or reference) in its own process; see bench/worker.py."""

    def __init__(self, side: str, model: Path, env: dict | None = None):
        python = REF_PYTHON if side.startswith("ref-") else PYTHON
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [python, str(BENCH / "worker.py"), side, str(model)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})},
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

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def pair(ours: str, reference: str, model: dict) -> tuple[Worker, Worker]:
    """``model``: {"qasite": baked directory, "reference": the same weights as transformers saves them}."""
    return Worker(ours, model["qasite"]), Worker(reference, model["reference"])


# --- 1. parity ---------------------------------------------------------------------------------


def spans(answers: list[dict]) -> list[tuple]:
    """What "identical" compares: each candidate's text and offsets."""
    return [(a["answer"], a["start"], a["end"]) for a in answers]


def quality(side: str, best: list[str], items: list[dict]) -> dict:
    """Exact match and F1 (in %) of each question's best answer against its gold answers."""
    return {
        f"{side}_{name}": 100 * sum(best_over_truths(metric, answer, item["answers"])
                                    for answer, item in zip(best, items)) / len(items)
        for name, metric in (("exact_match", exact_match), ("f1", f1))
    }


def parity(questions: list[dict], count: int, model: dict) -> dict:
    ours, reference = pair("qasite-engine", "ref-pipeline", model)
    items = questions[:count]
    results = {}
    for label, options in [("defaults", {}), ("handle_impossible_answer", {"handle_impossible_answer": True}),
                           ("top_k=3", {"top_k": 3})]:
        same = 0
        max_diff = 0.0
        best = {"qasite": [], "reference": []}
        for item in items:
            mine = ours.ask(do="answer", question=item["question"], context=item["context"], options=options)["result"]
            theirs = reference.ask(do="answer", question=item["question"], context=item["context"], options=options)["result"]
            if spans(mine) == spans(theirs):
                same += 1
                # v4's summed scores can pass 1 on long contexts; qasite reports them capped at 1.
                max_diff = max([max_diff] + [abs(a["score"] - min(b["score"], 1.0))
                                             for a, b in zip(mine, theirs)])
            best["qasite"].append(mine[0]["answer"])
            best["reference"].append(theirs[0]["answer"])
        results[label] = {
            "questions": count,
            "identical": same,
            "identical_share": same / count,
            "max_score_diff_when_identical": max_diff,
            **quality("qasite", best["qasite"], items),
            **quality("reference", best["reference"], items),
        }
        log(f"parity {label}: {same}/{count} identical, max score diff {max_diff:.2e}")
    ours.close()
    reference.close()
    return results


def fast_agreement(questions: list[dict], count: int, model: dict) -> dict:
    """Fast mode (bfloat16) against exact mode, both qasite, on the real model."""
    items = questions[:count]
    best = {}
    for side in ("exact", "fast"):
        worker = Worker("qasite-engine" if side == "exact" else "qasite-engine-fast", model["qasite"])
        best[side] = [worker.ask(do="answer", question=item["question"], context=item["context"])["result"][0]
                      for item in items]
        worker.close()
    same = sum(spans([a]) == spans([b]) for a, b in zip(best["exact"], best["fast"]))
    log(f"fast mode: {same}/{count} answers identical to exact mode")
    return {"questions": count, "identical": same, "identical_share": same / count,
            **quality("exact", [a["answer"] for a in best["exact"]], items),
            **quality("fast", [a["answer"] for a in best["fast"]], items)}


# --- 2. warm latency (and 4. memory) ------------------------------------------------------------


def warm_latency(inputs: dict, models: dict, rounds: int, repeat: dict) -> dict:
    results = {}
    for model_name, model in models.items():
        for layer, (our_side, their_side) in {
            "in-process": ("qasite-engine", "ref-pipeline"),
            "end-to-end": ("qasite-handler", "ref-wsgi"),
            "in-process, fast mode": ("qasite-engine-fast", "ref-pipeline"),
        }.items():
            ours, reference = pair(our_side, their_side, model)
            for size, (question, context) in inputs.items():
                timings = {"qasite": [], "reference": []}
                for _ in range(rounds):  # interleaved, so that drift hits both sides alike
                    for side, worker in (("qasite", ours), ("reference", reference)):
                        timings[side] += worker.ask(do="time", question=question, context=context,
                                                    repeat=repeat[size])["durations"]
                row = {side: summary(values) for side, values in timings.items()}
                row["ratio"] = row["qasite"]["median_ms"] / row["reference"]["median_ms"]
                results[f"{model_name} | {layer} | {size}"] = row
                log(f"latency {model_name} {layer} {size}: {row['qasite']['median_ms']:.2f} ms vs "
                    f"{row['reference']['median_ms']:.2f} ms ({row['ratio']:.2f})")
            results[f"{model_name} | {layer} | peak RSS MB"] = {
                "qasite": ours.ask(do="rss")["max_rss_mb"], "reference": reference.ask(do="rss")["max_rss_mb"],
            }
            ours.close()
            reference.close()
    return results


def summary(durations: list[float]) -> dict:
    ordered = sorted(durations)
    return {
        "median_ms": 1000 * statistics.median(ordered),
        "p90_ms": 1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "n": len(ordered),
    }


def floor(inputs: dict, model: dict, repeat: dict) -> dict:
    """Tokenization plus the forward pass over all windows: what no implementation avoids."""
    script = (
        "import json, statistics, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from qa.engine import Options\n"
        "from qa.loading import load_answerer\n"
        f"answerer = load_answerer({str(model['qasite'])!r}, threads=1)\n"
        f"inputs = json.loads({json.dumps(json.dumps(inputs))})\n"
        f"repeat = {json.dumps(repeat)}\n"
        "out = {}\n"
        "for size, (q, c) in inputs.items():\n"
        "    seq, stride = answerer._window_shape(Options())\n"
        "    times = []\n"
        "    for _ in range(repeat[size] * 3):\n"
        "        start = time.perf_counter()\n"
        "        answerer._forward(*answerer._batch(answerer._encode(q, c, Options(), seq, stride)))\n"
        "        times.append(time.perf_counter() - start)\n"
        "    out[size] = 1000 * statistics.median(times)\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- 3. cold start -----------------------------------------------------------------------------


COLD_SCRIPTS = {
    "qasite first answer (Lambda handler)": (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"event = json.load(open({str(ROOT / 'events' / 'http-api-v2-post-answer.json')!r}))\n"
        "from qasite import lambda_handler\n"
        "response = lambda_handler.handler(event, None)\n"
        "assert response['statusCode'] == 200, response\n"
    ),
    "qasite first page (WSGI, model loading in background)": (
        "import io, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from qasite.wsgi import application\n"
        "environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'SERVER_NAME': 'localhost',\n"
        "           'SERVER_PORT': '80', 'wsgi.url_scheme': 'http', 'wsgi.input': io.BytesIO(),\n"
        "           'HTTP_HOST': 'localhost'}\n"
        "status = []\n"
        "body = b''.join(application(environ, lambda s, h: status.append(s)))\n"
        "assert status[0].startswith('200'), status\n"
    ),
    "reference first answer (WSGI app)": (
        "import io, json, sys\n"
        f"sys.path.insert(0, {str(BENCH)!r})\n"
        "from reference_app import application\n"
        "body = json.dumps({'question': 'What is my name?', 'context': \"I'm Kit-Ho Mak. I come from Hong Kong.\"}).encode()\n"
        "environ = {'REQUEST_METHOD': 'POST', 'PATH_INFO': '/answer', 'CONTENT_LENGTH': str(len(body)),\n"
        "           'wsgi.input': io.BytesIO(body)}\n"
        "json.loads(b''.join(application(environ, lambda s, h: None)))\n"
    ),
}


def cold_start(model: dict, runs: int) -> dict:
    results = {}
    suffix = (
        "import os\n"
        f"sys.path.insert(0, {str(BENCH)!r})\n"
        "from worker import peak_rss_mb\n"
        "print(peak_rss_mb())\n"
        "os._exit(0)\n"  # do not wait for the background loader: the page is what is timed
    )
    for label, script in COLD_SCRIPTS.items():
        side = "reference" if label.startswith("reference") else "qasite"
        python = REF_PYTHON if side == "reference" else PYTHON
        env = {**os.environ, "QA_MODEL": str(model[side]), "DJANGO_ALLOWED_HOSTS": "*",
               "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        times, rss = [], []
        for _ in range(runs):
            start = time.perf_counter()
            result = subprocess.run([python, "-c", script + suffix], capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - start)
            if result.returncode != 0:
                raise RuntimeError(f"{label} failed: {result.stderr[-2000:]}")
            rss.append(float(result.stdout.strip().splitlines()[-1]))
        results[label] = {"median_s": statistics.median(times), "runs": runs, "peak_rss_mb": max(rss)}
        log(f"cold start {label}: {statistics.median(times):.2f} s")
    return results


# --- 5. throughput -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(side: str, model: dict, port: int) -> subprocess.Popen:
    """gunicorn on loopback: 2 workers (one per core), 1 thread each, torch on 1 thread."""
    common = ["-w", "2", "--threads", "1", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    env = {**os.environ, "QA_MODEL": str(model[side]), "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "QA_THROTTLE_RATE": "off"}  # one client
    if side == "qasite":
        command = [str(Path(PYTHON).parent / "gunicorn"), "--chdir", str(ROOT), *common, "qasite.wsgi:application"]
    else:
        command = [str(REF_VENV / "bin" / "gunicorn"), "--chdir", str(BENCH), *common, "reference_app:application"]
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
                results[f"{side} | concurrency {level}"] = row = load(port, path, body, level, seconds)
                log(f"throughput {side} c={level}: {row['requests_per_s']:.0f} req/s, "
                    f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, errors {row['errors']}")
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


REF_TREE = BENCH / ".ref-runtime"


def ensure_footprint_trees() -> None:
    """The runtime tree as the image installs it (make runtime: a no-op when up to date), and the
    reference's dependencies installed the same way, measured once (it never changes, and
    gzipping a gigabyte takes a minute)."""
    subprocess.run(["make", "-C", str(ROOT), "runtime"], check=True, stdout=subprocess.DEVNULL)
    if not (REF_TREE / "installed").is_file():
        shutil.rmtree(REF_TREE, ignore_errors=True)
        subprocess.run([REF_PYTHON, "-m", "pip", "install", "--quiet", "--no-warn-conflicts",
                        "--target", str(REF_TREE), *REF_RUNTIME], check=True)
        shutil.copy(BENCH / "reference_app.py", REF_TREE)
        subprocess.run([REF_PYTHON, "-m", "compileall", "-q", "-j", "0", "-x", "py312_intrinsics",
                        str(REF_TREE)], stdout=subprocess.DEVNULL)
        (REF_TREE / "installed").write_text("")
    if not (REF_TREE / "size.json").is_file():
        (REF_TREE / "size.json").write_text(json.dumps(tree_size(REF_TREE, exclude="size.json")))


def footprint() -> dict:
    ours = ROOT / "build" / "runtime"
    results = {"qasite": tree_size(ours, exclude="model"),
               "reference": json.loads((REF_TREE / "size.json").read_text())}
    results["ratio_installed"] = results["qasite"]["installed_mb"] / results["reference"]["installed_mb"]
    results["ratio_gzipped"] = results["qasite"]["gzipped_mb"] / results["reference"]["gzipped_mb"]
    log(f"footprint: {results['qasite']} vs {results['reference']}")
    return results


# --- report ------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import tokenizers
    import torch
    import transformers

    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "transformers (qasite)": transformers.__version__,
        "tokenizers (qasite)": tokenizers.__version__, "transformers (reference)": "4.57.6",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer questions and repeats (< 3 min)")
    args = parser.parse_args()
    if not REAL_MODEL.is_dir() or not SQUAD.is_file():
        sys.exit(f"needs the shared model and data beside the repo: {SHARED}")
    setup_started = time.perf_counter()
    ensure_reference_venv()
    questions = squad_questions()
    inputs = latency_inputs(questions)
    tiny_weights = make_bert_tiny_shape(BENCH / ".bert-tiny-shape")
    tiny = {"qasite": bake(tiny_weights, BENCH / ".bert-tiny-baked"), "reference": tiny_weights}
    real = {"qasite": bake(REAL_MODEL, BENCH / ".minilm-baked"), "reference": REAL_MODEL}
    models = {"bert-tiny shape": tiny, "MiniLM (real)": real}
    quick = args.quick
    repeat = {"Kit-Ho Mak": 20 if quick else 100, "SQuAD paragraph": 10 if quick else 50,
              "5,000 chars": 2 if quick else 10, "20,000 chars": 1 if quick else 4}
    ensure_footprint_trees()
    started = time.perf_counter()
    report = {"mode": "quick" if quick else "full", "machine": machine(),
              "setup_seconds": started - setup_started}
    report["parity"] = parity(questions, 60 if quick else 1000, real)
    report["fast_mode"] = fast_agreement(questions, 60 if quick else 1000, real)
    report["latency"] = warm_latency(inputs, models if not quick else {"bert-tiny shape": tiny},
                                     rounds=3 if quick else 5, repeat=repeat)
    report["floor_ms"] = floor(inputs, tiny, repeat)
    report["cold_start"] = cold_start(tiny, runs=2 if quick else 5)
    report["throughput"] = throughput(tiny, inputs, [4] if quick else [1, 4, 16], 3 if quick else 15)
    report["footprint"] = footprint()
    report["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    name = "quick" if quick else "latest"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    from bench.report import chart, markdown

    (RESULTS / f"{name}.md").write_text(markdown(report))
    chart(report, RESULTS / f"{name}-latency.png")
    log(f"done in {report['seconds']:.0f} s: bench/results/{name}.md")


if __name__ == "__main__":
    main()
