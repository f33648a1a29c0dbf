"""The Lambda image's contents, built outside Docker by the Dockerfile's own scripts (`make
runtime` -> build/runtime), served by the real Lambda runtime: the Runtime Interface Emulator
running awslambdaric, as the AWS base image does."""

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.run import free_port, tree_size
from tests.test_lambda_handler import EVENTS, make_event

REPO = Path(__file__).resolve().parent.parent
TREE = REPO / "build" / "runtime"
TOOLS = REPO / "build" / "tools"
RIE = TOOLS / "samcli" / "local" / "rapid" / "aws-lambda-rie-x86_64"
OLD_DEMO_IMAGE_MB = 490


@pytest.fixture(scope="module")
def tree() -> Path:
    if not (TREE / "installed").is_file():
        pytest.skip("no runtime tree: `make runtime` (or `make test`) builds build/runtime")
    return TREE


def test_tree_holds_runtime_dependencies_only(tree):
    names = {path.name for path in tree.iterdir()}
    assert {"django", "rest_framework", "torch", "tokenizers", "apig_wsgi", "qa", "qasite"} <= names
    assert not names & {"pytest", "pytest_django", "hypothesis", "cfnlint", "_pytest"}
    # The baked TorchScript model needs neither transformers nor what only it or the hub imports.
    assert not names & {"transformers", "sympy", "huggingface_hub", "safetensors", "setuptools"}
    assert not (tree / "torch" / "_inductor").exists() and not (tree / "torch" / "_dynamo").exists()
    assert not any(name.startswith("nvidia") for name in names)  # CPU-only torch
    assert not (tree / "torch" / "test").exists() and not (tree / "torch" / "include").exists()
    assert sorted(path.name for path in (tree / "model").iterdir()) == [
        "config.json", "model.bf16.torchscript.pt", "model.torchscript.pt", "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_tree_is_far_below_the_old_demo_image(tree, capsys):
    size = tree_size(tree)
    model_mb = sum(file.stat().st_size for file in (tree / "model").iterdir()) / 1e6
    with capsys.disabled():
        print(f"\nruntime tree: {size['installed_mb']:.0f} MB installed ({model_mb:.0f} MB of it "
              f"the model), {size['gzipped_mb']:.0f} MB gzipped")
    assert size["gzipped_mb"] < OLD_DEMO_IMAGE_MB * 0.75


@pytest.fixture(scope="module")
def emulator(tree, tmp_path_factory):
    """The tree served by the emulator on a loopback port, with a read-only-like environment."""
    if not RIE.is_file():
        pytest.skip("no emulator: `make test` fetches it into build/tools")
    home = tmp_path_factory.mktemp("lambda-tmp")
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONPATH": f"{tree}:{TOOLS / 'ric'}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HF_HUB_OFFLINE": "1",
        "QA_MODEL": str(tree / "model"),
        "QA_MODEL_NAME": "qa-minilm-squad",
        "DJANGO_ALLOWED_HOSTS": ".execute-api.eu-west-1.amazonaws.com,.elb.amazonaws.com",
        "DJANGO_HTTPS": "1",
    }
    process = subprocess.Popen(
        [str(RIE), "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
         sys.executable, "-S", "-m", "awslambdaric", "qasite.lambda_handler.handler"],
        cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"

    def invoke(event: dict) -> dict:
        request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    yield invoke
    process.terminate()
    output = process.communicate(timeout=10)[0].decode()
    assert "Traceback" not in output, output


def test_emulator_answers_the_json_api(emulator):
    response = emulator(json.loads((EVENTS / "http-api-v2-post-answer.json").read_text()))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["answer"] == "Kit-Ho Mak"


def test_emulator_answers_base64_bodies_from_a_rest_api(emulator):
    body = json.dumps({"question": "Where do I come from?",
                       "context": "I'm Kit-Ho Mak. I come from Hong Kong."})
    event = make_event("rest-api-v1", "POST", "/api/answer/", body=body, b64=True,
                       headers={"Content-Type": "application/json", "Accept": "application/json"})
    response = emulator(event)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["answer"] == "Hong Kong"


def test_emulator_serves_the_page_health_and_keep_warm(emulator):
    page = emulator(make_event("http-api-v2"))
    assert page["statusCode"] == 200
    assert b"Kit-Ho Mak" in body_of(page)
    assert page["cookies"] and "Secure" in page["cookies"][0]
    health = emulator(make_event("alb", path="/api/health/", headers={"Accept": "application/json"}))
    assert json.loads(health["body"]) == {"model": "qa-minilm-squad", "state": "ready", "error": None}
    assert emulator(json.loads((EVENTS / "keep-warm.json").read_text())) == {"warm": True}


def test_emulator_serves_the_schema_the_browsable_api_static_files_and_errors(emulator):
    html = {"Accept": "text/html"}
    schema = emulator(make_event("http-api-v2", path="/api/schema/"))
    assert schema["statusCode"] == 200 and b"openapi" in body_of(schema)
    browsable = emulator(make_event("http-api-v2", path="/api/answer/", headers=html))
    assert browsable["statusCode"] == 200 and b"Answer" in body_of(browsable)
    static = emulator(make_event("http-api-v2", path="/static/qa/site.css"))
    assert static["statusCode"] == 200
    missing = emulator(make_event("http-api-v2", path="/nowhere/", headers=html))
    assert missing["statusCode"] == 404


def test_the_tree_answers_in_fast_mode(tree, tmp_path):
    """Fast mode (QA_FAST=1) needs only what the tree holds: the bfloat16 TorchScript model."""
    script = (
        "import json; from qasite.lambda_handler import handler; "
        f"event = json.load(open({str(EVENTS / 'http-api-v2-post-answer.json')!r})); "
        "print(json.loads(handler(event, None)['body'])['answer'])"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script], cwd=tree, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(tree),
             "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "QA_FAST": "1",
             "QA_MODEL": str(tree / "model"), "DJANGO_ALLOWED_HOSTS": "*"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "Kit-Ho Mak"


def body_of(response: dict) -> bytes:
    return base64.b64decode(response["body"]) if response["isBase64Encoded"] else response["body"].encode()
