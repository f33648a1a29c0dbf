"""Under runserver/gunicorn the model loads in the background once the first page is out,
exactly once; and gunicorn serving qasite.wsgi holds a mixed load."""

import http.client
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from bench.run import free_port
from qa.reader.examples import KIT_HO
from tests.helpers import MODEL_LOADED, PATIENCE, wait_for_every_worker
from tests.lambda_events import CSRF_SECRET


def run_fresh(script: str, *, model: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter serving ``model``, as a server process starts, with the
    tests' graph cache; a request waits for the model's load (QA_LOAD_WAIT_SECONDS) up to
    PATIENCE."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=2 * PATIENCE,
        env={
            "QA_MODEL": str(model),
            "PATH": "/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
            "QA_CACHE_DIR": os.environ["QA_CACHE_DIR"],
            "QA_LOAD_WAIT_SECONDS": str(PATIENCE),
        },
    )


def test_requests_wait_for_the_background_load_within_the_bound_and_it_loads_once(
    settings, modern_model_dir
):
    """The page comes first, before the model starts loading; its end starts the load in the
    background; a request that needs the model waits for the load under way, for
    QA_LOAD_WAIT_SECONDS at most (then 503 with Retry-After), and never loads it again."""
    script = textwrap.dedent(
        """
        import threading
        from qa.model import loading
        loads = []
        started, release = threading.Event(), threading.Event()
        original = loading.load_answerer
        def slow_load(*args, **kwargs):
            loads.append(1)
            started.set()
            release.wait()  # a slow model, held until the script lets it finish
            return original(*args, **kwargs)
        from qa import services
        loading.load_answerer = slow_load
        from django.core.signals import request_finished
        loads_as_page_ends = []  # connected first, so it runs before qasite.wsgi's receiver
        request_finished.connect(lambda **_: loads_as_page_ends.append(len(loads)), weak=False)

        from qasite.wsgi import application
        from django.conf import settings
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        client = Client()
        kit_ho = {"question": "Who?", "context": "Kit-Ho Mak."}
        state_before_page = services.model_status()["state"]
        page = client.get("/")
        patience = settings.QA_LOAD_WAIT_SECONDS  # run_fresh's
        assert started.wait(patience), "the page's end did not start the load"
        state_after_page = services.model_status()["state"]
        settings.QA_LOAD_WAIT_SECONDS = 0.5
        impatient = client.post("/api/answer/", kit_ho)  # the load is held: always too long
        settings.QA_LOAD_WAIT_SECONDS = patience
        threading.Timer(0.5, release.set).start()
        patient = client.post("/api/answer/", kit_ho)
        print(page.status_code, state_before_page, loads_as_page_ends[0], state_after_page,
              impatient.status_code,
              impatient.get("Retry-After"), impatient.json()["detail"].replace(" ", "_"),
              patient.status_code, len(loads))
        """
    )
    result = run_fresh(script, model=modern_model_dir, cwd=settings.BASE_DIR)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "200",
        "idle",
        "0",
        "loading",
        "503",
        "1",
        "The_model_is_still_loading.",
        "200",
        "1",
    ]


def test_with_no_request_the_model_still_loads_in_the_background(settings, modern_model_dir):
    script = textwrap.dedent(
        """
        import time
        from django.conf import settings
        from qasite.wsgi import application
        from qa import services
        deadline = time.monotonic() + settings.QA_LOAD_WAIT_SECONDS  # run_fresh's patience
        while services.model_status()["state"] in ("idle", "loading"):
            assert time.monotonic() < deadline, "the model never loaded"
            time.sleep(0.05)
        print(services.model_status()["state"])
        """
    )
    result = run_fresh(script, model=modern_model_dir, cwd=settings.BASE_DIR)
    assert result.stdout.strip() == "ready", result.stderr


def test_the_background_loader_and_many_requests_at_once_load_the_model_once(
    settings, modern_model_dir
):
    """A cold process: 16 threads of answers, health checks and request ends (each starts the
    background load), and the idle timer, all at once. One load (counted by the loader), one
    "loaded" line in the log, every answer given, health ready on the engine configured."""
    script = textwrap.dedent(
        """
        import json, os, threading
        from concurrent.futures import ThreadPoolExecutor
        from qa.model import loading
        patience = float(os.environ["QA_LOAD_WAIT_SECONDS"])  # run_fresh's
        loads, asking = [], threading.Barrier(16, timeout=patience)
        original = loading.load_answerer
        def counted_load(*args, **kwargs):
            loads.append(1)
            return original(*args, **kwargs)
        loading.load_answerer = counted_load

        import qasite.wsgi as wsgi
        from qa import services
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        kit_ho = {"question": "Who?", "context": "Kit-Ho Mak."}
        def work(index):
            asking.wait()
            if index % 4 == 0:
                wsgi.start_loading_the_model()
                return Client().get("/api/health/").status_code
            return Client().post("/api/answer/", kit_ho).status_code
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(work, range(16)))
        services.lazy_answerer().get(timeout=patience)
        print(json.dumps({"loads": len(loads), "statuses": sorted(set(statuses)),
                          "health": services.model_status()}))
        """
    )
    result = run_fresh(script, model=modern_model_dir, cwd=settings.BASE_DIR)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["loads"] == 1, result.stderr
    assert got["statuses"] == [200]
    assert got["health"] == {
        "model": modern_model_dir.name,
        "quantization": None,
        "state": "ready",
        "engine": "onnx",
        "error": None,
    }
    assert result.stderr.count(MODEL_LOADED) == 1, result.stderr


# --- gunicorn under load ------------------------------------------------------------------------

FORM = urllib.parse.urlencode({**KIT_HO, "top_k": 1, "csrfmiddlewaretoken": CSRF_SECRET})
JSON = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
# (what, method, path, body, headers, the status it must get): pages, answers and mistakes.
MIX = [
    ("page", "GET", "/", None, {}, 200),
    ("health", "GET", "/api/health/", None, {}, 200),
    ("static", "GET", "/static/qa/site.css", None, {}, 200),
    ("answer", "POST", "/api/answer/", json.dumps(KIT_HO), JSON, 200),
    ("batch", "POST", "/api/answer/", json.dumps([KIT_HO] * 4), JSON, 200),
    ("form", "POST", "/", FORM, {**FORM_TYPE, "Cookie": f"csrftoken={CSRF_SECRET}"}, 200),
    ("bad json", "POST", "/api/answer/", '{"question": "Who?", ', JSON, 400),
    ("unknown field", "POST", "/api/answer/", json.dumps({**KIT_HO, "topk": 3}), JSON, 400),
    ("too long", "POST", "/api/answer/", json.dumps({**KIT_HO, "question": "x" * 501}), JSON, 400),
    ("no csrf", "POST", "/", FORM, FORM_TYPE, 403),
    ("wrong method", "PUT", "/api/answer/", "{}", JSON, 405),
]
WORKERS = 2
CLIENTS = 200  # concurrent connections at any moment
REQUESTS_PER_CONNECTION = 4  # then the client hangs up and connects again
WARM_UP_SECONDS = 3
LOAD_SECONDS = 12


def worker_rss_mb(master: int) -> dict[int, float]:
    """Resident memory of each gunicorn worker (the master's children), in MB."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    rss = {}
    for pid in map(int, children):
        status = Path(f"/proc/{pid}/status").read_text()
        rss[pid] = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024
    return rss


def drive(port: int, seconds: float) -> dict:
    """CLIENTS closed-loop clients cycling through MIX for ``seconds``: what went as expected,
    what did not, and how many connections it took."""
    started = time.monotonic()
    deadline = started + seconds
    lock = threading.Lock()
    done, wrong, connections = Counter(), [], [0]

    def client(offset: int) -> None:
        turn = offset
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                connections[0] += 1
            try:
                for _ in range(REQUESTS_PER_CONNECTION):
                    what, method, path, body, headers, expected = MIX[turn % len(MIX)]
                    turn += 1
                    connection.request(method, path, body, headers)
                    response = connection.getresponse()
                    response.read()
                    with lock:
                        done[what] += 1
                        if response.status != expected:
                            wrong.append((what, response.status))
                    if response.will_close or time.monotonic() >= deadline:
                        break
            except OSError as error:
                with lock:
                    wrong.append((what, repr(error)))
            finally:
                connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"done": done, "wrong": wrong, "connections": connections[0], "seconds": elapsed}


@pytest.mark.load
def test_gunicorn_serves_a_mixed_load_without_errors_and_steady_memory(
    settings, modern_model_dir, tmp_path
):
    """2 workers x 4 threads on loopback, 200 clients for 12 s: every response as expected, no
    worker restarted, worker memory steady after the warm-up. Figures print with ``pytest -s``."""
    port = free_port()
    env = {
        **os.environ,
        "QA_MODEL": str(modern_model_dir),
        "QA_THROTTLE_RATE": "off",  # one address sends everything here
        "HF_HUB_OFFLINE": "1",
    }
    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "qasite.wsgi:application",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_every_worker(server, log_path, WORKERS)
        warm_up = drive(port, WARM_UP_SECONDS)
        before = worker_rss_mb(server.pid)
        run = drive(port, LOAD_SECONDS)
        after = worker_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    requests = sum(run["done"].values())
    print(
        f"\nload: {requests} requests over {run['connections']} connections in "
        f"{run['seconds']:.1f} s ({requests / run['seconds']:.0f}/s) from {CLIENTS} clients, "
        f"{len(run['wrong'])} unexpected; by kind: {dict(run['done'])}"
    )
    for pid, rss in before.items():
        end = after.get(pid, 0.0)
        print(f"worker {pid}: RSS {rss:.1f} MB after warm-up, {end:.1f} MB after load")
    wrong = warm_up["wrong"] + run["wrong"]
    assert wrong == [], (wrong[:20], log_path.read_text())
    assert set(run["done"]) == {what for what, *_ in MIX}
    assert after.keys() == before.keys()  # no worker died or was replaced
    for pid, rss in before.items():
        assert after[pid] - rss < 40, f"worker {pid} grew from {rss:.1f} to {after[pid]:.1f} MB"
