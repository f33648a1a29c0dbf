"""A runtime tree (the image's /var/task, the zip's contents) run as Lambda runs it: by Lambda's
Python (3.12) with nothing but the tree and the runtime interface client on its path, in process
or under the Runtime Interface Emulator over loopback."""

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bench.run import free_port
from qa.reader.examples import KIT_HO
from tests.helpers import PATIENCE, REPO
from tests.lambda_events import CLOUDFRONT, CSRF_SECRET, FORM, make_event

RIE = REPO / "build" / "tools" / "samcli" / "local" / "rapid" / "aws-lambda-rie-x86_64"
RIC = REPO / "build" / "lambda-ric"  # awslambdaric (and snapshot_restore_py) for Lambda's Python
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def lambda_python() -> str:
    """Lambda's Python (3.12), or skip saying there is none."""
    result = subprocess.run(
        [str(REPO / "docker" / "lambda-python.sh")], capture_output=True, text=True
    )
    if result.returncode:
        pytest.skip(result.stderr.strip())
    return result.stdout.strip()


def lambda_environment(task_root: Path, home: Path, **variables: str) -> dict:
    """What the function's environment holds (serverless.yml's variables), and no more: PATH
    without this virtualenv, a writable /tmp of its own, the tree and the client on the path."""
    if not (RIC / "installed").is_file():
        pytest.skip("no runtime interface client for Lambda's Python: `make test` installs it")
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LAMBDA_TASK_ROOT": str(task_root),
        "PYTHONPATH": f"{task_root}:{RIC}",
        "QA_MODEL": str(task_root / "model"),
        "HF_HUB_OFFLINE": "1",
        "DJANGO_HTTPS": "1",
        "DJANGO_ALLOWED_HOSTS": ".execute-api.eu-west-1.amazonaws.com,.elb.amazonaws.com,.on.aws",
        "DJANGO_CSRF_TRUSTED_ORIGINS": CLOUDFRONT,
        **variables,
    }


def listening(port: int) -> bool:
    """Whether something accepts connections on loopback's ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def emulator(task_root: Path, home: Path, **variables: str):
    """The tree served by the emulator running ``python3.12 -m awslambdaric`` on the handler, as
    Lambda's runtime does; yields invoke(event) -> response, and the seconds from the emulator's
    start to the end of the first invocation (the init phase included: a cold start)."""
    if not RIE.is_file():
        pytest.skip("no emulator: `make test` fetches it into build/tools")
    python = lambda_python()
    environment = lambda_environment(task_root, home, **variables)
    port = free_port()
    started = time.perf_counter()
    # Both of the emulator's addresses free ones, so that two trees may be served at once.
    process = subprocess.Popen(
        [
            str(RIE),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{port}",
            "--runtime-api-address",
            f"127.0.0.1:{free_port()}",
            python,
            "-S",
            "-m",
            "awslambdaric",
            "qasite.lambda_handler.handler",
        ],
        cwd=task_root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + PATIENCE
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.communicate()[0].decode()
            pytest.fail(f"the emulator never listened on port {port}:\n{output}")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
    cold_start = []

    def invoke(event: dict) -> dict:
        request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
        # The first invocation runs the init phase too (the model loads): PATIENCE bounds both.
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            answer = json.loads(response.read())
        cold_start.append(time.perf_counter() - started)
        return answer

    invoke.cold_start_seconds = lambda: cold_start[0]
    try:
        yield invoke
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "Traceback" not in output, output


# Every kind of request the service answers, with the status each gets:
# (what, event kind, method, path, body, headers, expected status).
EVERY_KIND_OF_REQUEST = [
    ("page", "http-api-v2", "GET", "/", None, {"Accept": "text/html"}, 200),
    (
        "answer",
        "http-api-v2",
        "POST",
        "/api/answer/",
        json.dumps({**KIT_HO, "top_k": 2}),
        JSON,
        200,
    ),
    ("batch", "rest-api-v1", "POST", "/api/answer/", json.dumps([KIT_HO, KIT_HO]), JSON, 200),
    (
        "form",
        "alb",
        "POST",
        "/",
        # What the page's form sends: the texts, the number of answers and the CSRF token.
        urlencode({**KIT_HO, "top_k": 1, "csrfmiddlewaretoken": CSRF_SECRET}),
        FORM,
        200,
    ),
    ("form without CSRF", "http-api-v2", "POST", "/", urlencode(KIT_HO), FORM, 403),
    ("health", "function-url", "GET", "/api/health/", None, JSON, 200),
    ("schema", "http-api-v2", "GET", "/api/schema/", None, {}, 200),
    ("browsable API", "alb", "GET", "/api/answer/", None, {"Accept": "text/html"}, 200),
    ("static", "http-api-v2", "GET", "/static/qa/site.css", None, {}, 200),
    ("not found", "http-api-v2", "GET", "/no/such/page/", None, {"Accept": "text/html"}, 404),
    ("bad JSON", "http-api-v2", "POST", "/api/answer/", json.dumps(KIT_HO)[:-9], JSON, 400),
    (
        "unknown field",
        "rest-api-v1",
        "POST",
        "/api/answer/",
        json.dumps({**KIT_HO, "x": 1}),
        JSON,
        400,
    ),
    (
        "over the upload limit",
        "http-api-v2",
        "POST",
        "/api/answer/",
        json.dumps({"question": "Who?", "context": "x" * 6_000_000}),
        JSON,
        413,
    ),
]


def every_kind_of_request() -> list[tuple[str, dict, int]]:
    """EVERY_KIND_OF_REQUEST as events: (what, event, expected status)."""
    events = []
    for what, kind, method, path, body, headers, status in EVERY_KIND_OF_REQUEST:
        cookies = {"csrftoken": CSRF_SECRET} if what == "form" else None
        event = make_event(kind, method, path, body=body, headers=headers, cookies=cookies)
        events.append((what, event, status))
    return events


# Run by the tree's Python: the handler answers each event, then the process reports the
# statuses, the top-level modules imported, the shared libraries mapped, and every source file
# compiled (none should be: the tree holds its bytecode).
PROBE = """
import json, sys
compiled = []
sys.addaudithook(lambda event, args: event == "compile" and compiled.append(str(args[1])))
from qasite.lambda_handler import handler
events = json.load(open(sys.argv[1]))
statuses = [handler(event, None)["statusCode"] for _, event, _ in events]
with open("/proc/self/maps") as maps:
    libraries = sorted({line.split()[-1] for line in maps if ".so" in line})
print(json.dumps({"statuses": statuses, "modules": sorted({m.split(".")[0] for m in sys.modules}),
                  "libraries": libraries, "compiled": compiled}))
"""


def probe(task_root: Path, home: Path, **variables: str) -> dict:
    """EVERY_KIND_OF_REQUEST through the handler in one fresh process of Lambda's Python that
    sees the tree only (-S: no site-packages), with the function's environment and
    ``variables``; what the process then holds."""
    events = home / "events.json"
    events.write_text(json.dumps(every_kind_of_request()))
    result = subprocess.run(
        [lambda_python(), "-S", "-c", PROBE, str(events)],
        cwd=task_root,
        capture_output=True,
        text=True,
        env=lambda_environment(task_root, home, **variables),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = [status for *_, status in EVERY_KIND_OF_REQUEST]
    assert report["statuses"] == expected, list(
        zip(EVERY_KIND_OF_REQUEST, report["statuses"], strict=False)
    )
    return report


def distributions(task_root: Path) -> dict[str, set[str]]:
    """Each distribution installed in the tree: its top-level modules (from pip's RECORD)."""
    tops = {}
    for record in task_root.glob("*.dist-info/RECORD"):
        names = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
        tops[record.parent.name] = {
            name.removesuffix(".py")
            for name in names
            if not name.endswith((".dist-info", ".libs")) and name not in {"..", "bin"}
        }
    return tops


def unused_libraries(task_root: Path, report: dict, min_bytes: int) -> list[str]:
    """Shared libraries of at least min_bytes in the tree that the probed process never mapped."""
    mapped = {Path(path).resolve() for path in report["libraries"]}
    return sorted(
        str(path.relative_to(task_root))
        for path in task_root.rglob("*.so*")
        if path.is_file() and path.stat().st_size >= min_bytes and path.resolve() not in mapped
    )
