"""Real-shaped API Gateway, ALB and function URL events through the real Lambda handler."""

import base64
import contextlib
import importlib
import json
import logging
import os
import random
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from qa import origin, services
from qa.operations.log_filters import ascii_json
from qa.reader.examples import EXAMPLES, KIT_HO
from qasite import lambda_handler
from tests.helpers import (
    AWS_TEST_ENVIRONMENT,
    CONTAINER_AUTHORIZATION_TOKEN,
    CONTAINER_CREDENTIALS,
    REPO,
    SSM_PARAMETER,
    LambdaContext,
    console_output,
    container_credentials,
    fake_ssm,
    get_parameter_answer,
    invoke,
    links,
    rust_panic,
    ssm_error,
    traced_twice,
)
from tests.lambda_events import (
    CLOUDFRONT,
    CSRF_SECRET,
    EVENTS,
    FORM,
    KINDS,
    V2_KINDS,
    api_post,
    body_of,
    form_post,
    header,
    make_event,
    set_cookies,
)
from tests.properties import LINE_ENDING_CASES, answer_the_pattern

JSON = {"Content-Type": "application/json"}


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
    response = invoke(
        api_post(kind, {**KIT_HO, "top_k": 2}, headers={"Accept": "application/json"}, b64=b64)
    )
    assert response["statusCode"] == 200, body_of(response)
    assert header(response, "Content-Type") == "application/json"
    answer = json.loads(body_of(response))
    assert KIT_HO["context"][answer["start"] : answer["end"]] == answer["answer"]
    assert len(answer["answers"]) == 2  # the context has far more than two spans


@pytest.mark.parametrize("kind", KINDS)
def test_form_post_with_csrf_cookie_and_token(lambda_settings, kind):
    response = invoke(form_post(kind, {**KIT_HO, "top_k": 1}))
    assert response["statusCode"] == 200, body_of(response)[:500]
    assert "<mark>" in body_of(response)


@pytest.mark.parametrize("b64", [False, True], ids=["text", "base64"])
@pytest.mark.parametrize("post", ["API", "page form"])
@pytest.mark.parametrize("case", list(LINE_ENDING_CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_a_context_reaches_the_service_as_sent_in_every_event(
    lambda_settings, monkeypatch, kind, case, post, b64
):
    """CR, CRLF, mixed line endings and blank ends, in a body as text or base64, to the API or
    the page: the service gets the context unchanged, so the offsets index it."""
    context, expected = LINE_ENDING_CASES[case]
    calls = []
    monkeypatch.setattr(services, "answer_questions", answer_the_pattern(calls))
    data = {"question": "Who?", "context": context}
    if post == "API":
        event = api_post(kind, data, headers={"Accept": "application/json"}, b64=b64)
    else:
        event = form_post(kind, {**data, "top_k": 1})
        if b64:
            event["body"] = base64.b64encode(event["body"].encode()).decode()
            event["isBase64Encoded"] = True
    response = invoke(event)
    assert response["statusCode"] == 200, body_of(response)[:300]
    assert calls[0]["context"] == context
    if post == "API":
        answer = json.loads(body_of(response))
        assert context[answer["start"] : answer["end"]] == answer["answer"] == expected


@pytest.mark.parametrize(
    ("origin", "token", "status"),
    [
        (CLOUDFRONT, None, 403),
        ("https://evil.example", CSRF_SECRET, 403),
        (CLOUDFRONT, CSRF_SECRET, 200),
    ],
)
def test_form_csrf_check_passes_only_for_the_trusted_origin_with_a_token(
    lambda_settings, origin, token, status
):
    form = {"question": "Who?", "context": "Kit", "top_k": 1}
    event = form_post("http-api-v2", form, token=token, origin=origin)
    assert invoke(event)["statusCode"] == status


@pytest.mark.parametrize("kind", KINDS)
def test_browsable_api_health_and_404(lambda_settings, kind):
    browsable = invoke(make_event(kind, path="/api/answer/", headers={"Accept": "text/html"}))
    assert browsable["statusCode"] == 200
    assert 'name="question"' in body_of(browsable)
    health = invoke(make_event(kind, path="/api/health/", headers={"Accept": "application/json"}))
    assert health["statusCode"] == 200
    assert json.loads(body_of(health))["model"] == Path(lambda_settings.QA_MODEL).name
    assert invoke(make_event(kind, path="/no/such/page/"))["statusCode"] == 404


@pytest.mark.parametrize("kind", KINDS)
def test_static_files_are_served(lambda_settings, kind):
    response = invoke(make_event(kind, path="/static/qa/site.css"))
    assert response["statusCode"] == 200
    assert "mark" in body_of(response)


def from_client(event: dict, kind: str, address: str, forwarded_for: str = "") -> dict:
    """The event of a request from ``address`` as AWS knows it, with what the client wrote in
    X-Forwarded-For (an ALB appends the address it saw to that)."""
    if kind in V2_KINDS:
        event["requestContext"]["http"]["sourceIp"] = address
    elif kind == "rest-api-v1":
        event["requestContext"]["identity"]["sourceIp"] = address
    else:
        forwarded_for = f"{forwarded_for}, {address}" if forwarded_for else address
    for key in ("headers", "multiValueHeaders"):
        if key in event:
            event[key] = {k: v for k, v in event[key].items() if k.lower() != "x-forwarded-for"}
            if forwarded_for:
                value = forwarded_for if key == "headers" else [forwarded_for]
                event[key]["X-Forwarded-For"] = value
    return event


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_counts_the_address_aws_vouches_for_never_x_forwarded_for(lambda_settings, kind):
    """The issue's case: at 2/min, five POSTs each with a new X-Forwarded-For all got 200 on
    REST API and ALB events (apig-wsgi took its first entry for the client)."""
    lambda_settings.QA_THROTTLE_RATE = "2/min"
    attacker, victim = "198.51.100.66", "203.0.113.7"

    def ask(client, forwarded_for):
        event = from_client(api_post(kind, KIT_HO), kind, client, forwarded_for)
        return invoke(event)["statusCode"]

    assert [ask(attacker, f"10.9.9.{n}") for n in range(5)] == [200, 200, 429, 429, 429]
    assert [ask(attacker, victim) for _ in range(2)] == [429, 429]  # naming the victim: no escape
    assert ask(victim, "") == 200  # and the victim's budget is untouched


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_counts_the_cloudfront_viewer_not_the_edge_nor_a_forged_header(
    lambda_settings, kind
):
    """As deployed (serverless.yml): the address AWS gives is CloudFront's edge;
    CloudFront-Viewer-Address names the viewer, believed only with CloudFront's secret."""
    lambda_settings.QA_THROTTLE_RATE = "2/min"
    lambda_settings.QA_CLIENT_IP_HEADER = "CloudFront-Viewer-Address"
    lambda_settings.QA_PROXY_SECRET = "origin-secret"

    def ask(viewer, port, *, secret="origin-secret", source_ip="198.51.100.20"):
        headers = {"CloudFront-Viewer-Address": f"{viewer}:{port}", "X-Origin-Verify": secret}
        event = api_post(kind, KIT_HO, headers=headers)
        return invoke(from_client(event, kind, source_ip, viewer))["statusCode"]

    assert [ask("203.0.113.7", port) for port in (41001, 41002, 41003)] == [200, 200, 429]
    assert ask("203.0.113.8", 41004) == 200  # another viewer behind the same edge
    direct = [ask("203.0.113.8", 1, secret="a guess", source_ip="192.0.2.66") for _ in range(3)]
    assert direct == [403, 403, 403]  # refused: it did not come through CloudFront
    assert ask("203.0.113.8", 41005) == 200  # and it spent nothing of the viewer it named


# --- any Unicode in a URL or a header -----------------------------------------------------------

# Paths as API Gateway, an ALB or a function URL may deliver them: decoded or percent-encoded.
UNICODE_PATHS = [
    "/€",
    "/東京",
    "/%E2%82%AC",
    "/%E6%9D%B1%E4%BA%AC",
    "/café",
    "/caf%C3%A9",
    "/%FF%FE",
    "/😀/\u202e/\u0301",
    "/a\x00b",
    "/\ud800",
    "/api/answer/€",
    "/static/東京.css",
]


def log_lines(capsys) -> list[dict]:
    """The handler's JSON log lines on stdout (qasite.lambda_observability)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", UNICODE_PATHS)
def test_a_unicode_path_is_a_404_and_a_log_line(lambda_settings, capsys, kind, path):
    """The issue's case: rawPath "/€" or "/東京" raised UnicodeEncodeError out of the handler
    (API Gateway answered 500, and nothing was logged)."""
    response = invoke(make_event(kind, path=path))
    assert response["statusCode"] == 404
    if path.startswith("/api/"):
        assert json.loads(body_of(response)) == {"detail": "Not found."}
    else:
        assert "There is no page at this address." in body_of(response)
    [line] = log_lines(capsys)
    assert (line["status"], line["path"]) == (404, path)


# (query string as the client wrote it, the example the page must show)
UNICODE_QUERIES = [
    ("example=東京", "kit-ho"),  # no such example: the default one
    ("example=%E6%9D%B1%E4%BA%AC", "kit-ho"),
    ("example=eiffel&city=東京", "eiffel"),
    ("city=%E2%82%AC&example=photosynthesis", "photosynthesis"),
    ("%FF=%FE&example=eiffel", "eiffel"),
    ("example=eiffel&😀", "eiffel"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("query", "example"), UNICODE_QUERIES)
def test_a_unicode_query_string_is_read(lambda_settings, capsys, kind, query, example):
    """The issue's case: rawQueryString "example=東京" on GET / was a 500."""
    response = invoke(make_event(kind, query=query))
    assert response["statusCode"] == 200
    assert escape(EXAMPLES[example]["question"]) in body_of(response)
    assert len(log_lines(capsys)) == 1


# Lone surrogates where an event may carry them: (name, kind, method, path, query, body)
SURROGATES = [
    ("REST API query parameter", "rest-api-v1", "GET", "/", "a=\ud800", None),
    ("ALB query parameter", "alb", "GET", "/", "a=\udfff", None),
    ("HTTP API query string", "http-api-v2", "GET", "/", "a=\ud800", None),
    ("path", "rest-api-v1", "GET", "/\ud800", "", None),
    *[
        (
            f"text body, {kind}",
            kind,
            "POST",
            "/api/answer/",
            "",
            json.dumps({**KIT_HO, "question": "Who?\ud800"}, ensure_ascii=False),
        )
        for kind in KINDS
    ],
]


@pytest.mark.parametrize(
    ("name", "kind", "method", "path", "query", "body"), SURROGATES, ids=[s[0] for s in SURROGATES]
)
def test_a_lone_surrogate_in_an_event_is_read_as_u_fffd(
    lambda_settings, capsys, name, kind, method, path, query, body
):
    """The review: a REST API or ALB query parameter "\ud800", or a text body holding one, was a
    500 (apig-wsgi encodes them as UTF-8). Now it reads as U+FFFD, as invalid UTF-8 does."""
    headers = {**JSON, "Accept": "application/json"} if body else {}
    response = invoke(make_event(kind, method, path, query=query, body=body, headers=headers))
    assert response["statusCode"] < 500, body_of(response)[:300]
    if body:
        assert response["statusCode"] == 200
    [line] = log_lines(capsys)
    assert line["status"] == response["statusCode"]


@pytest.mark.parametrize("kind", KINDS)
def test_unicode_header_values_are_read(lambda_settings, kind):
    headers = {
        "User-Agent": "東京 😀",
        "Accept-Language": "日本語",
        "Cookie": "name=東京",
        "Referer": "https://example.com/€",
        "X-Anything": "\u202e\u0301",
    }
    response = invoke(make_event(kind, headers=headers))
    assert response["statusCode"] == 200
    api = invoke(api_post(kind, KIT_HO, headers=headers))
    assert api["statusCode"] == 200


# Lone surrogates too: JSON can carry them ("\ud800"), UTF-8 cannot.
ANY_TEXT = st.text(st.characters() | st.sampled_from("%/?&=+ #\x00\ud800\udfff"), max_size=40)
HEADER_NAMES = st.sampled_from(
    [
        "X-Name",
        "User-Agent",
        "Accept",
        "Accept-Language",
        "Cookie",
        "Referer",
        "Origin",
        "Content-Type",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "CloudFront-Viewer-Address",
        "X-Origin-Verify",
        "Host",
    ]
) | st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@hypothesis_settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(KINDS),
    path=ANY_TEXT.map("/".__add__) | ANY_TEXT,
    query=ANY_TEXT,
    headers=st.dictionaries(HEADER_NAMES, ANY_TEXT, max_size=4),
    encoded=st.booleans(),
)
def test_any_unicode_in_any_event_gets_a_response_and_a_log_line(
    lambda_settings, capsys, kind, path, query, headers, encoded
):
    """Paths, query strings and header values of arbitrary Unicode, decoded or percent-encoded,
    in every event shape: never an exception, never a 5xx, always one log line."""
    if encoded:
        # A lone surrogate as the bytes UTF-8 would give it (invalid UTF-8, %ED%A0%80).
        path = quote(path, safe="/%", errors="surrogatepass")
        query = quote(query, safe="=&%", errors="surrogatepass")
    response = invoke(make_event(kind, path=path, query=query, headers=headers))
    assert 200 <= response["statusCode"] < 500, (response["statusCode"], body_of(response)[:300])
    [line] = log_lines(capsys)
    assert line["status"] == response["statusCode"]


def test_a_rust_panic_is_a_500_and_a_log_line_but_an_interrupt_ends_the_process(
    monkeypatch, capsys
):
    """A pyo3 PanicException is a BaseException: the handler answers it as any failure; a
    KeyboardInterrupt or SystemExit still propagates."""
    monkeypatch.setattr(lambda_handler, "wsgi_handler", lambda event, context: raise_(rust_panic()))
    response = invoke(make_event("http-api-v2", path="/x"))
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"detail": "Internal server error."}
    error, line = log_lines(capsys)
    assert error["exception_name"] == "PanicException" and line["status"] == 500
    for stop in (KeyboardInterrupt(), SystemExit(1)):
        monkeypatch.setattr(
            lambda_handler, "wsgi_handler", lambda event, context, stop=stop: raise_(stop)
        )
        with pytest.raises(type(stop)):
            invoke(make_event("http-api-v2", path="/x"))


def raise_(error: BaseException):
    raise error


def test_a_failure_outside_django_is_a_500_and_a_log_line(monkeypatch, capsys):
    marker = "-".join(["Qzv", "marker"])  # not in any source line the traceback shows

    def broken(event, context):
        raise RuntimeError(f"apig-wsgi broke on {marker}")

    monkeypatch.setattr(lambda_handler, "wsgi_handler", broken)
    response = invoke(make_event("http-api-v2", path="/x"))
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"detail": "Internal server error."}
    assert header(response, "Cache-Control") == "no-store"
    error, line = log_lines(capsys)
    assert (line["status"], line["path"]) == (500, "/x")
    assert error["message"] == "The event could not be handled"
    assert error["exception_name"] == "RuntimeError" and "in broken" in error["exception"]
    assert "builtins.RuntimeError: (message withheld)" in error["exception"]
    assert marker not in json.dumps(error)


# --- a path prefix: REST API stages, HTTP API named stages, proxies -----------------------------

# How each shape carries a prefix: (event kind, prefix, where it comes from)
PREFIXES = {
    "REST API stage": ("rest-api-v1", "/prod"),  # requestContext.path /prod/..., path /...
    "REST API base path mapping": ("rest-api-v1", "/qa"),  # both /qa/...; /{proxy+} has the rest
    "HTTP API named stage": ("http-api-v2", "/prod"),  # rawPath /prod/...
}


def prefixed(how: str, method: str, path: str, **kwargs) -> dict:
    """An event for ``path`` on the site served under a prefix, as ``how`` carries it."""
    kind, prefix = PREFIXES[how]
    event = make_event(kind, method, path, **kwargs)
    if how == "REST API stage":
        event["requestContext"]["path"] = prefix + path
    elif how == "REST API base path mapping":
        event["path"] = event["requestContext"]["path"] = prefix + path
    else:
        event["requestContext"]["stage"] = prefix.strip("/")
        event["rawPath"] = event["requestContext"]["http"]["path"] = prefix + path
    return event


@pytest.mark.parametrize("how", PREFIXES)
@pytest.mark.parametrize(
    ("path", "accept"),
    [("/", "text/html"), ("/api/answer/", "text/html"), ("/no/such/page/", "text/html")],
    ids=["page", "browsable API", "404 page"],
)
def test_links_follow_the_prefix_in_the_url(lambda_settings, how, path, accept):
    """The issue's case: on a REST API stage URL (https://…/prod/) the page's form, script,
    stylesheet and API links pointed outside /prod/."""
    prefix = PREFIXES[how][1]
    response = invoke(prefixed(how, "GET", path, headers={"Accept": accept}))
    found = links(body_of(response))
    assert found and all(link.startswith(f"{prefix}/") for link in found), found
    for link in {link for link in found if link.startswith(f"{prefix}/static/")}:
        static = invoke(prefixed(how, "GET", link.removeprefix(prefix)))
        assert static["statusCode"] == 200, link


@pytest.mark.parametrize("how", PREFIXES)
def test_the_api_answers_under_a_prefix(lambda_settings, how):
    headers = {**JSON, "Accept": "application/json"}
    event = prefixed(how, "POST", "/api/answer/", body=json.dumps(KIT_HO), headers=headers)
    response = invoke(event)
    assert response["statusCode"] == 200, body_of(response)
    assert json.loads(body_of(response))["answer"]


@pytest.mark.parametrize(
    "how", [*PREFIXES, "no prefix", "DJANGO_FORCE_SCRIPT_NAME=/qa", "DJANGO_FORCE_SCRIPT_NAME=/"]
)
def test_the_schemas_servers_are_the_prefix_it_was_asked_under(lambda_settings, how):
    """The review: Swagger UI's "Try it out" posted to /api/answer/ at the root under a prefix:
    the schema had no servers. Its paths stay the site's; servers adds the prefix (none without
    one, where OpenAPI's default "/" is right)."""
    if how in PREFIXES:
        event = prefixed(how, "GET", "/api/schema/", query="format=json")
        expected = [{"url": PREFIXES[how][1]}]
    else:
        forced = how.partition("=")[2] or None
        lambda_settings.FORCE_SCRIPT_NAME = forced
        event = make_event("http-api-v2", "GET", "/api/schema/", query="format=json")
        expected = [{"url": forced}] if forced not in (None, "/") else None
    schema = json.loads(body_of(invoke(event)))
    assert schema.get("servers") == expected
    assert "/api/answer/" in schema["paths"]


@pytest.mark.parametrize(
    ("kind", "forced", "expected"),
    [("alb", "/qa", "/qa/"), ("function-url", "/qa", "/qa/"), ("rest-api-v1", "/", "/")],
    ids=["proxy-prefix-alb", "proxy-prefix-function-url", "rest-stage-behind-cloudfront"],
)
def test_djangos_force_script_name_sets_the_links_prefix(lambda_settings, kind, forced, expected):
    """DJANGO_FORCE_SCRIPT_NAME: a proxy mounting the site under /qa and stripping it; or "/" for
    a REST API stage behind CloudFront, whose origin path adds /prod where viewers see none."""
    lambda_settings.FORCE_SCRIPT_NAME = forced
    found = links(body_of(invoke(make_event(kind))))
    assert found and all(link.startswith(expected) for link in found), found
    assert not any(link.startswith("/prod/") for link in found)


def is_text(content_type: str) -> bool:
    """Whether a media type is text, by RFC 6838's rules of thumb: text/*, a charset parameter,
    or JSON, XML, YAML or JavaScript by subtype or structured-syntax suffix."""
    media_type, _, parameters = content_type.partition(";")
    major, _, subtype = media_type.strip().lower().partition("/")
    textual = ("json", "xml", "yaml", "x-yaml", "javascript", "ecmascript")
    return (
        major == "text"
        or "charset=" in parameters.lower()
        or subtype in textual
        or subtype.rpartition("+")[2] in textual
        or subtype.startswith("vnd.oai.openapi")
    )


def every_static_file() -> list[str]:
    from django.contrib.staticfiles import finders

    return sorted(
        path for finder in finders.get_finders() for path, _ in finder.list(ignore_patterns=[])
    )


RESPONSE_KINDS = [  # (what, path, Accept)
    ("html page", "/", "text/html"),
    ("json", "/api/health/", "application/json"),
    ("json error", "/api/nope/", "application/json"),
    ("html error", "/nope/", "text/html"),
    ("browsable api", "/api/answer/", "text/html"),
    ("openapi yaml", "/api/schema/", "application/vnd.oai.openapi"),
    ("openapi json", "/api/schema/", "application/vnd.oai.openapi+json"),
]


@pytest.mark.parametrize("kind", KINDS)
def test_text_is_never_sent_as_base64(lambda_settings, kind):
    """The issue's case: on REST API events /api/schema/ came back base64 (a REST API without
    binaryMediaTypes hands that to the client as it is). Every response kind and every static
    file: text as text, anything else base64, and the bytes intact either way."""
    import django.contrib.staticfiles.finders as finders

    seen = set()
    for what, path, accept in RESPONSE_KINDS:
        response = invoke(make_event(kind, path=path, headers={"Accept": accept}))
        content_type = header(response, "Content-Type")
        assert is_text(content_type), (what, content_type)
        assert response["isBase64Encoded"] is False, (what, content_type)
        seen.add(content_type.split(";")[0])
    for path in every_static_file():
        response = invoke(make_event(kind, path=f"/static/{path}"))
        assert response["statusCode"] == 200, path
        content_type = header(response, "Content-Type")
        on_disk = Path(finders.find(path)).read_bytes()
        if is_text(content_type):
            assert response["isBase64Encoded"] is False, (path, content_type)
            assert response["body"].encode() == on_disk, path
        else:
            assert response["isBase64Encoded"] is True, (path, content_type)
            assert base64.b64decode(response["body"]) == on_disk, path
        seen.add(content_type.split(";")[0])
    # What the site serves, text and not: the test covers the kinds the issue names.
    assert {
        "text/html",
        "application/json",
        "application/vnd.oai.openapi",
        "application/vnd.oai.openapi+json",
        "text/css",
        "text/javascript",
        "image/svg+xml",
    } <= seen, seen


# --- load balancers' health checks ----------------------------------------------------------------


def test_an_alb_health_check_of_a_lambda_function_gets_200(lambda_settings):
    """What an ALB sends a Lambda target: no Host, no X-Forwarded-For, no X-Forwarded-Proto."""
    event = make_event("alb", path="/api/health/")
    event["headers"] = {"user-agent": "ELB-HealthChecker/2.0"}
    response = invoke(event)
    assert response["statusCode"] == 200
    assert json.loads(body_of(response))["model"] == Path(lambda_settings.QA_MODEL).name


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("host", ["10.0.1.85", "10.0.1.85:8080", "[fd00::1]", "evil.example"])
def test_health_answers_any_host_and_nothing_else_does(lambda_settings, kind, host):
    health = invoke(make_event(kind, path="/api/health/", headers={"Host": host}))
    assert health["statusCode"] == 200
    assert header(health, "Content-Type") == "application/json"
    for method, path in [("GET", "/"), ("GET", "/api/answer/"), ("POST", "/api/health/")]:
        assert invoke(make_event(kind, method, path, headers={"Host": host}))["statusCode"] == 400


def test_unknown_host_is_refused(lambda_settings):
    event = make_event("http-api-v2", headers={"Host": "attacker.example"})
    assert invoke(event)["statusCode"] == 400


def test_body_that_is_not_base64_is_a_400(lambda_settings):
    event = api_post("http-api-v2", {})
    event["body"], event["isBase64Encoded"] = "not base64!!!", True
    response = invoke(event)
    assert response["statusCode"] == 400
    assert "base64" in response["body"]


def test_keep_warm_never_reaches_django_nor_logs_nor_metrics(monkeypatch, capsys):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "qasite-test")  # metrics on
    monkeypatch.setattr(lambda_handler, "wsgi_handler", lambda *args: pytest.fail("Django ran"))
    event = json.loads((EVENTS / "keep-warm.json").read_text())
    assert lambda_handler.handler(event, LambdaContext()) == {"warm": True}
    assert capsys.readouterr() == ("", "")


def test_a_measure_invocation_reports_the_cpu_the_model_and_latency(
    lambda_settings, monkeypatch, capsys
):
    """``aws lambda invoke --payload '{"measure": true}'`` after a deploy: which CPU this
    instance runs on and how fast it answers, without reaching Django."""
    monkeypatch.setattr(lambda_handler, "wsgi_handler", lambda *args: pytest.fail("Django ran"))
    report = lambda_handler.handler({"measure": True}, LambdaContext())
    assert report["cpu"] and isinstance(report["cpu_flags"], list) and report["cores"] >= 1
    assert report["quantization"] is None and report["threads"] == lambda_settings.QA_THREADS
    assert set(report["latency_ms"]) == {"Kit-Ho Mak", "20,000 chars"}
    assert all(ms > 0 for ms in report["latency_ms"].values())
    json.dumps(report)  # what Lambda sends back


@pytest.mark.parametrize("broken_model", ["garbage safetensors"], indirect=True)
def test_a_measure_invocation_says_why_the_model_is_unavailable(lambda_settings, broken_model):
    lambda_settings.QA_MODEL = str(broken_model.directory)
    report = lambda_handler.handler({"measure": True}, LambdaContext())
    assert list(report) == ["error"] and report["error"]


def emf_metrics(line: dict) -> dict:
    """{name: values} of an EMF document."""
    [directive] = line["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: line[metric["Name"]] for metric in directive["Metrics"]}


def test_each_invocation_publishes_its_metrics_after_its_log_line(
    lambda_settings, capsys, monkeypatch
):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "qasite-test")
    monkeypatch.setattr(lambda_handler, "_cold", True)
    invoke(api_post("http-api-v2", KIT_HO))
    invoke(make_event("http-api-v2", path="/no/such/page/"))
    request, first, client_error, request_404, second = log_lines(capsys)  # a 4xx's at once
    assert (request["status"], request_404["status"]) == (200, 404)
    loaded = {"ModelLoadTime"} & emf_metrics(first).keys()  # if the model loaded just then
    assert emf_metrics(first).keys() - loaded == {
        "ColdStart",
        "Requests",
        "Latency",
        "Answers",
        "NoAnswer",
    }
    assert (emf_metrics(client_error), client_error["status"]) == ({"ClientErrors": [1.0]}, "404")
    assert emf_metrics(second).keys() == {"Requests", "Latency"}  # warm now


def test_every_log_line_of_an_invocation_carries_its_request_id(lambda_settings, monkeypatch):
    """Django's own lines too (the 404's warning here), as settings format them on Lambda."""
    django_json = console_output(monkeypatch, LambdaPowertoolsFormatter(json_serializer=ascii_json))
    invoke(make_event("http-api-v2", path="/no/such/page/"))
    line = json.loads(django_json.getvalue())
    assert line["message"] == "Not Found: /no/such/page/"
    assert line["function_request_id"] == LambdaContext.aws_request_id and "cold_start" in line
    invoke(make_event("http-api-v2", path="/also/missing/", headers={}))  # keys are per invocation
    assert json.loads(django_json.getvalue().splitlines()[1])["function_request_id"]


def test_one_json_log_line_per_request(lambda_settings, capsys, monkeypatch):
    """Powertools' structured log: the request's line with the invocation's keys."""
    monkeypatch.setattr(lambda_handler, "_cold", True)
    event = api_post("http-api-v2", KIT_HO)
    invoke(event)
    invoke(event)
    first, second = log_lines(capsys)
    assert first == {
        "level": "INFO",
        "location": first["location"],
        "message": "request",
        "timestamp": first["timestamp"],
        "service": "qasite",
        "method": "POST",
        "path": "/api/answer/",
        "status": 200,
        "duration_ms": first["duration_ms"],
        "cold_start": True,
        "function_request_id": LambdaContext.aws_request_id,
    }
    assert second["cold_start"] is False


# --- SnapStart: an instance restored from a snapshot is its own --------------------------------


@pytest.mark.parametrize("configured_key", [False, True])
def test_after_restore_resets_what_init_left_behind(
    lambda_settings, monkeypatch, capsys, configured_key
):
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
    event = api_post("http-api-v2", KIT_HO)
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


def test_after_restore_publishes_nothing_of_the_snapshot_and_reads_the_secrets_again(
    lambda_settings, monkeypatch, capsys
):
    """What init (the model's load) and priming recorded belongs to no restored instance; the
    Tracer's cold-start flag is Powertools' own; the origin secrets may have been rotated."""
    from snapshot_restore_py import get_after_restore

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "qasite-test")
    tracer = importlib.import_module("aws_lambda_powertools.tracing.tracer")
    monkeypatch.setattr(tracer, "is_cold_start", False)
    services.metrics.add("ModelLoadTime", "Milliseconds", 1500)
    assert lambda_handler.prime() == [200, 200, 200]
    read = []
    monkeypatch.setattr(lambda_handler, "refresh_secrets", lambda: read.append("refresh"))
    for hook, args, kwargs in get_after_restore():
        hook(*args, **kwargs)
    assert read == ["refresh"] and tracer.is_cold_start is True
    capsys.readouterr()
    invoke(make_event("http-api-v2"))
    _, published = log_lines(capsys)
    assert published["Requests"] == [1.0] and published["ColdStart"] == [1.0]
    assert "ModelLoadTime" not in published and "Answers" not in published


@pytest.mark.parametrize("answers", [[None], [ssm_error(500, "InternalServerError")]])
def test_a_restore_with_ssm_unreachable_ends_within_the_bound_and_keeps_the_secrets(
    lambda_settings, local_ssm, answers
):
    """SnapStart fails a restore whose hooks pass 10 s: with SSM's endpoint accepting
    connections and never answering (botocore's defaults waited minutes), or answering errors,
    every after-restore hook together returns within the SSM read's bound, and the site goes on
    taking the secret init read, with the SSM client init built."""
    from snapshot_restore_py import get_after_restore

    fake = local_ssm(get_parameter_answer(SSM_PARAMETER, "s3cret-at-init"), *answers)
    assert origin.proxy_secrets() == ["s3cret-at-init"]  # init's read
    client = origin.ssm_provider().client
    started = time.monotonic()
    for hook, args, kwargs in get_after_restore():
        hook(*args, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < origin.READ_BOUND + 5, elapsed  # a generous margin, far below 60 s
    assert len(fake.requests) == 1 + origin.ATTEMPTS and origin.ssm_provider().client is client
    for sent, status in [(None, 403), ("s3cret-at-init", 200)]:
        headers = {"X-Origin-Verify": sent} if sent else {}
        assert invoke(make_event("http-api-v2", headers=headers))["statusCode"] == status


@pytest.mark.parametrize("secret", ["", "new-secret,old-secret"])
def test_prime_warms_the_page_an_answer_and_health_before_a_snapshot(lambda_settings, secret):
    """Through the proxy gate too: priming sends the origin secret, as CloudFront does."""
    from snapshot_restore_py import get_before_snapshot

    lambda_settings.QA_PROXY_SECRET = secret
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
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "QA_MODEL": str(modern_model_dir),
        "DJANGO_ALLOWED_HOSTS": ".amazonaws.com",
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
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


# (what, event kind, method, path, body, headers, expected status), run in this order.
PRIVACY_REQUESTS = [
    ("page", "http-api-v2", "GET", "/", None, {}, 200),
    ("answer", "http-api-v2", "POST", "/api/answer/", json.dumps(ask(top_k=3)), JSON, 200),
    ("batch", "rest-api-v1", "POST", "/api/answer/", json.dumps([ask(1), ask(2)]), JSON, 200),
    ("unknown field", "alb", "POST", "/api/answer/", json.dumps({**ask(), MARKER: 1}), JSON, 400),
    (
        "over the limits",
        "function-url",
        "POST",
        "/api/answer/",
        json.dumps({"question": MARKER * 40, "context": MARKER * 1600}),
        JSON,
        400,
    ),
    ("bad JSON", "http-api-v2", "POST", "/api/answer/", json.dumps(ask())[:-9], JSON, 400),
    (
        "InvalidQuestion",
        "http-api-v2",
        "POST",
        "/api/answer/",
        json.dumps({"question": f"{MARKER} " * 30, "context": MARKER, "max_seq_len": 32}),
        JSON,
        400,
    ),
    (
        "over the upload limit",
        "http-api-v2",
        "POST",
        "/api/answer/",
        json.dumps({"question": MARKER, "context": MARKER * 400_000}),
        JSON,
        413,
    ),
    (
        "HF shape",
        "function-url",
        "POST",
        "/api/hf/question-answering/",
        json.dumps({"inputs": [ask(1), ask(2)], "parameters": {"top_k": 2}}),
        JSON,
        200,
    ),
    (
        "HF shape, errors",
        "alb",
        "POST",
        "/api/hf/question-answering/",
        json.dumps(
            {"inputs": {"question": MARKER * 501, "context": ""}, "parameters": {MARKER: 1}}
        ),
        JSON,
        400,
    ),
    (
        "HF shape, InvalidQuestion",
        "rest-api-v1",
        "POST",
        "/api/hf/question-answering/",
        json.dumps(
            {
                "inputs": {"question": MARKER, "context": f"{MARKER} " * 300},
                "parameters": {"doc_stride": 300, "max_seq_len": 256},
            }
        ),
        JSON,
        400,
    ),
    (
        "form",
        "http-api-v2",
        "POST",
        "/",
        urlencode({**ask(top_k=1), "csrfmiddlewaretoken": CSRF_SECRET}),
        FORM,
        200,
    ),
    ("form without CSRF", "rest-api-v1", "POST", "/", urlencode(ask(top_k=1)), FORM, 403),
    (
        "form with a field error",
        "alb",
        "POST",
        "/",
        urlencode({"question": MARKER, "context": "", "csrfmiddlewaretoken": CSRF_SECRET}),
        FORM,
        400,
    ),
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
    (a 500 too), never reach a log record, stdout or stderr, as on Lambda: JSON logs (the
    handler's and Django's) and metrics (EMF) included; no response sets another cookie."""
    assert lambda_settings.DEBUG is False
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "qasite-test")  # metrics on, as on Lambda
    monkeypatch.setattr(lambda_handler, "_cold", True)
    django_json = console_output(monkeypatch, LambdaPowertoolsFormatter(json_serializer=ascii_json))
    responses = []
    for what, kind, method, path, body, headers, expected in PRIVACY_REQUESTS:
        cookies = {"csrftoken": CSRF_SECRET} if (method, path) == ("POST", "/") else None
        response = invoke(
            make_event(
                kind,
                method,
                path,
                body=body,
                headers=headers,
                cookies=cookies,
            )
        )
        assert response["statusCode"] == expected, (what, body_of(response)[:300])
        responses.append(response)

    # Query strings, which nothing reads but Django's records of 4xx and 5xx carry (the request).
    for kind, method, path, expected in [
        ("http-api-v2", "GET", "/no/such/page/", 404),
        ("alb", "POST", "/", 403),
    ]:
        response = invoke(make_event(kind, method, path, query=f"question={MARKER}"))
        assert response["statusCode"] == expected
        responses.append(response)

    def crash(*inputs):
        raise RuntimeError("the model crashed")

    monkeypatch.setattr(services.lazy_answerer().get(), "_forward", crash)
    for kind, path, body, headers in [
        ("http-api-v2", "/api/answer/", json.dumps(ask()), JSON),
        ("rest-api-v1", "/", urlencode({**ask(top_k=1), "csrfmiddlewaretoken": CSRF_SECRET}), FORM),
    ]:
        response = invoke(
            make_event(
                kind,
                "POST",
                path,
                body=body,
                headers=headers,
                cookies={"csrftoken": CSRF_SECRET},
                query=f"context={MARKER}",
            )
        )
        assert response["statusCode"] == 500
        responses.append(response)

    printed = capfd.readouterr()
    logged = "\n".join(every_log_record)
    lines = [json.loads(line) for line in (printed.out + django_json.getvalue()).splitlines()]
    # The capture works: the errors were logged, with their traceback, the requests logged, and
    # the metrics published.
    assert "Internal Server Error: /api/answer/" in logged and "the model crashed" in logged
    assert "Bad Request: /api/answer/" in logged and "Forbidden (CSRF" in logged
    requests = [line for line in lines if line.get("message") == "request"]
    assert [line["path"] for line in requests].count("/api/answer/") == 9
    [crash_line, _] = [line for line in lines if line.get("exception_name") == "RuntimeError"]
    assert crash_line["message"] == "Internal Server Error: /api/answer/"
    assert crash_line["exception"].endswith("builtins.RuntimeError: (message withheld)")
    published = {
        metric["Name"]
        for line in lines
        if "_aws" in line
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert published == {
        "ColdStart",
        "ModelLoadTime",
        "Requests",
        "Latency",
        "Answers",
        "NoAnswer",
        "ClientErrors",
        "ServerErrors",
    }
    assert MARKER not in logged + printed.out + printed.err + django_json.getvalue()
    cookie_names = [[c.split("=")[0].strip() for c in set_cookies(r)] for r in responses]
    assert ["csrftoken"] in cookie_names  # the page sets it, and no response sets anything else
    assert all(names in ([], ["csrftoken"]) for names in cookie_names), cookie_names


# Run in a fresh process, as Lambda runs the handler: init (the model, the origin secrets from
# SSM), a SnapStart restore, then the event file argv[1] twice, with the secret argv[2] and
# without; prints the two statuses. A DEBUG line of its own shows the level took effect.
INIT_RESTORE_REQUESTS = textwrap.dedent(
    """
    import json, logging, sys
    from qasite import lambda_handler
    logging.getLogger("qa").debug("DEBUG is on")
    lambda_handler.after_restore()
    event = json.load(open(sys.argv[1]))
    statuses = []
    for sent in [sys.argv[2], "a guess"]:
        event["headers"]["x-origin-verify"] = sent
        statuses.append(lambda_handler.handler(event, None)["statusCode"])
    print(json.dumps(statuses))
    """
)


@pytest.mark.parametrize(
    ("log_format", "credentials"), [("json", "environment"), ("text", "endpoint")]
)
def test_no_secret_nor_credential_is_logged_at_debug_from_init_on(
    modern_model_dir, tmp_path, log_format, credentials
):
    """DJANGO_LOG_LEVEL=DEBUG, as documented, through the real init path: the origin secrets read
    from SSM (a fake endpoint on loopback answering as SSM does, so botocore has a real body to
    log), read again after a restore (rotated: a secret no filter knew), again in a request (the
    cache expired), and sent in requests' X-Origin-Verify. Whatever every library logs (botocore,
    urllib3, Powertools, Django), nothing the process printed holds a secret, the session token,
    the secret key or the credentials endpoint's token, with credentials from the environment
    or, as under SnapStart, from Lambda's credentials endpoint."""
    first, second, rotated = (f"{name}-{uuid.uuid4().hex}" for name in ["first", "second", "new"])
    with contextlib.ExitStack() as running:
        fake = running.enter_context(
            fake_ssm(
                get_parameter_answer(SSM_PARAMETER, f"{first} {second}"),
                get_parameter_answer(SSM_PARAMETER, f"{rotated},{first}"),
            )
        )
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
            "QA_MODEL": str(modern_model_dir),
            "DJANGO_ALLOWED_HOSTS": ".amazonaws.com",
            "DJANGO_LOG_LEVEL": "DEBUG",
            "DJANGO_LOG_FORMAT": log_format,
            "AWS_LAMBDA_FUNCTION_NAME": "qasite-test",
            "QA_PROXY_SECRET_PARAMETER": SSM_PARAMETER,
            "QA_PROXY_SECRET_MAX_AGE": "0",
            "AWS_ENDPOINT_URL_SSM": fake.url,
            **AWS_TEST_ENVIRONMENT,
        }
        token = AWS_TEST_ENVIRONMENT["AWS_SESSION_TOKEN"]
        if credentials == "endpoint":
            for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]:
                del environment[name]
            environment.update(running.enter_context(container_credentials()))
            token = CONTAINER_CREDENTIALS["Token"]
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                INIT_RESTORE_REQUESTS,
                str(EVENTS / "http-api-v2.json"),
                rotated,
            ],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [200, 403]
    printed = result.stdout + result.stderr
    # The capture works: DEBUG was on; SSM was called by init, the restore and each request,
    # each call signed with the token.
    assert "DEBUG is on" in printed, printed[-3000:]
    assert [headers["X-Amz-Security-Token"] for headers, _ in fake.requests] == [token] * 4
    withheld = [
        first,
        second,
        rotated,
        token,
        AWS_TEST_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        CONTAINER_CREDENTIALS["SecretAccessKey"],
        CONTAINER_AUTHORIZATION_TOKEN,
        *(headers["Authorization"].rsplit("Signature=", 1)[1] for headers, _ in fake.requests),
    ]
    assert [secret for secret in withheld if secret in printed] == []


def test_with_tracing_on_x_ray_gets_neither_answers_nor_what_users_send(modern_model_dir, tmp_path):
    """QA_TRACING=1 as on Lambda (a trace id from the runtime, LAMBDA_TASK_ROOT set), with a
    fake X-Ray daemon on loopback: each invocation sends its subsegment, annotated with the cold
    start, and nothing of the question, the context or the answer."""
    event = json.loads((EVENTS / "http-api-v2-post-answer.json").read_text())
    event["body"] = json.dumps(
        {"question": f"Who is {MARKER}?", "context": f"{MARKER} is Kit-Ho Mak."}
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    environment = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(REPO),
        "QA_MODEL": str(modern_model_dir),
        "DJANGO_SETTINGS_MODULE": "qasite.settings",
        "DJANGO_ALLOWED_HOSTS": ".execute-api.eu-west-1.amazonaws.com",
        "PYTHONPATH": str(REPO),
    }
    datagrams, segments, printed = traced_twice([sys.executable], event_file, environment, REPO)
    assert [segment["annotations"]["ColdStart"] for segment in segments] == [True, False]
    assert all(segment["name"] == "## serve" and "metadata" not in segment for segment in segments)
    assert MARKER not in printed
    assert "Kit-Ho" not in "".join(datagrams)


def test_run_on_an_event_file_from_the_command_line(real_model_dir, tmp_path):
    """A fresh interpreter loads the model at import, answers, and writes only in its temp dir."""
    script = textwrap.dedent(
        f"""
        import os, sys
        allowed = {str(tmp_path)!r}
        writes = []
        def audit(event, args):
            if event == "open" and args[0] is not None and not isinstance(args[0], int):
                mode, flags = args[1], args[2]
                writes_flags = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
                writing = (mode and any(c in mode for c in "wax+")) or writes_flags
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
        "PYTHONPATH": str(REPO),
    }
    before = {path: path.stat().st_mtime_ns for path in REPO.rglob("*") if ".git" not in path.parts}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["answer"] == "Kit-Ho Mak"
    assert "WRITES []" in result.stderr, result.stderr
    after = {path: path.stat().st_mtime_ns for path in REPO.rglob("*") if ".git" not in path.parts}
    assert after == before
