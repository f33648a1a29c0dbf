"""Real-shaped API Gateway, ALB and function URL events through the real Lambda handler."""

import json
import logging
import os
import random
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlencode

import pytest

from qa import services
from qasite import lambda_handler
from tests.events import EVENTS, V2_KINDS, body_of, header, make_event, set_cookies

KINDS = ["http-api-v2", "rest-api-v1", "alb", "function-url"]
KIT_HO = {"question": "What is my name?", "context": "I'm Kit-Ho Mak. I come from Hong Kong."}
CSRF_SECRET = "k" * 32
CLOUDFRONT = "https://d111111abcdef8.cloudfront.net"


@pytest.fixture
def lambda_settings(tiny_model_settings):
    settings = tiny_model_settings
    settings.ALLOWED_HOSTS = [
        ".execute-api.eu-west-1.amazonaws.com",
        ".lambda-url.eu-west-1.on.aws",
        ".elb.amazonaws.com",
    ]
    settings.CSRF_TRUSTED_ORIGINS = [CLOUDFRONT]
    return settings


class Context:
    aws_request_id = "6f1e5c3a-0d5b-4a77-9c2e-1b3d5f7a9c11"


def invoke(event):
    return lambda_handler.handler(event, Context())


@pytest.mark.parametrize("kind", KINDS)
def test_page_is_served_with_the_csrf_cookie(lambda_settings, kind):
    response = invoke(make_event(kind))
    assert response["statusCode"] == 200
    assert header(response, "Content-Type").startswith("text/html")
    assert 'name="csrfmiddlewaretoken"' in body_of(response)
    cookies = set_cookies(response)
    assert len(cookies) == 1 and cookies[0].strip().startswith("csrftoken=")
    if kind in V2_KINDS:
        assert "cookies" in response  # payload 2.0 returns cookies apart from headers


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("b64", [False, True])
def test_json_api_answers(lambda_settings, kind, b64):
    event = make_event(
        kind, "POST", "/api/answer/", body=json.dumps({**KIT_HO, "top_k": 2}),
        headers={"Content-Type": "application/json", "Accept": "application/json"}, b64=b64,
    )
    response = invoke(event)
    assert response["statusCode"] == 200, body_of(response)
    assert header(response, "Content-Type") == "application/json"
    answer = json.loads(body_of(response))
    assert KIT_HO["context"][answer["start"] : answer["end"]] == answer["answer"]
    assert len(answer["answers"]) <= 2


@pytest.mark.parametrize("kind", KINDS)
def test_form_post_with_csrf_cookie_and_token(lambda_settings, kind):
    form = f"question=What+is+my+name%3F&context=I%27m+Kit-Ho+Mak.&top_k=1&csrfmiddlewaretoken={CSRF_SECRET}"
    event = make_event(
        kind, "POST", "/", body=form, cookies={"csrftoken": CSRF_SECRET},
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": CLOUDFRONT},
    )
    response = invoke(event)
    assert response["statusCode"] == 200, body_of(response)[:500]
    assert "<mark>" in body_of(response)


@pytest.mark.parametrize(
    ("origin", "token", "status"),
    [(CLOUDFRONT, None, 403), ("https://evil.example", CSRF_SECRET, 403), (CLOUDFRONT, CSRF_SECRET, 200)],
)
def test_form_csrf_check_passes_only_for_the_trusted_origin_with_a_token(
    lambda_settings, origin, token, status
):
    form = "question=Who%3F&context=Kit&top_k=1" + (f"&csrfmiddlewaretoken={token}" if token else "")
    event = make_event(
        "http-api-v2", "POST", "/", body=form, cookies={"csrftoken": CSRF_SECRET},
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": origin},
    )
    assert invoke(event)["statusCode"] == status


@pytest.mark.parametrize("kind", KINDS)
def test_browsable_api_health_and_404(lambda_settings, kind):
    browsable = invoke(make_event(kind, path="/api/answer/", headers={"Accept": "text/html"}))
    assert browsable["statusCode"] == 200
    assert 'name="question"' in body_of(browsable)
    health = invoke(make_event(kind, path="/api/health/", headers={"Accept": "application/json"}))
    assert health["statusCode"] == 200
    assert json.loads(body_of(health))["model"] == lambda_settings.QA_MODEL_NAME
    assert invoke(make_event(kind, path="/no/such/page/"))["statusCode"] == 404


@pytest.mark.parametrize("kind", KINDS)
def test_static_files_are_served(lambda_settings, kind):
    response = invoke(make_event(kind, path="/static/qa/site.css"))
    assert response["statusCode"] == 200
    assert "mark" in body_of(response)


def test_rate_limit_counts_the_cloudfront_viewer_not_the_edge_nor_a_forged_header(lambda_settings):
    """As deployed (serverless.yml): REMOTE_ADDR is API Gateway's sourceIp, the CloudFront edge;
    CloudFront-Viewer-Address names the viewer, believed only with CloudFront's secret."""
    lambda_settings.QA_THROTTLE_RATE = "2/min"
    lambda_settings.QA_CLIENT_IP_HEADER = "CloudFront-Viewer-Address"
    lambda_settings.QA_PROXY_SECRET = "origin-secret"

    def ask(viewer, port, *, secret="origin-secret", source_ip="198.51.100.20"):
        headers = {
            "Content-Type": "application/json",
            "CloudFront-Viewer-Address": f"{viewer}:{port}",
            "X-Origin-Verify": secret,
            "X-Forwarded-For": f"{viewer}, {source_ip}",
        }
        event = make_event("http-api-v2", "POST", "/api/answer/", body=json.dumps(KIT_HO), headers=headers)
        event["requestContext"]["http"]["sourceIp"] = source_ip
        return invoke(event)["statusCode"]

    assert [ask("203.0.113.7", port) for port in (41001, 41002, 41003)] == [200, 200, 429]
    assert ask("203.0.113.8", 41004) == 200  # another viewer behind the same edge
    direct = [ask("203.0.113.8", 1, secret="a guess", source_ip="192.0.2.66") for _ in range(3)]
    assert direct == [200, 200, 429]  # counted as itself, not as the viewer it names
    assert ask("203.0.113.8", 41005) == 200


def test_unknown_host_is_refused(lambda_settings):
    event = make_event("http-api-v2", headers={"Host": "attacker.example"})
    assert invoke(event)["statusCode"] == 400


def test_body_that_is_not_base64_is_a_400(lambda_settings):
    event = make_event("http-api-v2", "POST", "/api/answer/", body="{}", headers={"Content-Type": "application/json"})
    event["body"], event["isBase64Encoded"] = "not base64!!!", True
    response = invoke(event)
    assert response["statusCode"] == 400
    assert "base64" in response["body"]


def test_keep_warm_never_reaches_django(monkeypatch):
    monkeypatch.setattr(lambda_handler, "wsgi_handler", lambda *args: pytest.fail("Django ran"))
    event = json.loads((EVENTS / "keep-warm.json").read_text())
    assert lambda_handler.handler(event, Context()) == {"warm": True}


def test_one_json_log_line_per_request(lambda_settings, capsys, monkeypatch):
    monkeypatch.setattr(lambda_handler, "_cold", True)
    event = make_event(
        "http-api-v2", "POST", "/api/answer/", body=json.dumps(KIT_HO),
        headers={"Content-Type": "application/json"},
    )
    invoke(event)
    invoke(event)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first == {
        "method": "POST", "path": "/api/answer/", "status": 200,
        "duration_ms": first["duration_ms"], "cold_start": True,
        "request_id": Context.aws_request_id,
    }
    assert second["cold_start"] is False


# --- SnapStart: an instance restored from a snapshot is its own --------------------------------


@pytest.mark.parametrize("configured_key", [False, True])
def test_after_restore_resets_what_init_left_behind(lambda_settings, monkeypatch, capsys, configured_key):
    """Every instance restored from one snapshot starts with the state init left: after restore
    (the runtime calls the hooks registered with snapshot_restore_py, as awslambdaric does), its
    first request is a cold start, no client is throttled by counts made before the snapshot,
    Python's random generator differs, and so does Django's key unless one is configured."""
    from django.conf import settings
    from snapshot_restore_py import get_after_restore

    assert (lambda_handler.after_restore, (), {}) in get_after_restore()
    lambda_settings.QA_THROTTLE_RATE = "1/min"
    lambda_settings.SECRET_KEY = "configured-" * 5
    if configured_key:
        monkeypatch.setenv("DJANGO_SECRET_KEY", lambda_settings.SECRET_KEY)
    else:
        monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setattr(lambda_handler, "_cold", True)
    event = make_event(
        "http-api-v2", "POST", "/api/answer/", body=json.dumps(KIT_HO),
        headers={"Content-Type": "application/json"},
    )
    assert [invoke(event)["statusCode"] for _ in range(2)] == [200, 429]  # before the snapshot
    random_state = random.getstate()
    capsys.readouterr()

    for hook, args, kwargs in get_after_restore():
        hook(*args, **kwargs)

    assert invoke(event)["statusCode"] == 200
    assert json.loads(capsys.readouterr().out)["cold_start"] is True
    assert random.getstate() != random_state
    assert (settings.SECRET_KEY == "configured-" * 5) is configured_key
    assert len(settings.SECRET_KEY) >= 50


def test_prime_warms_the_page_an_answer_and_health_before_a_snapshot(lambda_settings):
    from snapshot_restore_py import get_before_snapshot

    assert (lambda_handler.prime, (), {}) in get_before_snapshot()
    assert lambda_handler.prime() == [200, 200, 200]


def test_handler_loads_without_snapshot_hooks(modern_model_dir, tmp_path):
    """Outside Lambda's managed runtime snapshot_restore_py may be missing: nothing is restored
    there, and the handler imports and answers all the same."""
    script = (
        "import sys, json; sys.modules['snapshot_restore_py'] = None; "
        "from qasite.lambda_handler import handler; "
        f"event = json.load(open({str(EVENTS / 'http-api-v2-post-answer.json')!r})); "
        "print(handler(event, None)['statusCode'])"
    )
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
        "QA_MODEL": str(modern_model_dir), "DJANGO_ALLOWED_HOSTS": ".amazonaws.com",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "200"


# --- what users send is never logged ------------------------------------------------------------

MARKER = f"Qzv{uuid.uuid4().hex[:12]}"  # in every question, context and field users send below


@pytest.fixture
def every_log_record(lambda_settings):
    """Everything any logger records, at DEBUG: the root and every logger there is (those that do
    not propagate included: django.server, transformers...), and warnings through py.warnings;
    each record formatted with its traceback, and its attributes (extra=...) as well."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record) + repr(vars(record)))

    keep = Keep(logging.DEBUG)
    names = ["", "django.request", "django.server", "django.security.csrf", "py.warnings"]
    loggers = {logging.getLogger(name) for name in [*names, *logging.Logger.manager.loggerDict]}
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.addHandler(keep)
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    logging.captureWarnings(True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        yield records
    logging.captureWarnings(False)
    for logger, level, disabled in saved:
        logger.removeHandler(keep)
        logger.setLevel(level)
        logger.disabled = disabled


def ask(index: int = 0, **options) -> dict:
    marked = f"{MARKER}{index}"
    return {"question": f"Who is {marked}?", "context": f"{marked} is here.", **options}


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Origin": CLOUDFRONT}
# (what, event kind, method, path, body, headers, expected status), run in this order.
PRIVACY_REQUESTS = [
    ("page", "http-api-v2", "GET", "/", None, {}, 200),
    ("answer", "http-api-v2", "POST", "/api/answer/", json.dumps(ask(top_k=3)), JSON, 200),
    ("batch", "rest-api-v1", "POST", "/api/answer/", json.dumps([ask(1), ask(2)]), JSON, 200),
    ("unknown field", "alb", "POST", "/api/answer/", json.dumps({**ask(), MARKER: 1}), JSON, 400),
    ("over the limits", "function-url", "POST", "/api/answer/",
     json.dumps({"question": MARKER * 40, "context": MARKER * 1600}), JSON, 400),
    ("bad JSON", "http-api-v2", "POST", "/api/answer/", json.dumps(ask())[:-9], JSON, 400),
    ("InvalidQuestion", "http-api-v2", "POST", "/api/answer/",
     json.dumps({"question": f"{MARKER} " * 30, "context": MARKER, "max_seq_len": 32}), JSON, 400),
    ("over the upload limit", "http-api-v2", "POST", "/api/answer/",
     json.dumps({"question": MARKER, "context": MARKER * 400_000}), JSON, 413),
    ("form", "http-api-v2", "POST", "/",
     urlencode({**ask(top_k=1), "csrfmiddlewaretoken": CSRF_SECRET}), FORM, 200),
    ("form without CSRF", "rest-api-v1", "POST", "/", urlencode(ask(top_k=1)), FORM, 403),
    ("form with a field error", "alb", "POST", "/",
     urlencode({"question": MARKER, "context": "", "csrfmiddlewaretoken": CSRF_SECRET}), FORM, 200),
    ("health", "function-url", "GET", "/api/health/", None, {}, 200),
    ("browsable API", "alb", "GET", "/api/answer/", None, {"Accept": "text/html"}, 200),
    ("schema", "http-api-v2", "GET", "/api/schema/", None, {}, 200),
    ("static", "http-api-v2", "GET", "/static/qa/site.css", None, {}, 200),
    ("not found", "http-api-v2", "GET", "/no/such/page/", None, {}, 404),
]


def test_nothing_users_send_is_logged_or_printed_and_only_csrftoken_is_set(
    lambda_settings, every_log_record, capfd, monkeypatch
):
    """Markers in questions, contexts and field names, through every answer and error path
    (a 500 too), never reach a log record, stdout or stderr; no response sets another cookie."""
    assert lambda_settings.DEBUG is False
    services._lazy_answerer.cache_clear()  # the model loads inside the capture too
    responses = []
    for what, kind, method, path, body, headers, expected in PRIVACY_REQUESTS:
        cookies = {"csrftoken": CSRF_SECRET} if (method, path) == ("POST", "/") else None
        response = invoke(make_event(
            kind, method, path, body=body, headers=headers, cookies=cookies,
        ))
        assert response["statusCode"] == expected, (what, body_of(response)[:300])
        responses.append(response)

    def crash(*inputs):
        raise RuntimeError("the model crashed")

    monkeypatch.setattr(services.lazy_answerer().get(), "_forward", crash)
    for kind, path, body, headers in [
        ("http-api-v2", "/api/answer/", json.dumps(ask()), JSON),
        ("rest-api-v1", "/", urlencode({**ask(top_k=1), "csrfmiddlewaretoken": CSRF_SECRET}), FORM),
    ]:
        response = invoke(make_event(
            kind, "POST", path, body=body, headers=headers, cookies={"csrftoken": CSRF_SECRET},
        ))
        assert response["statusCode"] == 500
        responses.append(response)
    services._lazy_answerer.cache_clear()

    printed = capfd.readouterr()
    logged = "\n".join(every_log_record)
    # The capture works: the errors were logged, with their traceback, and the requests printed.
    assert "Internal Server Error: /api/answer/" in logged and "the model crashed" in logged
    assert "Bad Request: /api/answer/" in logged and "Forbidden (CSRF" in logged
    assert printed.out.count('"path": "/api/answer/"') == 9
    assert MARKER not in logged + printed.out + printed.err
    cookie_names = [[c.split("=")[0].strip() for c in set_cookies(r)] for r in responses]
    assert ["csrftoken"] in cookie_names  # the page sets it, and no response sets anything else
    assert all(names in ([], ["csrftoken"]) for names in cookie_names), cookie_names


def test_run_on_an_event_file_from_the_command_line(real_model_dir, tmp_path):
    """A fresh interpreter loads the model at import, answers, and writes only in its temp dir."""
    repo = Path(__file__).resolve().parent.parent
    script = textwrap.dedent(
        f"""
        import os, sys
        allowed = {str(tmp_path)!r}
        writes = []
        def audit(event, args):
            if event == "open" and args[0] is not None and not isinstance(args[0], int):
                mode, flags = args[1], args[2]
                writing = (mode and any(c in mode for c in "wax+")) or (flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
                if writing and not os.path.realpath(args[0]).startswith(allowed):
                    writes.append(args[0])
            elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "shutil.rmtree"):
                if not os.path.realpath(str(args[0])).startswith(allowed):
                    writes.append((event, args[0]))
        sys.addaudithook(audit)
        sys.argv = ["lambda_handler", {str(EVENTS / "http-api-v2-post-answer.json")!r}]
        import runpy
        runpy.run_module("qasite.lambda_handler", run_name="__main__")
        print("WRITES", writes, file=sys.stderr)
        """
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # as the Dockerfile sets it
        "QA_MODEL": str(real_model_dir),
        "DJANGO_ALLOWED_HOSTS": ".execute-api.eu-west-1.amazonaws.com",
        "PYTHONPATH": str(repo),
    }
    before = {path: path.stat().st_mtime_ns for path in repo.rglob("*") if ".git" not in path.parts}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["answer"] == "Kit-Ho Mak"
    assert "WRITES []" in result.stderr, result.stderr
    after = {path: path.stat().st_mtime_ns for path in repo.rglob("*") if ".git" not in path.parts}
    assert after == before
