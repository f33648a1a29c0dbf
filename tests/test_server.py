"""Beyond Lambda: the runtime tree (the image's /var/task, the zip's contents) served as a plain
HTTP server by gunicorn, as the Dockerfile's `server` target runs it (for ECS/Fargate, App Runner
or Elastic Beanstalk), on Lambda's Python (3.12), seeing nothing but the tree and gunicorn."""

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from bench.run import free_port
from qa.reader.examples import KIT_HO
from tests.helpers import REPO, wait_for_every_worker
from tests.lambda_runtime import lambda_python

TREE = REPO / "build" / "runtime"
SERVER = REPO / "build" / "server"  # gunicorn, from requirements/server.lock (`make test`)
WORKERS = 2


def request(url: str, body: dict | None = None, accept: str = "application/json"):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": accept, "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (TREE / "installed").is_file():
        pytest.skip("no runtime tree: `make runtime` (or `make test`) builds build/runtime")
    if not (SERVER / "installed").is_file():
        pytest.skip("no gunicorn for Lambda's Python: `make test` installs build/server")
    home = tmp_path_factory.mktemp("server-home")
    port = free_port()
    log = home / "gunicorn.log"
    # The server target's command and environment; -S: no site-packages, nothing but the tree
    # and gunicorn can be imported.
    process = subprocess.Popen(
        [
            lambda_python(),
            "-S",
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--threads",
            "4",
            "--worker-tmp-dir",
            str(home),
            "qasite.wsgi",
        ],
        cwd=TREE,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(home),
            "PYTHONPATH": f"{TREE}:{SERVER}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "QA_MODEL": str(TREE / "model"),
            "QA_MODEL_NAME": "baked",
            "HF_HUB_OFFLINE": "1",
            "DJANGO_SETTINGS_MODULE": "qasite.settings",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        },
    )
    try:
        wait_for_every_worker(process, log, WORKERS)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_gunicorn_serves_the_page(server):
    status, headers, body = request(server + "/", accept="text/html")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "Kit-Ho Mak" in body and "Content-Security-Policy" in headers


def test_gunicorn_answers_the_api(server):
    status, _, body = request(server + "/api/answer/", KIT_HO)
    assert status == 200
    answer = json.loads(body)
    assert KIT_HO["context"][answer["start"] : answer["end"]] == answer["answer"] != ""


def test_gunicorn_reports_health_and_refuses_a_blank_question(server):
    status, _, body = request(server + "/api/health/")
    assert status == 200 and json.loads(body) == {
        "model": "baked",
        "quantization": None,
        "state": "ready",
        "engine": "onnx",
        "error": None,
    }
    status, _, body = request(server + "/api/answer/", {**KIT_HO, "question": ""})
    assert status == 400 and "question" in json.loads(body)


def test_the_server_target_runs_this_command():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert '"-m", "gunicorn", "--bind", "0.0.0.0:8080"' in dockerfile
    assert '"qasite.wsgi"]' in dockerfile
    assert "\nFROM ${BASE_IMAGE} AS server\n" in dockerfile
