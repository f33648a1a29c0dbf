"""events/ holds what this stack really delivers: the HTTP API events of requests through
CloudFront carry only what serverless.yml's origin request policy forwards, CloudFront's own
headers and API Gateway's; a request straight to API Gateway carries no origin secret and is
refused."""

import json

import pytest
import yaml

from tests.helpers import REPO
from tests.lambda_events import CLOUDFRONT, EVENTS, body_of, header

THROUGH_CLOUDFRONT = {  # event: (status, Content-Type)
    "http-api-v2": (200, "text/html; charset=utf-8"),
    "http-api-v2-post-answer": (200, "application/json"),
    "http-api-v2-post-form": (200, "text/html; charset=utf-8"),
    "http-api-v2-get-static": (200, 'text/css; charset="utf-8"'),  # WhiteNoise's
    "http-api-v2-get-health": (200, "application/json"),
}
DIRECT = "http-api-v2-direct"
SECRET = "events-origin-secret"  # the events' X-Origin-Verify
# What CloudFront adds to every origin request, whatever the policies say (its developer guide,
# "Origin request policies"), and the viewer's Accept-Encoding as a cache policy with gzip and
# brotli normalises it; then what API Gateway adds.
CLOUDFRONT_ADDS = {
    "host",
    "user-agent",
    "via",
    "x-amz-cf-id",
    "x-forwarded-for",
    "accept-encoding",
    "content-length",
}
API_GATEWAY_ADDS = {"x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}


def load(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def distribution() -> dict:
    """What serverless.yml's CloudFront forwards: per behaviour, the viewer headers and cookies,
    and the origin's custom headers."""
    resources = yaml.safe_load((REPO / "serverless.yml").read_text())["resources"]["Resources"]
    config = resources["CloudFrontDistribution"]["Properties"]["DistributionConfig"]
    policy = resources["OriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]
    [origin] = config["Origins"]
    behaviours = {behaviour["PathPattern"]: behaviour for behaviour in config["CacheBehaviors"]}
    assert "OriginRequestPolicyId" not in behaviours["static/*"]
    return {
        "headers": {name.lower() for name in policy["HeadersConfig"]["Headers"]},
        "cookies": set(policy["CookiesConfig"]["Cookies"]),
        "custom": {h["HeaderName"].lower() for h in origin["OriginCustomHeaders"]},
    }


def test_every_event_file_is_json_and_the_set_is_complete():
    names = {path.stem for path in EVENTS.glob("*.json")}
    assert set(THROUGH_CLOUDFRONT) | {DIRECT, "keep-warm"} <= names
    for path in EVENTS.glob("*.json"):
        json.loads(path.read_text())


@pytest.mark.parametrize("name", THROUGH_CLOUDFRONT)
def test_through_cloudfront_an_event_carries_only_what_cloudfront_forwards(distribution, name):
    event = load(name)
    headers = set(event["headers"])
    static = name == "http-api-v2-get-static"  # static/* has no origin request policy
    forwarded = set() if static else distribution["headers"]
    assert headers <= forwarded | distribution["custom"] | CLOUDFRONT_ADDS | API_GATEWAY_ADDS
    assert "x-origin-verify" in headers and event["headers"]["x-origin-verify"] == SECRET
    assert ("cloudfront-viewer-address" in headers) is not static
    cookies = {cookie.partition("=")[0] for cookie in event.get("cookies", [])}
    assert cookies <= (set() if static else distribution["cookies"])
    assert event["headers"]["user-agent"] == event["requestContext"]["http"]["userAgent"]
    # API Gateway's client is CloudFront's edge, the last X-Forwarded-For entry.
    edge = event["headers"]["x-forwarded-for"].split(", ")[-1]
    assert event["requestContext"]["http"]["sourceIp"] == edge


def test_straight_to_api_gateway_an_event_has_no_secret_and_no_viewer_address():
    event = load(DIRECT)
    assert "x-origin-verify" not in event["headers"]
    assert "cloudfront-viewer-address" not in event["headers"]
    assert event["requestContext"]["http"]["sourceIp"] == event["headers"]["x-forwarded-for"]


@pytest.fixture
def as_deployed(tiny_model_settings):
    """Settings as serverless.yml gives them, with the events' secret."""
    settings = tiny_model_settings
    settings.ALLOWED_HOSTS = ["abc123defg.execute-api.eu-west-1.amazonaws.com"]
    settings.CSRF_TRUSTED_ORIGINS = [CLOUDFRONT]
    settings.QA_CLIENT_IP_HEADER = "CloudFront-Viewer-Address"
    settings.QA_PROXY_SECRET = SECRET
    return settings


@pytest.mark.parametrize(("name", "expected"), THROUGH_CLOUDFRONT.items())
def test_each_event_through_cloudfront_is_served(as_deployed, name, expected):
    from qasite import lambda_handler

    response = lambda_handler.handler(load(name), None)
    assert (response["statusCode"], header(response, "Content-Type")) == expected, body_of(response)
    if name == "http-api-v2-post-form":
        assert "<mark>" in body_of(response)
    if name == "http-api-v2-post-answer":
        answer = json.loads(body_of(response))
        context = json.loads(load(name)["body"])["context"]
        assert context[answer["start"] : answer["end"]] == answer["answer"]


def test_the_event_straight_to_api_gateway_is_refused(as_deployed):
    from qasite import lambda_handler

    response = lambda_handler.handler(load(DIRECT), None)
    assert response["statusCode"] == 403
    assert json.loads(body_of(response)) == {"detail": "Permission denied."}


def test_the_events_count_against_the_viewer_not_cloudfronts_edge(as_deployed):
    """The answer and the form come from one viewer through one edge: at one question a minute,
    the second is refused; a request from another viewer through the same edge is not."""
    from qasite import lambda_handler

    as_deployed.QA_THROTTLE_RATE = "1/min"
    assert lambda_handler.handler(load("http-api-v2-post-answer"), None)["statusCode"] == 200
    assert lambda_handler.handler(load("http-api-v2-post-form"), None)["statusCode"] == 429
    other = load("http-api-v2-post-answer")
    other["headers"]["cloudfront-viewer-address"] = "203.0.113.8:40000"
    assert lambda_handler.handler(other, None)["statusCode"] == 200
