"""Questions are rate limited per client address, on the API and the form together, and a client
cannot choose the address it is counted as."""

import json

import pytest

from qa.throttling import client_ip

KIT_HO = {"question": "What is my name?", "context": "I'm Kit-Ho Mak. I come from Hong Kong."}
SECRET = "s3cret-only-cloudfront-knows"


def ask_api(client, **headers):
    return client.post(
        "/api/answer/", json.dumps(KIT_HO), content_type="application/json", **headers
    )


def ask_form(client, **headers):
    return client.post("/", {**KIT_HO, "top_k": 1}, **headers)


@pytest.fixture
def three_a_minute(tiny_model_settings):
    tiny_model_settings.QA_THROTTLE_RATE = "3/min"
    return tiny_model_settings


# --- the limit --------------------------------------------------------------------------------


def test_api_over_the_rate_is_a_429_with_retry_after(client, three_a_minute):
    assert [ask_api(client).status_code for _ in range(3)] == [200, 200, 200]
    response = ask_api(client)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"]


def test_form_over_the_rate_is_a_friendly_429_page(client, three_a_minute):
    assert [ask_form(client).status_code for _ in range(3)] == [200, 200, 200]
    response = ask_form(client)
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    html = response.content.decode()
    assert "Too many questions" in html and f"Please wait {wait} second" in html
    assert 'href="/"' in html


def test_api_and_form_share_one_budget_and_reading_is_free(client, three_a_minute):
    assert ask_api(client).status_code == 200
    assert ask_form(client).status_code == 200
    assert ask_api(client).status_code == 200
    assert ask_form(client).status_code == 429
    assert ask_api(client).status_code == 429
    for path, accept in [("/", "text/html"), ("/api/answer/", "application/json"),
                         ("/api/answer/", "text/html"), ("/api/health/", "application/json")]:
        assert client.get(path, HTTP_ACCEPT=accept).status_code == 200, path


def test_each_address_has_its_own_budget(client, three_a_minute):
    for _ in range(3):
        ask_api(client, REMOTE_ADDR="203.0.113.1")
    assert ask_api(client, REMOTE_ADDR="203.0.113.1").status_code == 429
    assert ask_api(client, REMOTE_ADDR="203.0.113.2").status_code == 200


def test_off_means_unlimited(client, tiny_model_settings):
    tiny_model_settings.QA_THROTTLE_RATE = None
    assert {ask_api(client).status_code for _ in range(5)} == {200}


# --- spoofing ---------------------------------------------------------------------------------


def test_x_forwarded_for_neither_escapes_the_limit_nor_frames_another_address(
    client, three_a_minute
):
    attacker, victim = "198.51.100.66", "203.0.113.7"
    statuses = [
        ask_api(client, REMOTE_ADDR=attacker, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, {victim}")
        for n in range(5)
    ]
    statuses = [response.status_code for response in statuses]
    assert statuses == [200, 200, 200, 429, 429]  # a new X-Forwarded-For each time: no escape
    assert ask_api(client, REMOTE_ADDR=victim).status_code == 200  # and the victim is untouched


@pytest.fixture
def behind_cloudfront(three_a_minute):
    three_a_minute.QA_CLIENT_IP_HEADER = "CloudFront-Viewer-Address"
    three_a_minute.QA_PROXY_SECRET = SECRET
    return three_a_minute


EDGE = "130.176.1.1"  # one CloudFront edge: the REMOTE_ADDR of all its viewers


def via_cloudfront(viewer: str) -> dict:
    return {"REMOTE_ADDR": EDGE, "HTTP_CLOUDFRONT_VIEWER_ADDRESS": viewer,
            "HTTP_X_ORIGIN_VERIFY": SECRET}


def test_behind_cloudfront_each_viewer_has_its_own_budget(client, behind_cloudfront):
    for port in range(3):
        assert ask_api(client, **via_cloudfront(f"203.0.113.1:{40000 + port}")).status_code == 200
    assert ask_api(client, **via_cloudfront("203.0.113.1:50000")).status_code == 429
    assert ask_api(client, **via_cloudfront("203.0.113.2:50000")).status_code == 200
    assert ask_form(client, **via_cloudfront("203.0.113.2:50001")).status_code == 200


def test_bypassing_cloudfront_the_viewer_header_is_not_believed(client, behind_cloudfront):
    """API Gateway's own URL is public: a direct caller may send any CloudFront-Viewer-Address,
    but without CloudFront's secret it is counted by its own address."""
    direct = "198.51.100.66"
    for n in range(5):
        forged = {"HTTP_CLOUDFRONT_VIEWER_ADDRESS": f"10.0.0.{n}:1", "HTTP_X_ORIGIN_VERIFY": "?"}
        response = ask_api(client, REMOTE_ADDR=direct, **forged)
        assert response.status_code == (200 if n < 3 else 429)
    victim = via_cloudfront("10.0.0.1:2")
    assert ask_api(client, **victim).status_code == 200


# --- who a request counts against -------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({}, "127.0.0.1"),
        ({"HTTP_X_FORWARDED_FOR": "1.2.3.4"}, "127.0.0.1"),
        ({"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}, "2001:db8:1:2::/64"),
        ({"HTTP_CLOUDFRONT_VIEWER_ADDRESS": "203.0.113.9:46532"}, "203.0.113.9"),
        ({"HTTP_CLOUDFRONT_VIEWER_ADDRESS": "2001:db8::5:1:2:3:4:443"}, "2001:db8:0:5::/64"),
        ({"HTTP_CLOUDFRONT_VIEWER_ADDRESS": "[2001:db8::1]:443"}, "2001:db8::/64"),
        ({"HTTP_CLOUDFRONT_VIEWER_ADDRESS": "203.0.113.9"}, "127.0.0.1"),  # no port: malformed
        ({"HTTP_CLOUDFRONT_VIEWER_ADDRESS": "1.2.3.4:1, 5.6.7.8:2"}, "127.0.0.1"),
        ({"HTTP_CLOUDFRONT_VIEWER_ADDRESS": "not-an-address:80"}, "127.0.0.1"),
    ],
)
def test_client_ip_with_a_trusted_header_and_no_secret(rf, settings, meta, expected):
    settings.QA_CLIENT_IP_HEADER = "CloudFront-Viewer-Address"
    settings.QA_PROXY_SECRET = ""
    assert client_ip(rf.get("/", **meta)) == expected


def test_client_ip_ignores_every_header_by_default(rf, settings):
    assert settings.QA_CLIENT_IP_HEADER == "" and settings.QA_PROXY_SECRET == ""
    request = rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="1.2.3.4",
                     HTTP_X_REAL_IP="1.2.3.5", HTTP_CLOUDFRONT_VIEWER_ADDRESS="1.2.3.6:1")
    assert client_ip(request) == "192.0.2.1"
