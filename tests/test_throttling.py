"""Questions are rate limited per client address, on the API and the form together, and a client
cannot choose the address it is counted as."""

import json

import pytest
from rest_framework.exceptions import Throttled

from qa.reader.examples import KIT_HO
from qa.throttling import QuestionRateThrottle, charge_questions, client_ip

SECRET = "s3cret-only-cloudfront-knows"


def ask_api(client, **headers):
    return client.post(
        "/api/answer/", json.dumps(KIT_HO), content_type="application/json", **headers
    )


def ask_form(client, **headers):
    return client.post("/", {**KIT_HO, "top_k": 1}, **headers)


def ask_batch(client, size: int, **headers):
    return client.post(
        "/api/answer/", json.dumps([KIT_HO] * size), content_type="application/json", **headers
    )


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
    for path, accept in [
        ("/", "text/html"),
        ("/api/answer/", "application/json"),
        ("/api/answer/", "text/html"),
        ("/api/health/", "application/json"),
    ]:
        assert client.get(path, HTTP_ACCEPT=accept).status_code == 200, path


def test_each_address_has_its_own_budget(client, three_a_minute):
    for _ in range(3):
        ask_api(client, REMOTE_ADDR="203.0.113.1")
    assert ask_api(client, REMOTE_ADDR="203.0.113.1").status_code == 429
    assert ask_api(client, REMOTE_ADDR="203.0.113.2").status_code == 200


def test_off_means_unlimited(client, tiny_model_settings):
    tiny_model_settings.QA_THROTTLE_RATE = None
    assert {ask_api(client).status_code for _ in range(5)} == {200}


# --- a batch of N questions costs N ----------------------------------------------------------


@pytest.fixture
def five_a_minute(tiny_model_settings, manual_clock, monkeypatch):
    tiny_model_settings.QA_THROTTLE_RATE = "5/min"
    monkeypatch.setattr(QuestionRateThrottle, "timer", manual_clock)
    return manual_clock


def test_a_batch_of_n_costs_n_and_a_refused_batch_costs_nothing(client, five_a_minute):
    clock = five_a_minute
    assert ask_batch(client, 3).status_code == 200  # 2 left
    clock.advance(30)
    refused = ask_batch(client, 3)
    assert refused.status_code == 429
    # Two of the three questions from 0 s must expire: at 60 s, 30 s from now.
    assert refused["Retry-After"] == "30"
    assert "asks 3 questions" in refused.json()["detail"]
    assert ask_batch(client, 2).status_code == 200  # the refused batch took nothing: 0 left
    assert ask_api(client).status_code == 429
    clock.advance(30.5)  # the first batch has expired: 3 left
    assert ask_batch(client, 3).status_code == 200
    assert ask_form(client).status_code == 429  # the form shares the budget


def test_a_batch_larger_than_the_whole_rate_never_fits_and_says_so(client, tiny_model_settings):
    """The issue's case: at 2/min, three batches of 32 answered 64 questions."""
    tiny_model_settings.QA_THROTTLE_RATE = "2/min"
    for _ in range(3):
        response = ask_batch(client, 32)
        assert response.status_code == 429
        assert "Retry-After" not in response  # waiting would not help
        detail = response.json()["detail"]
        assert "32 questions" in detail and "at most 2 at a time" in detail
    assert [ask_api(client).status_code for _ in range(3)] == [200, 200, 429]


def test_each_refused_or_invalid_request_costs_one(client, three_a_minute):
    """Refused before the model (the body is not read before the limit is checked): one."""
    bad = client.post("/api/answer/", "{", content_type="application/json")
    assert bad.status_code == 400
    invalid_batch = client.post(
        "/api/answer/", json.dumps([KIT_HO, {"question": "?"}]), content_type="application/json"
    )
    assert invalid_batch.status_code == 400
    assert ask_api(client).status_code == 200
    assert ask_api(client).status_code == 429


@pytest.mark.parametrize(
    ("spent", "count", "outcome"),
    [
        (0, 3, "charged"),
        (1, 2, "charged"),
        (2, 1, "charged"),
        (0, 0, "charged"),
        (1, 3, "throttled"),
        (2, 2, "throttled"),
        (3, 1, "throttled"),
        (0, 4, "never"),
    ],
)
def test_charge_questions(rf, three_a_minute, spent, count, outcome):
    """charge_questions(request, n), as any view taking batches calls it: n in all, the one
    the throttle took at the door included."""
    earlier = rf.post("/api/answer/")
    assert QuestionRateThrottle().spend(earlier, spent)
    request = rf.post("/api/answer/")
    assert QuestionRateThrottle().allow_request(request, None) == (spent < 3)
    if outcome == "charged":
        charge_questions(request, count)
        assert request.questions_charged == count
        assert QuestionRateThrottle().spend(request, 3 - spent - count)
        assert not QuestionRateThrottle().spend(request, 1)
        return
    with pytest.raises(Throttled) as refused:
        charge_questions(request, count)
    assert (refused.value.wait is None) == (outcome == "never")
    assert QuestionRateThrottle().spend(request, 3 - spent)  # the refused request took nothing


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
    return {
        "REMOTE_ADDR": EDGE,
        "HTTP_CLOUDFRONT_VIEWER_ADDRESS": viewer,
        "HTTP_X_ORIGIN_VERIFY": SECRET,
    }


def test_behind_cloudfront_each_viewer_has_its_own_budget(client, behind_cloudfront):
    for port in range(3):
        assert ask_api(client, **via_cloudfront(f"203.0.113.1:{40000 + port}")).status_code == 200
    assert ask_api(client, **via_cloudfront("203.0.113.1:50000")).status_code == 429
    assert ask_api(client, **via_cloudfront("203.0.113.2:50000")).status_code == 200
    assert ask_form(client, **via_cloudfront("203.0.113.2:50001")).status_code == 200


def test_bypassing_cloudfront_is_refused_and_spends_no_viewers_budget(client, behind_cloudfront):
    """API Gateway's own URL is public: a direct caller may send any CloudFront-Viewer-Address,
    but without CloudFront's secret it is refused (qasite.middleware.ProxyOnlyMiddleware)."""
    direct = "198.51.100.66"
    for _ in range(5):
        forged = {"HTTP_CLOUDFRONT_VIEWER_ADDRESS": "10.0.0.1:2", "HTTP_X_ORIGIN_VERIFY": "?"}
        assert ask_api(client, REMOTE_ADDR=direct, **forged).status_code == 403
    victim = via_cloudfront("10.0.0.1:2")
    assert [ask_api(client, **victim).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_without_the_secret_the_viewer_header_is_not_believed(rf, behind_cloudfront):
    """The rate limit's own line, should a request without the secret reach it."""
    request = rf.get(
        "/",
        REMOTE_ADDR="198.51.100.66",
        HTTP_CLOUDFRONT_VIEWER_ADDRESS="10.0.0.1:2",
        HTTP_X_ORIGIN_VERIFY="?",
    )
    assert client_ip(request) == "198.51.100.66"
    request = rf.get("/", **via_cloudfront("10.0.0.1:2"))
    assert client_ip(request) == "10.0.0.1"


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
    request = rf.get(
        "/",
        REMOTE_ADDR="192.0.2.1",
        HTTP_X_FORWARDED_FOR="1.2.3.4",
        HTTP_X_REAL_IP="1.2.3.5",
        HTTP_CLOUDFRONT_VIEWER_ADDRESS="1.2.3.6:1",
    )
    assert client_ip(request) == "192.0.2.1"
