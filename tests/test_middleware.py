"""Security headers on every kind of response, and nothing we serve needs the CSP relaxed; a path
missing only its trailing slash; JSON errors under /api/ in every mode."""

import json
import re
from pathlib import Path

import pytest
from django.test import Client

from qa import services
from qa.reader.examples import KIT_HO
from tests.helpers import rust_panic

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@pytest.fixture
def every_response(client, tiny_model_settings):
    """One response of each kind qasite serves, by name."""
    return {
        "page": client.get("/"),
        "page with an answer": client.post("/", {**KIT_HO, "top_k": 2}),
        "API JSON": client.post(
            "/api/answer/", json.dumps(KIT_HO), content_type="application/json"
        ),
        "API usage": client.get("/api/answer/", HTTP_ACCEPT="application/json"),
        "browsable API": client.get("/api/answer/", HTTP_ACCEPT="text/html"),
        "health": client.get("/api/health/"),
        "schema": client.get("/api/schema/"),
        "API reference": client.get("/api/docs/"),
        "favicon": client.get("/favicon.ico"),
        "static file": client.get("/static/qa/ask.js"),
        "DRF static file": client.get("/static/rest_framework/js/default.js"),
        "Swagger UI static file": client.get(
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        ),
        "404 page": client.get("/no/such/page/"),
        "404 JSON": client.get("/api/no/such/endpoint/"),
        "405 page": client.put("/"),
        "CSRF failure page": Client(enforce_csrf_checks=True).post("/", KIT_HO),
        "400 bad host": client.get("/", HTTP_HOST="attacker.example"),
    }


def test_every_response_carries_the_security_headers(every_response):
    for name, response in every_response.items():
        headers = response.headers
        assert headers.get("Content-Security-Policy") == POLICY, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Referrer-Policy") == "same-origin", name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", name


def test_no_hsts_and_no_secure_cookie_without_https(every_response):
    for name, response in every_response.items():
        assert "Strict-Transport-Security" not in response.headers, name
    assert not every_response["page"].cookies["csrftoken"]["secure"]


INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"),
    "style element": re.compile(r"<style\b"),
    "style attribute": re.compile(r"\sstyle\s*="),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def test_no_html_we_serve_needs_inline_script_or_style(every_response, client, monkeypatch):
    """Nothing the CSP blocks: our pages, DRF's browsable API (after a POST too), error pages."""

    def fail(*, questions):
        raise RuntimeError("boom")

    html = {
        name: response.content.decode()
        for name, response in every_response.items()
        if response["Content-Type"].startswith("text/html")
    }
    html["browsable API after a POST"] = client.post(
        "/api/answer/", KIT_HO, HTTP_ACCEPT="text/html"
    ).content.decode()
    monkeypatch.setattr(services, "answer_questions", fail)
    crashed = Client(raise_request_exception=False).post("/", {**KIT_HO, "top_k": 1})
    html["500 page"] = crashed.content.decode()
    expected = {
        "page",
        "browsable API",
        "API reference",
        "404 page",
        "CSRF failure page",
        "500 page",
    }
    assert expected <= set(html)
    for name, text in html.items():
        for what, pattern in INLINE.items():
            assert not pattern.search(text), f"{what} in the {name}: {pattern.search(text)}"


# --- a path missing only its trailing slash ---------------------------------------------------


def api_paths() -> list[str]:
    """Every path the URLconf routes under /api/ (none takes a parameter)."""
    from django.urls import get_resolver

    def routes(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                yield from routes(pattern.url_patterns, route)
            else:
                yield "/" + route

    return sorted(path for path in routes(get_resolver().url_patterns) if path.startswith("/api/"))


UNSAFE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
METHODS = ["GET", "HEAD", "OPTIONS", *UNSAFE_METHODS]


def test_the_api_paths_are_found():
    assert {"/api/answer/", "/api/health/", "/api/schema/"} <= set(api_paths())
    assert all(path.endswith("/") for path in api_paths())


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", api_paths())
def test_an_api_path_without_its_slash_is_answered_as_with_it(
    tiny_model_settings, settings, path, method, debug
):
    """Every API path, every method, DEBUG on and off: the answer the slashed path gives, never
    a redirect (which loses a POST's body) nor DEBUG's RuntimeError page."""
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)
    body, content_type = json.dumps(KIT_HO), "application/json"
    with_slash = client.generic(method, path, body, content_type=content_type)
    without = client.generic(method, path.rstrip("/"), body, content_type=content_type)
    assert without.status_code == with_slash.status_code, without.content[:300]
    assert not 300 <= without.status_code < 400
    assert without["Content-Type"] == with_slash["Content-Type"]
    if path == "/api/answer/" and method == "POST":
        assert without.status_code == 200 and without.json() == with_slash.json()


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(
    ("method", "path", "status", "location"),
    [
        ("GET", "/api/answer?x=1", 200, None),  # the API: answered
        ("GET", "/no/such/page", 404, None),  # nothing with a slash either
        ("GET", "/api/no/such/endpoint", 404, None),
        ("POST", "/api/no/such/endpoint", 404, None),
    ],
)
def test_other_paths_without_a_slash(client, settings, method, path, status, location, debug):
    settings.DEBUG = debug
    response = client.generic(method, path)
    assert response.status_code == status
    assert response.get("Location") == location


def test_a_page_without_its_slash_is_still_redirected_for_a_browser(rf, settings):
    """GET and HEAD of a page keep Django's APPEND_SLASH redirect; other methods are answered."""
    from django.urls import path as route

    from qasite.middleware import TrailingSlashMiddleware

    settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": [route("page/", lambda r: None)]})
    seen = []
    middleware = TrailingSlashMiddleware(lambda request: seen.append(request.path_info))
    for method in METHODS:
        middleware(rf.generic(method, "/page"))
    assert seen == ["/page", "/page", *["/page/"] * 5]


# --- JSON errors under /api/, in every mode ---------------------------------------------------


def crash(*, questions):
    raise RuntimeError("/secret/path/marker")


def panic(*, questions):
    raise rust_panic()


def test_a_rust_panic_on_a_page_is_the_500_page(tiny_model_settings, monkeypatch):
    monkeypatch.setattr(services, "answer_questions", panic)
    response = Client(raise_request_exception=False).post("/", {**KIT_HO, "top_k": 1})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_only_a_rust_panic_is_turned_into_an_error(rf):
    from qasite.middleware import RustPanicMiddleware, is_rust_panic

    assert is_rust_panic(rust_panic())
    for error in (KeyboardInterrupt(), SystemExit(1), RuntimeError("x")):
        assert not is_rust_panic(error)

        def view(request, error=error):
            raise error

        with pytest.raises(type(error)):
            RustPanicMiddleware(view)(rf.get("/"))


# (name, request keyword arguments, status, detail or None for DRF's own message, setup)
API_ERRORS = [
    ("unknown path", {"path": "/api/no/such/endpoint/"}, 404, "Not found.", None),
    ("unknown path under an endpoint", {"path": "/api/answer/more/"}, 404, "Not found.", None),
    (
        "unknown path, browser",
        {"path": "/api/nope/", "HTTP_ACCEPT": "text/html"},
        404,
        "Not found.",
        None,
    ),
    ("method not allowed", {"path": "/api/health/", "method": "POST"}, 405, None, None),
    (
        "bad host",
        {"path": "/api/answer/", "HTTP_HOST": "attacker.example"},
        400,
        "Bad request.",
        None,
    ),
    (
        "forbidden user agent",
        {"path": "/api/answer/", "HTTP_USER_AGENT": "BadBot/1.0"},
        403,
        "Permission denied.",
        "bad_bot",
    ),
    ("malformed JSON", {"path": "/api/answer/", "method": "POST", "data": "{"}, 400, None, None),
    (
        "JSON sent as form data",
        {
            "path": "/api/answer/",
            "method": "POST",
            "content_type": "application/x-www-form-urlencoded",
        },
        415,
        'The body is JSON, but its Content-Type is "application/x-www-form-urlencoded": send it '
        'with "Content-Type: application/json".',
        None,
    ),
    (
        "body over the upload limit",
        {
            "path": "/api/answer/",
            "method": "POST",
            "data": json.dumps({**KIT_HO, "context": "x" * 2000}),
        },
        413,
        None,
        "small_uploads",
    ),
    (
        "unexpected error",
        {"path": "/api/answer/", "method": "POST"},
        500,
        "Internal server error.",
        "crash",
    ),
    (
        "unexpected error, browsable API",
        {"path": "/api/answer/", "method": "POST", "HTTP_ACCEPT": "text/html"},
        500,
        "Internal server error.",
        "crash",
    ),
    # A BaseException, which Django's handlers let through to the server (text/plain 500).
    (
        "Rust panic",
        {"path": "/api/answer/", "method": "POST"},
        500,
        "Internal server error.",
        "panic",
    ),
]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(
    ("name", "request_args", "status", "detail", "setup"),
    API_ERRORS,
    ids=[error[0] for error in API_ERRORS],
)
def test_errors_under_the_api_are_json_in_every_mode(
    tiny_model_settings, settings, monkeypatch, name, request_args, status, detail, setup, debug
):
    settings.DEBUG = debug
    if setup == "bad_bot":
        settings.DISALLOWED_USER_AGENTS = [re.compile("BadBot")]
    elif setup == "small_uploads":
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    elif setup == "crash":
        monkeypatch.setattr(services, "answer_questions", crash)
    elif setup == "panic":
        monkeypatch.setattr(services, "answer_questions", panic)
    args = {
        "method": "GET",
        "data": json.dumps(KIT_HO),
        "content_type": "application/json",
        **request_args,
    }
    response = Client(raise_request_exception=False).generic(
        args.pop("method"), args.pop("path"), args.pop("data"), **args
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"}
    assert body["detail"] == detail if detail else body["detail"]
    assert "marker" not in response.content.decode()
    assert response["Content-Security-Policy"] == POLICY  # the page's headers are kept


# Errors of each endpoint under /api/ that its own renderers would not send as JSON (the schema's
# are YAML): (method, path, headers, status).
ENDPOINT_ERRORS = [
    ("POST", "/api/schema/", {}, 405),
    ("PUT", "/api/schema/", {}, 405),
    ("GET", "/api/schema/", {"HTTP_ACCEPT": "application/xml"}, 406),
    ("GET", "/api/schema/?format=xml", {}, 404),
    ("GET", "/api/schema/?format=xml", {"HTTP_ACCEPT": "text/html"}, 404),
    ("DELETE", "/api/answer/", {}, 405),
    ("GET", "/api/answer/", {"HTTP_ACCEPT": "application/xml"}, 406),
    ("GET", "/api/answer/?format=xml", {}, 404),
    ("POST", "/api/health/", {}, 405),
    ("GET", "/api/hf/question-answering", {}, 405),
    ("GET", "/api/docs/?format=xml", {"HTTP_ACCEPT": "application/xml"}, None),  # a page: 200
    ("GET", "/api", {}, 404),
    ("GET", "/api", {"HTTP_ACCEPT": "text/html"}, 404),
    ("POST", "/api", {}, 404),
]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(("method", "path", "headers", "status"), ENDPOINT_ERRORS)
def test_every_api_endpoints_errors_are_json(
    tiny_model_settings, settings, method, path, headers, status, debug
):
    """The review: errors from /api/schema/ came back as YAML (application/vnd.oai.openapi), and
    /api without its slash was an HTML 404 (DEBUG's technical page)."""
    settings.DEBUG = debug
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    response = client.generic(method, path, **headers)
    if status is None:
        assert response.status_code == 200
        return
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body.get("detail") or body.get("error")


# Each path, the methods it takes (its Allow header), and whether its errors are JSON.
VIEW_METHODS = {
    "/": ("GET, HEAD, POST", False),
    "/api/docs/": ("GET, HEAD, OPTIONS", True),
    "/api/schema/": ("GET, HEAD, OPTIONS", True),
    "/api/health/": ("GET, HEAD, OPTIONS", True),
    "/api/answer/": ("GET, POST, HEAD, OPTIONS", True),
    "/api/hf/question-answering": ("POST, OPTIONS", True),
    "/favicon.ico": ("GET, HEAD", False),
    "/static/qa/ask.js": ("GET, HEAD", False),
}


@pytest.mark.parametrize("method", UNSAFE_METHODS + ["GET"])
@pytest.mark.parametrize("path", VIEW_METHODS)
def test_a_method_a_view_does_not_take_is_a_405_before_csrf(tiny_model_settings, path, method):
    """The review: POST to /api/docs/ was a 403 (CSRF runs before the method check). Every
    method a view has no handler for is a 405 with Allow, CSRF token or not (JSON under /api/)."""
    allow, json_errors = VIEW_METHODS[path]
    if method in allow.split(", "):
        return  # taken: CSRF (or the view) decides
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    response = client.generic(method, path)
    assert response.status_code == 405
    assert response["Allow"] == allow
    if json_errors:
        assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_the_browsable_api_still_shows_its_own_errors_as_a_page(
    client, tiny_model_settings, settings, debug
):
    settings.DEBUG = debug
    response = client.post("/api/answer/", {"question": "Who?"}, HTTP_ACCEPT="text/html")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "This field is required." in response.content.decode()


def test_errors_outside_the_api_stay_pages(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- the health check answers any Host ----------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["10.0.1.85", "10.0.1.85:8080", "[fd00::1]:80", "evil.example", ""]
)
@pytest.mark.parametrize("path", ["/api/health/", "/api/health"])
def test_health_answers_any_host_in_json_with_the_security_headers(
    client, tiny_model_settings, host, path
):
    """A load balancer checks its targets by IP address; health holds nothing built from Host.
    With or without the trailing slash (the review: /api/health with an IP Host was a 400)."""
    for accept in ["application/json", "text/html", "text/plain"]:
        response = client.get(path, HTTP_HOST=host, HTTP_ACCEPT=accept)
        assert response.status_code == 200, (host, accept)
        assert response["Content-Type"] == "application/json"
        assert response.json()["model"] == Path(tiny_model_settings.QA_MODEL).name
        assert response.headers.get("Content-Security-Policy") == POLICY
    assert client.head(path, HTTP_HOST=host).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/"),
        ("get", "/api/answer/"),
        ("get", "/api/schema/"),
        ("post", "/api/health/"),
        ("get", "/api/health//"),
        ("get", "/api/health/x"),
        ("get", "/api/healthx"),
    ],
)
def test_every_other_request_keeps_the_host_check(client, method, path):
    response = getattr(client, method)(path, HTTP_HOST="10.0.1.85")
    assert response.status_code == 400


# --- nothing dynamic is cached -------------------------------------------------------------------

STATIC = {"favicon", "static file", "DRF static file", "Swagger UI static file"}


def test_every_dynamic_response_says_no_store_and_static_files_keep_their_caching(
    every_response, client, monkeypatch
):
    """CloudFront compresses only under a cache policy that may cache (docs/lambda.md, "Caching and
    compression"):
    every response but a static file's forbids it, errors and the browsable API included."""
    responses = dict(every_response)
    monkeypatch.setattr(services, "answer_questions", crash)
    responses["500 page"] = Client(raise_request_exception=False).post("/", KIT_HO)
    responses["500 JSON"] = Client(raise_request_exception=False).post(
        "/api/answer/", json.dumps(KIT_HO), content_type="application/json"
    )
    assert STATIC < set(responses)
    for name, response in responses.items():
        if name in STATIC:
            assert response["Cache-Control"] == "max-age=60, public", name  # WhiteNoise's
        else:
            assert response["Cache-Control"] == "no-store", (name, response.status_code)
    assert client.get("/static/no/such/file.js")["Cache-Control"] == "no-store"


# --- requests that bypass the proxy --------------------------------------------------------------


@pytest.fixture
def behind_a_proxy(tiny_model_settings):
    tiny_model_settings.QA_PROXY_SECRET = "new-secret,old-secret"
    return tiny_model_settings


# (what, method, path, Accept): every kind of request, refused alike without the secret
BYPASSES = [
    ("page", "get", "/", "text/html"),
    ("form", "post", "/", "text/html"),
    ("answer", "post", "/api/answer/", "application/json"),
    ("HF shape", "post", "/api/hf/question-answering/", "application/json"),
    ("browsable API", "get", "/api/answer/", "text/html"),
    ("health", "get", "/api/health/", "application/json"),
    ("schema", "get", "/api/schema/", "application/vnd.oai.openapi"),
    ("static file", "get", "/static/qa/ask.js", "*/*"),
    ("favicon", "get", "/favicon.ico", "*/*"),
    ("no such page", "get", "/no/such/page/", "text/html"),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "accept"), BYPASSES, ids=[bypass[0] for bypass in BYPASSES]
)
@pytest.mark.parametrize("sent", [None, "", "a guess", "new-secret,old-secret", "NEW-SECRET"])
def test_without_the_proxys_secret_every_request_is_refused(
    client, behind_a_proxy, what, method, path, accept, sent
):
    headers = {"HTTP_ACCEPT": accept} | ({} if sent is None else {"HTTP_X_ORIGIN_VERIFY": sent})
    response = getattr(client, method)(path, **headers)
    assert response.status_code == 403
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Security-Policy"] == POLICY
    if path.startswith("/api/"):
        assert response.json() == {"detail": "Permission denied."}
    else:
        assert "You are not allowed to do this here." in response.content.decode()


@pytest.mark.parametrize("secret", ["new-secret", "old-secret"])
def test_with_either_secret_of_a_rotation_requests_are_served(client, behind_a_proxy, secret):
    """During a rotation the function accepts the new secret and the old one."""
    verified = {"HTTP_X_ORIGIN_VERIFY": secret}
    assert client.get("/", **verified).status_code == 200
    assert client.get("/api/health/", **verified).status_code == 200
    assert client.get("/static/qa/ask.js", **verified).status_code == 200
    answer = client.post(
        "/api/answer/", json.dumps(KIT_HO), content_type="application/json", **verified
    )
    assert answer.status_code == 200 and answer.json()["answer"]


def test_without_a_proxy_secret_nothing_is_refused(client, tiny_model_settings):
    assert tiny_model_settings.QA_PROXY_SECRET == ""
    assert client.get("/", HTTP_X_ORIGIN_VERIFY="anything").status_code == 200
    assert client.get("/api/health/").status_code == 200
