"""manage.py smoke (qa/operations/smoke.py): every check passes against the real app on a live
server, and
each way a deployed site can be broken fails the check it concerns, with the reason, and exit 1."""

import gzip
import http.server
import json
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from bench.run import free_port
from qa import services
from qa.operations import smoke
from tests.helpers import PATIENCE, REPO

CHECKS = ["page", "compression", "health", "answer", "4xx", "form"]
STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'"
PAGE = (
    '<!doctype html><title>qasite</title><form method="post">'
    '<input type="hidden" name="csrfmiddlewaretoken" value="form-token">'
    + "<p>padding so that compression is worth it</p>" * 40
    + "</form>"
)
ANSWER = {"answer": "Kit-Ho Mak", "score": 0.81, "start": 4, "end": 14, "no_answer": False}


def page(request, *, csp=STRICT_CSP, cookie="csrftoken=cookie-token; Path=/; SameSite=Lax"):
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": csp}
    if cookie:
        headers["Set-Cookie"] = cookie
    return 200, headers, PAGE.encode()


def health(request, *, state="ready", status=200, error=None, engine=None):
    body = {"model": "stub", "state": state, "error": error}
    return json_reply(body | ({"engine": engine} if engine else {}), status)


def answer(request, *, result=ANSWER, refusal=None):
    blank = not json.loads(request.body)["question"].strip()
    if blank:
        return json_reply(refusal or {"question": ["This field may not be blank."]}, 400)
    return json_reply(result)


def form_post(request, *, marked="Kit-Ho Mak"):
    fields = urllib.parse.parse_qs(request.body.decode())
    genuine = (
        request.headers.get("Cookie") == "csrftoken=cookie-token"
        and fields.get("csrfmiddlewaretoken") == ["form-token"]
        and request.headers.get("Origin") == f"http://{request.headers['Host']}"
        and request.headers.get("Referer") == f"http://{request.headers['Host']}/"
    )
    if not genuine:
        return 403, {"Content-Type": "text/html"}, b"<p>CSRF verification failed.</p>"
    return 200, {"Content-Type": "text/html"}, f"<div>I'm <mark>{marked}</mark>.</div>".encode()


def json_reply(body, status=200):
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def reply(status, content_type, body: bytes, **headers):
    return lambda request: (status, {"Content-Type": content_type, **headers}, body)


# A qasite that passes every check; each fault below replaces one of its routes.
HEALTHY = {
    ("GET", "/"): page,
    ("POST", "/"): form_post,
    ("GET", "/api/health/"): health,
    ("POST", "/api/answer/"): answer,
}


class StubHandler(http.server.BaseHTTPRequestHandler):
    routes: dict = HEALTHY
    compress = False

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self):
        self.body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        route = self.routes.get((self.command, self.path), reply(404, "text/plain", b"nope"))
        status, headers, body = route(self)
        if self.compress and "gzip" in self.headers.get("Accept-Encoding", ""):
            body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_site():
    """Serves a stub qasite on loopback: stub_site(routes_replaced, compress=...) -> base URL."""
    servers = []

    def serve(replaced=None, *, compress=False) -> str:
        routes = {**HEALTHY, **(replaced or {})}
        handler = type("Handler", (StubHandler,), {"routes": routes, "compress": compress})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def smoke_report(url: str, *args: str) -> tuple[dict, CommandError | None]:
    """The command's JSON report, and the error it exits with (None: exit 0)."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("smoke", url, "--json", "--wait=0", "--timeout=5", *args, stdout=out)
        error = None
    except CommandError as raised:
        error = raised
    return json.loads(out.getvalue()), error


def statuses(report: dict) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


def test_a_healthy_site_passes_every_check_and_exits_0(stub_site):
    report, error = smoke_report(stub_site(compress=True), "--compression=require")
    assert error is None and report["passed"] is True
    assert statuses(report) == dict.fromkeys(CHECKS, "PASS")
    details = {check["name"]: check["detail"] for check in report["checks"]}
    assert details["compression"].startswith("gzip")
    assert details["answer"] == "'Kit-Ho Mak' at 4:14, score 0.810"


FAULTS = {
    # name: (routes replaced, the checks that fail, words in the first failure's reason)
    "no CSP": ({("GET", "/"): lambda r: page(r, csp="")}, {"page"}, "no Content-Security-Policy"),
    "CSP allowing inline script": (
        {("GET", "/"): lambda r: page(r, csp="default-src 'self' 'unsafe-inline'")},
        {"page"},
        "'unsafe-inline'",
    ),
    "page 500": (
        {("GET", "/"): reply(500, "text/html", b"<h1>Server Error (500)</h1>")},
        {"page", "form"},
        "expected 200 text/html, got 500 text/html: <h1>Server Error (500)</h1>",
    ),
    "page redirected to https": (
        {("GET", "/"): reply(301, "text/html", b"", Location="https://example.com/")},
        {"page", "form"},
        "got 301 to https://example.com/",
    ),
    "health 502 from the gateway": (
        {("GET", "/api/health/"): reply(502, "text/html", b"<h1>502 Bad Gateway</h1>")},
        {"health"},
        "502, not JSON: <h1>502 Bad Gateway</h1>",
    ),
    "model failed to load": (
        {("GET", "/api/health/"): lambda r: health(r, state="failed", status=503, error="Gone.")},
        {"health"},
        "the model failed to load: Gone.",
    ),
    "model still loading": (
        {("GET", "/api/health/"): lambda r: health(r, state="loading")},
        {"health"},
        "still loading after 0 s",
    ),
    "health with an unknown state": (
        {("GET", "/api/health/"): lambda r: health(r, state="sleeping")},
        {"health"},
        '200: {"model": "stub", "state": "sleeping", "error": null}',
    ),
    "answer 503": (
        {("POST", "/api/answer/"): lambda r: json_reply({"detail": "Loading."}, 503)},
        {"answer", "4xx"},
        'expected 200 application/json, got 503 application/json: {"detail": "Loading."}',
    ),
    "empty answer": (
        {("POST", "/api/answer/"): lambda r: answer(r, result={**ANSWER, "answer": ""})},
        {"answer"},
        "an empty answer",
    ),
    "answer at the wrong offsets": (
        {("POST", "/api/answer/"): lambda r: answer(r, result={**ANSWER, "start": 5})},
        {"answer"},
        "context[5:14] is not the answer 'Kit-Ho Mak'",
    ),
    "score above 1": (
        {("POST", "/api/answer/"): lambda r: answer(r, result={**ANSWER, "score": 1.7})},
        {"answer"},
        "the score 1.7 is not a probability",
    ),
    "not an answer": (
        {("POST", "/api/answer/"): lambda r: answer(r, result=["Kit-Ho Mak"])},
        {"answer"},
        'not an answer: ["Kit-Ho Mak"]',
    ),
    "blank question answered": (
        {("POST", "/api/answer/"): lambda r: json_reply(ANSWER)},
        {"4xx"},
        "expected 400 application/json, got 200",
    ),
    "400 without the field's message": (
        {("POST", "/api/answer/"): lambda r: answer(r, refusal={"detail": "Bad request."})},
        {"4xx"},
        "400 without a message on the question",
    ),
    "no CSRF cookie": (
        {("GET", "/"): lambda r: page(r, cookie="")},
        {"form"},
        "the page sets no csrftoken cookie",
    ),
    "CSRF refused": (
        {("POST", "/"): reply(403, "text/html", b"<p>CSRF verification failed.</p>")},
        {"form"},
        "got 403 text/html: <p>CSRF verification failed.</p>",
    ),
    "form answers otherwise than the API": (
        {("POST", "/"): lambda r: form_post(r, marked="Hong Kong")},
        {"form"},
        "the form answered 'Hong Kong', the API 'Kit-Ho Mak'",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_fails_its_check_with_the_reason_and_exits_1(stub_site, fault):
    replaced, failing, reason = FAULTS[fault]
    report, error = smoke_report(stub_site(replaced))
    assert report["passed"] is False
    assert error is not None and error.returncode == 1
    assert str(error).startswith(f"{len(failing)} of 6 checks failed")
    expected = {name: "FAIL" if name in failing else "PASS" for name in CHECKS}
    if "compression" not in failing:
        expected["compression"] = "SKIP"  # plain http://
    assert statuses(report) == expected
    first = next(check for check in report["checks"] if check["status"] == "FAIL")
    assert reason in first["detail"]


def test_compression_is_required_for_https_and_on_request(stub_site):
    report, error = smoke_report(stub_site(compress=False), "--compression=require")
    assert statuses(report)["compression"] == "FAIL" and error.returncode == 1
    [check] = [check for check in report["checks"] if check["name"] == "compression"]
    assert check["detail"].startswith("the page came back uncompressed")
    assert "to Accept-Encoding: gzip, deflate, br" in check["detail"]


def test_an_unreachable_site_fails_every_check():
    port = free_port()  # nothing listens on it once it is closed
    report, error = smoke_report(f"http://127.0.0.1:{port}/")
    assert set(statuses(report).values()) == {"FAIL"}
    assert "Connection refused" in report["checks"][0]["detail"]
    assert error.returncode == 1


def test_health_waits_while_the_model_is_idle_or_loading(stub_site, manual_clock):
    states = iter(["idle", "loading", "loading", "ready"])
    url = stub_site({("GET", "/api/health/"): lambda r: health(r, state=next(states))})
    client = smoke.Client(url, timeout=5)
    detail = smoke.check_health(client, wait=10, sleep=manual_clock.advance, clock=manual_clock)
    assert detail == "ready, model stub" and manual_clock.now == 1003.0


@pytest.mark.parametrize(
    ("engine", "detail"),
    [("onnx", "ready, model stub, engine onnx"), ("torch", "ready, model stub, engine torch")],
)
def test_health_says_which_engine_serves(stub_site, engine, detail):
    url = stub_site({("GET", "/api/health/"): lambda r: health(r, engine=engine)})
    assert smoke.check_health(smoke.Client(url, timeout=5), wait=0) == detail


# From a shell, as a deployer runs it: from a dev environment, and with nothing but Python's
# standard library (-S: no site-packages at all, so no Django, no torch, no virtualenv).
COMMANDS = {
    "manage.py": [sys.executable, "manage.py", "smoke"],
    "python3 -m qa.operations.smoke": [sys.executable, "-S", "-m", "qa.operations.smoke"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_the_report_is_one_line_per_check_and_the_exit_status_is_1(stub_site, command):
    url = stub_site({("GET", "/api/health/"): lambda r: health(r, state="failed", status=503)})
    result = subprocess.run(
        [*command, url, "--wait=0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["PASS", "page"],
        ["SKIP", "compression"],
        ["FAIL", "health"],
        ["PASS", "answer"],
        ["PASS", "4xx"],
        ["PASS", "form"],
    ]
    assert "1 of 6 checks failed: health" in result.stderr


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_healthy_site_passes_from_a_shell_with_exit_status_0(stub_site, command):
    url = stub_site({})
    result = subprocess.run(
        [*command, url, "--wait=0", "--json"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and [c["status"] for c in report["checks"]] == [
        "PASS",
        "SKIP",
        "PASS",
        "PASS",
        "PASS",
        "PASS",
    ]


def test_without_django_a_url_that_is_not_http_is_refused_with_status_2():
    result = subprocess.run(
        [*COMMANDS["python3 -m qa.operations.smoke"], "example.com"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "is not an http:// or https:// URL" in result.stderr


@pytest.mark.parametrize(
    "status, location, passes",
    [
        (301, "https://{host}/", True),
        (308, "https://{host}/", True),
        (200, "", False),
        (301, "http://{host}/", False),
        (302, "https://elsewhere.example/", False),
    ],
)
def test_plain_http_must_redirect_to_the_same_host_over_https(stub_site, status, location, passes):
    def front_page(request):
        where = location.format(host=request.headers["Host"])
        return status, {"Content-Type": "text/html", **({"Location": where} if where else {})}, b""

    plain = smoke.Client(stub_site({("GET", "/"): front_page}), timeout=5)
    if passes:
        assert smoke.check_https_redirect(plain).startswith(f"http:// answers {status} to https://")
    else:
        with pytest.raises(smoke.SmokeError, match="not a redirect to https://127.0.0.1:"):
            smoke.check_https_redirect(plain)


def test_an_https_site_gets_the_redirect_check_too():
    port = free_port()  # nothing listens: every check fails, the redirect's included
    report, error = smoke_report(f"https://127.0.0.1:{port}/")
    assert list(statuses(report)) == CHECKS + ["https"] and error.returncode == 1


def test_the_checks_need_nothing_but_the_standard_library():
    """So they run from any tree that has the app, the torch-free runtime tree included."""
    code = (
        "import sys; old = set(sys.modules); import qa.operations.smoke; "
        "print(*set(sys.modules) - old)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    imported = {name.partition(".")[0] for name in result.stdout.split()}
    assert imported - set(sys.stdlib_module_names) == {"qa"}, imported


@pytest.mark.parametrize("url", ["example.com", "ftp://example.com/", "https://"])
def test_a_url_that_is_not_http_is_refused(url):
    with pytest.raises(CommandError, match="is not an http:// or https:// URL"):
        call_command("smoke", url)


@pytest.fixture
def served_model(settings):
    """Points the live server at a model and starts loading it, as qasite/wsgi.py does after the
    first response."""

    def serve(directory: Path) -> None:
        settings.QA_MODEL = str(directory)
        services.lazy_answerer().load_in_background()

    return serve


def test_the_app_passes_every_check_on_a_live_server(live_server, served_model, modern_model_dir):
    served_model(modern_model_dir)
    report, error = smoke_report(live_server.url, f"--wait={PATIENCE}", f"--timeout={PATIENCE}")
    assert error is None, report
    expected = dict.fromkeys(CHECKS, "PASS") | {"compression": "SKIP"}
    assert statuses(report) == expected, report
    details = {check["name"]: check["detail"] for check in report["checks"]}
    assert details["4xx"].startswith("400, question: ")
    assert details["form"].startswith("csrftoken cookie and form token accepted")


@pytest.mark.parametrize("broken_model", ["garbage safetensors"], indirect=True)
def test_a_live_server_with_a_broken_model_fails_health_with_the_reason(
    live_server, served_model, broken_model
):
    served_model(broken_model.directory)
    report, error = smoke_report(live_server.url, f"--wait={PATIENCE}", f"--timeout={PATIENCE}")
    assert error.returncode == 1
    assert statuses(report) == {
        "page": "PASS",
        "compression": "SKIP",
        "health": "FAIL",
        "answer": "FAIL",
        "4xx": "PASS",
        "form": "FAIL",
    }
    details = {check["name"]: check["detail"] for check in report["checks"]}
    assert details["health"] == f"the model failed to load: {broken_model.reason}"
    assert details["answer"].startswith("expected 200 application/json, got 503")
