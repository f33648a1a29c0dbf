"""The WSGI environ of AWS events: PEP 3333 strings, the client address AWS vouches for, and the
path prefix, for each event shape (HTTP API v2 and function URLs, REST API v1, ALB)."""

import pytest
from apig_wsgi import get_environ_v1, get_environ_v2
from django.core.handlers.wsgi import WSGIRequest

from qasite.lambda_environ import (
    client_address,
    correct_environ,
    event_shape,
    prefix_and_path,
    wsgi_path,
    wsgi_str,
)
from tests.lambda_events import KINDS, make_event


def event(kind: str, path: str = "/", **headers) -> dict:
    return make_event(kind, path=path, headers=headers)


def with_context(kind: str, site_path: str = "/", **context) -> dict:
    """An event for site_path, with these requestContext fields changed."""
    changed = event(kind, site_path)
    changed["requestContext"] = {**changed["requestContext"], **context}
    return changed


@pytest.mark.parametrize(
    ("name", "shape"),
    [("http-api-v2", "v2"), ("function-url", "v2"), ("rest-api-v1", "v1"), ("alb", "alb")],
)
def test_event_shape(name, shape):
    assert event_shape(event(name)) == shape


# --- strings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain ascii", "plain ascii"),
        ("café", "caf\xc3\xa9"),
        ("東京", "\xe6\x9d\xb1\xe4\xba\xac"),
        ("😀", "\xf0\x9f\x98\x80"),
        ("\ud800", "\xed\xa0\x80"),  # a lone surrogate: bytes Django reads as invalid UTF-8
    ],
)
def test_wsgi_str_is_the_utf8_bytes_one_character_each(text, expected):
    assert wsgi_str(text) == expected
    assert all(ord(character) < 256 for character in wsgi_str(text))


# (path as an event carries it, PATH_INFO): decoded and percent-encoded give the same bytes.
PATHS = [
    ("/", "/"),
    ("/€", "/\xe2\x82\xac"),
    ("/%E2%82%AC", "/\xe2\x82\xac"),
    ("/東京", "/\xe6\x9d\xb1\xe4\xba\xac"),
    ("/%E6%9D%B1%E4%BA%AC", "/\xe6\x9d\xb1\xe4\xba\xac"),
    ("/café", "/caf\xc3\xa9"),  # not the byte 0xE9, as apig-wsgi had it
    ("/caf%C3%A9", "/caf\xc3\xa9"),
    ("/€%E2%82%AC", "/\xe2\x82\xac\xe2\x82\xac"),  # a mix
    ("/%FF", "/\xff"),  # not UTF-8: Django re-escapes it
    ("/a%2Fb", "/a/b"),
    ("/100%", "/100%"),
    ("/%zz", "/%zz"),
    ("/a b+c", "/a b+c"),
]


@pytest.mark.parametrize(("path", "path_info"), PATHS)
def test_wsgi_path(path, path_info):
    assert wsgi_path(path) == path_info


# --- the client's address ---------------------------------------------------------------------

FORGED = "10.9.9.9, 192.0.2.1"  # what a client may write in X-Forwarded-For


def alb_with_multi_value_headers(*forwarded_for: str) -> dict:
    alb = event("alb")
    alb["multiValueHeaders"] = {name: [value] for name, value in alb.pop("headers").items()}
    alb["multiValueHeaders"]["x-forwarded-for"] = list(forwarded_for)
    return alb


def forwarded_for(kind: str, value: str) -> dict:
    return event(kind, **{"X-Forwarded-For": value})


CLIENT_ADDRESSES = [
    # (what, event, the address that counts)
    # (events/http-api-v2.json came through CloudFront: its sourceIp is the edge's)
    ("HTTP API: sourceIp", forwarded_for("http-api-v2", FORGED), "130.176.98.71"),
    ("function URL: sourceIp", forwarded_for("function-url", FORGED), "203.0.113.7"),
    ("REST API: identity.sourceIp", forwarded_for("rest-api-v1", FORGED), "198.51.100.21"),
    ("REST API without identity", with_context("rest-api-v1", identity=None), ""),
    ("ALB: the entry it appended", forwarded_for("alb", f"{FORGED}, 203.0.113.7"), "203.0.113.7"),
    ("ALB: IPv6", forwarded_for("alb", "2001:db8::1"), "2001:db8::1"),
    (
        "ALB, multi-value headers",
        alb_with_multi_value_headers(FORGED, "10.0.0.1, 203.0.113.9"),
        "203.0.113.9",
    ),
    (
        "ALB health check: no X-Forwarded-For",
        {**event("alb"), "headers": {"user-agent": "ELB-HealthChecker/2.0"}},
        "",
    ),
]


@pytest.mark.parametrize(
    ("what", "aws_event", "address"), CLIENT_ADDRESSES, ids=[case[0] for case in CLIENT_ADDRESSES]
)
def test_client_address_is_the_one_aws_vouches_for(what, aws_event, address):
    assert client_address(aws_event) == address


def base_path_mapped(base: str, site_path: str) -> dict:
    """A REST API event through a custom domain whose base path mapping is ``base``: ``path``
    holds the base path too, the matched resource (``/{proxy+}``, or ``/``) only the site's."""
    mapped = with_context("rest-api-v1", base + site_path, path=base + site_path)
    if site_path.strip("/"):
        mapped["pathParameters"] = {"proxy": site_path.lstrip("/")}
    else:
        mapped["resource"], mapped["pathParameters"] = "/", None
    return mapped


# --- the path prefix --------------------------------------------------------------------------

PREFIXES = [
    # (what, event, (prefix, the site's path))
    ("REST API stage URL", with_context("rest-api-v1", "/", path="/prod/"), ("/prod", "/")),
    (
        "REST API stage URL without the slash",
        with_context("rest-api-v1", "/", path="/prod"),
        ("/prod", "/"),
    ),
    (
        "REST API stage URL, a page",
        with_context("rest-api-v1", "/api/", path="/prod/api/"),
        ("/prod", "/api/"),
    ),
    (
        "REST API, custom domain mapped to the root",
        with_context("rest-api-v1", "/api/", path="/api/"),
        ("", "/api/"),
    ),
    (
        "REST API, a base path and a stage",
        with_context("rest-api-v1", "/api/", path="/v1/prod/api/"),
        ("/v1/prod", "/api/"),
    ),
    (
        "REST API, custom domain with a base path mapping",
        base_path_mapped("/qa", "/api/"),
        ("/qa", "/api/"),
    ),
    (
        "REST API, custom domain with a base path mapping, its root",
        base_path_mapped("/qa", "/"),
        ("/qa", "/"),
    ),
    (
        "REST API, custom domain with a base path mapping, its root without the slash",
        base_path_mapped("/qa", ""),
        ("/qa", "/"),
    ),
    (
        "REST API, custom domain with a base path mapping and no stage",
        base_path_mapped("/qa/prod", "/api/東京"),
        ("/qa/prod", "/api/東京"),
    ),
    (
        "REST API, non-ASCII",
        with_context("rest-api-v1", "/東京", path="/prod/%E6%9D%B1%E4%BA%AC"),
        ("/prod", "/東京"),
    ),
    ("REST API, no requestContext.path", with_context("rest-api-v1", "/", path=None), ("", "/")),
    ("HTTP API, $default stage", event("http-api-v2", "/api/"), ("", "/api/")),
    (
        "HTTP API, named stage",
        with_context("http-api-v2", "/prod/api/", stage="prod"),
        ("/prod", "/api/"),
    ),
    (
        "HTTP API, named stage's root",
        with_context("http-api-v2", "/prod", stage="prod"),
        ("/prod", "/"),
    ),
    (
        "HTTP API, a path that only starts like the stage",
        with_context("http-api-v2", "/production/", stage="prod"),
        ("", "/production/"),
    ),
    ("function URL", event("function-url", "/api/health/"), ("", "/api/health/")),
    ("ALB", event("alb", "/prod/"), ("", "/prod/")),
]


@pytest.mark.parametrize(
    ("what", "aws_event", "expected"), PREFIXES, ids=[case[0] for case in PREFIXES]
)
def test_prefix_and_path(what, aws_event, expected):
    assert prefix_and_path(aws_event) == expected


# --- the whole environ, as Django reads it ----------------------------------------------------


def django_request(aws_event: dict) -> WSGIRequest:
    """The request Django builds from apig-wsgi's environ once corrected."""
    if event_shape(aws_event) == "v2":
        environ = get_environ_v2(aws_event, None)
    else:
        rest_api = event_shape(aws_event) == "v1"
        environ = get_environ_v1(aws_event, None, encode_query_params=rest_api)
    correct_environ(environ)
    return WSGIRequest(environ)


def unicode_request(kind: str, path: str) -> dict:
    """GET path?q=東京&x=€ (the second percent-encoded), with a header value outside Latin-1."""
    headers = {"X-Name": "東京 café", "X-Forwarded-For": FORGED}
    return make_event(kind, path=path, query="q=東京&x=%E2%82%AC", headers=headers)


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("path", ["/東京/€", "/%E6%9D%B1%E4%BA%AC/%E2%82%AC"])
def test_django_reads_unicode_paths_queries_and_headers(name, path):
    request = django_request(unicode_request(name, path))
    assert request.path_info == "/東京/€"
    assert request.GET.dict() == {"q": "東京", "x": "€"}
    # Header values stay "bytes as str", as from any WSGI server: the client's UTF-8, undone.
    assert request.headers["X-Name"].encode("latin-1").decode() == "東京 café"
    assert request.META["REMOTE_ADDR"] == client_address(unicode_request(name, path))
    if name == "rest-api-v1":
        assert (request.META["SCRIPT_NAME"], request.path) == ("/prod", "/prod/東京/€")


def test_scheme_is_http_or_https_only():
    for proto, scheme in [("https", "https"), ("http", "http"), ("東京", "http"), ("ws", "http")]:
        request = django_request(event("alb", **{"X-Forwarded-Proto": proto}))
        assert request.scheme == scheme
