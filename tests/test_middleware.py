"""Security headers on every kind of response, and nothing we serve needs the CSP relaxed."""

import json
import re

import pytest
from django.test import Client

from qa import services

KIT_HO = {"question": "What is my name?", "context": "I'm Kit-Ho Mak. I come from Hong Kong."}
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
        "static file": client.get("/static/qa/ask.js"),
        "DRF static file": client.get("/static/rest_framework/js/default.js"),
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

    def fail(*, requests):
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
    assert {"page", "browsable API", "404 page", "CSRF failure page", "500 page"} <= set(html)
    for name, text in html.items():
        for what, pattern in INLINE.items():
            assert not pattern.search(text), f"{what} in the {name}: {pattern.search(text)}"


# --- the health check answers any Host ----------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["10.0.1.85", "10.0.1.85:8080", "[fd00::1]:80", "evil.example", ""]
)
def test_health_answers_any_host_in_json_with_the_security_headers(
    client, tiny_model_settings, host
):
    """A load balancer checks its targets by IP address; health holds nothing built from Host."""
    for accept in ["application/json", "text/html", "text/plain"]:
        response = client.get("/api/health/", HTTP_HOST=host, HTTP_ACCEPT=accept)
        assert response.status_code == 200, (host, accept)
        assert response["Content-Type"] == "application/json"
        assert response.json()["model"] == tiny_model_settings.QA_MODEL_NAME
        assert response.headers.get("Content-Security-Policy") == POLICY
    assert client.head("/api/health/", HTTP_HOST=host).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/"), ("get", "/api/answer/"), ("get", "/api/schema/"), ("post", "/api/health/"),
     ("get", "/api/health"), ("get", "/api/health/x")],
)
def test_every_other_request_keeps_the_host_check(client, method, path):
    response = getattr(client, method)(path, HTTP_HOST="10.0.1.85")
    assert response.status_code == 400
