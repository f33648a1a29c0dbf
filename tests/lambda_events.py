"""Real-shaped Lambda events (events/) changed to carry a request, and what the handler answers.
Standard library only: a runtime tree's own Python (3.12, no pytest) runs events made here."""

import base64
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

EVENTS = Path(__file__).resolve().parent.parent / "events"
KINDS = ["http-api-v2", "rest-api-v1", "alb", "function-url"]
V2_KINDS = {"http-api-v2", "function-url"}
# The CloudFront distribution the events come through, and a CSRF secret tests send as cookie
# and form token.
CLOUDFRONT = "https://d111111abcdef8.cloudfront.net"
CSRF_SECRET = "k" * 32
# The headers of the HTML form posted by a browser on the site (through CloudFront).
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Origin": CLOUDFRONT}


def make_event(
    kind, method="GET", path="/", *, query="", body=None, headers=None, cookies=None, b64=False
):
    """One of the events/ fixtures, changed to carry another request.

    ``query`` is the query string as the client wrote it: HTTP API and function URLs pass it on
    in rawQueryString, a REST API decodes it into parameters, an ALB splits it as it is.
    """
    event = json.loads((EVENTS / f"{kind}.json").read_text())
    headers = {name.lower(): value for name, value in (headers or {}).items()}
    if body is not None:
        raw = body.encode("utf-8", "surrogatepass")  # a lone surrogate: as long as U+FFFD
        headers["content-length"] = str(len(raw))
        event["body"] = base64.b64encode(raw).decode() if b64 else body
        event["isBase64Encoded"] = b64
    if kind in V2_KINDS:
        event["rawQueryString"] = query
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["cookies"] = [f"{name}={value}" for name, value in (cookies or {}).items()]
    else:
        event["path"] = path
        event["httpMethod"] = method
        if kind == "rest-api-v1":  # served on the stage's URL, https://…/prod/, by /{proxy+}
            event["requestContext"]["path"] = f"/prod{path}"
            event["pathParameters"] = {"proxy": path.lstrip("/")}
            pairs = parse_qsl(query, keep_blank_values=True)
            event["queryStringParameters"] = dict(pairs) or None
            event["multiValueQueryStringParameters"] = {
                name: [v for n, v in pairs if n == name] for name, _ in pairs
            } or None
        elif query:
            event["queryStringParameters"] = dict(
                pair.partition("=")[::2] for pair in query.split("&")
            )
        if cookies:
            headers["cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    for key in ("headers", "multiValueHeaders"):
        if key in event:
            kept = {k: v for k, v in event[key].items() if k.lower() not in headers}
            added = headers if key == "headers" else {k: [v] for k, v in headers.items()}
            event[key] = {**kept, **added}
    return event


def api_post(kind, request, *, headers=None, b64=False):
    """One of the events/ fixtures, changed to POST ``request`` (a question, a batch, any JSON
    value) as JSON to the API, /api/answer/; ``headers`` are sent beside its Content-Type."""
    return make_event(
        kind,
        "POST",
        "/api/answer/",
        body=json.dumps(request),
        headers={"Content-Type": "application/json", **(headers or {})},
        b64=b64,
    )


def form_post(kind, fields, *, token=CSRF_SECRET, origin=CLOUDFRONT, charset=None):
    """One of the events/ fixtures, changed to POST the HTML form's ``fields`` to / as a browser
    on ``origin`` does: with the CSRF cookie, and ``token`` (unless None) as the form's CSRF token;
    url-encoded in ``charset`` (declared in the Content-Type) when one is given, else UTF-8."""
    form = {**fields, **({"csrfmiddlewaretoken": token} if token is not None else {})}
    content_type = "application/x-www-form-urlencoded"
    if charset:
        content_type += f"; charset={charset}"
    return make_event(
        kind,
        "POST",
        "/",
        body=urlencode(form, encoding=charset),
        cookies={"csrftoken": CSRF_SECRET},
        headers={"Content-Type": content_type, "Origin": origin},
    )


def header(response, name):
    """A response header, whichever of headers / multiValueHeaders the event shape uses."""
    for key, value in response.get("headers", {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in response.get("multiValueHeaders", {}).items():
        if key.lower() == name.lower():
            return values[0]
    return None


def set_cookies(response) -> list[str]:
    if "cookies" in response:
        return response["cookies"]
    values = [
        v
        for k, vs in response.get("multiValueHeaders", {}).items()
        if k.lower() == "set-cookie"
        for v in vs
    ]
    return values or [
        v for k, v in response.get("headers", {}).items() if k.lower() == "set-cookie"
    ]


def body_of(response) -> str:
    body = response.get("body", "")
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body
