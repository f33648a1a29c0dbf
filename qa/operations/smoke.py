"""A smoke test of a running qasite over HTTP, as a browser and an API client see it.

Six checks, in order: the page (200, HTML, a strict Content-Security-Policy), its compression,
health (``ready``, waiting while the model is ``idle`` or ``loading``), one answer, one 4xx, and
the form's CSRF round trip (the page's cookie and token, posted back as a browser would); for an
https:// site a seventh, that the page over plain HTTP redirects to HTTPS. Each gives a Check:
PASS, FAIL or SKIP, and one line saying why.

Standard library only (urllib), and nothing of Django: from a bare checkout, with any Python
3.11+ and no virtualenv, ``python3 -m qa.operations.smoke https://dxxxx.cloudfront.net``; from a dev
environment or the runtime tree, ``python manage.py smoke ...`` (qa/management/commands/smoke.py)
is the same command.
"""

import argparse
import gzip
import html
import http.client
import http.cookies
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import asdict, dataclass

from qa.model.holder import ModelState
from qa.reader.examples import KIT_HO

QUESTION, CONTEXT = KIT_HO["question"], KIT_HO["context"]
# What a browser sends. Python's standard library decodes gzip and deflate, not brotli.
BROWSER_ENCODINGS = "gzip, deflate, br"
READABLE_ENCODINGS = "gzip, deflate"
# How much of an unexpected body a report quotes.
EXCERPT_CHARS = 160

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class SmokeError(Exception):
    """The server could not be reached, or answered something unreadable."""


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes  # as received
    encoding: str  # Content-Encoding ("" for none)

    @property
    def body(self) -> bytes:
        """The body decoded from its Content-Encoding. Raises SmokeError when it cannot be."""
        try:
            if self.encoding in ("", "identity"):
                return self.raw
            if self.encoding == "gzip":
                return gzip.decompress(self.raw)
            if self.encoding == "deflate":
                return zlib.decompress(self.raw)
        except (OSError, EOFError, zlib.error) as error:
            raise SmokeError(f"the body is not valid {self.encoding}: {error}") from error
        raise SmokeError(f"cannot decode Content-Encoding {self.encoding!r}")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise SmokeError(f"{self.status}, not JSON: {self.excerpt()}") from error

    def excerpt(self) -> str:
        try:
            text = " ".join(self.text.split())
        except SmokeError as error:
            return str(error)
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is reported as it is (a 301 to https://, say), not followed."""

    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """GET and POST relative to a base URL, with no redirects followed and no cookie jar."""

    def __init__(self, base_url: str, *, timeout: float):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    @property
    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def request(self, method: str, path: str, *, headers=None, data: bytes | None = None):
        """One request; an HTTP error status is a Response too. Raises SmokeError when nothing
        readable comes back (refused, reset, timed out, TLS failure)."""
        url = urllib.parse.urljoin(self.base_url, path)
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        request.add_header("User-Agent", "qasite-smoke/1")
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                return self._response(reply.status, reply.headers, reply.read())
        except urllib.error.HTTPError as error:
            with error:
                return self._response(error.code, error.headers, error.read())
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise SmokeError(f"{method} {url}: {reason}") from error

    @staticmethod
    def _response(status: int, headers, raw: bytes) -> Response:
        encoding = headers.get("Content-Encoding", "").strip().lower()
        return Response(status, headers, raw, encoding)

    def get(self, path: str, *, accept: str, encodings: str = READABLE_ENCODINGS, headers=None):
        return self.request(
            "GET", path, headers={"Accept": accept, "Accept-Encoding": encodings, **(headers or {})}
        )

    def post_json(self, path: str, payload) -> Response:
        return self.request(
            "POST",
            path,
            data=json.dumps(payload).encode(),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Accept-Encoding": READABLE_ENCODINGS,
            },
        )


def _expect(response: Response, status: int, content_type: str) -> None:
    if response.status != status and "Location" in response.headers:
        raise SmokeError(
            f"expected {status}, got {response.status} to {response.headers['Location']}"
        )
    if response.status != status or not response.content_type.startswith(content_type):
        raise SmokeError(
            f"expected {status} {content_type}, got {response.status} "
            f"{response.content_type or '(no Content-Type)'}: {response.excerpt()}"
        )


def check_page(client: Client, page: Response) -> str:
    """200, HTML, and a Content-Security-Policy that allows no inline script or style."""
    _expect(page, 200, "text/html")
    policy = page.headers.get("Content-Security-Policy", "")
    if "default-src" not in policy:
        raise SmokeError("no Content-Security-Policy with a default-src")
    if "unsafe-inline" in policy:
        raise SmokeError(f"the Content-Security-Policy allows 'unsafe-inline': {policy}")
    return f"200 {page.content_type}, {len(page.raw)} bytes; Content-Security-Policy set"


def check_compression(client: Client, page: Response) -> str:
    """The page (asked for with a browser's Accept-Encoding) came back gzip or brotli."""
    if page.encoding not in ("gzip", "br"):
        raise SmokeError(
            f"the page came back {page.encoding or 'uncompressed'} ({len(page.raw)} bytes) "
            f"to Accept-Encoding: {BROWSER_ENCODINGS}"
        )
    return f"{page.encoding}, {len(page.raw)} bytes"


def check_health(client: Client, *, wait: float, sleep=time.sleep, clock=time.monotonic) -> str:
    """GET /api/health/ until the model is ready, waiting up to ``wait`` seconds (polling once a
    second) while it is ``idle`` (nothing has asked for it yet) or ``loading``; says which model,
    and which engine serves it where health names one."""
    deadline = clock() + wait
    while True:
        response = client.get("api/health/", accept="application/json")
        health = response.json()
        state = health.get("state") if isinstance(health, dict) else None
        if state == ModelState.READY and response.status == 200:
            engine = health.get("engine")
            return f"ready, model {health.get('model')}" + (f", engine {engine}" if engine else "")
        if state == ModelState.FAILED:
            raise SmokeError(f"the model failed to load: {health.get('error')}")
        if state not in (ModelState.IDLE, ModelState.LOADING):
            raise SmokeError(f"{response.status}: {response.excerpt()}")
        if clock() >= deadline:
            raise SmokeError(f"still {state} after {wait:g} s")
        sleep(1.0)


def check_answer(client: Client) -> tuple[str, str]:
    """The README's example through the JSON API: a non-empty answer at its own offsets.
    Returns the report and the answer."""
    response = client.post_json("api/answer/", {"question": QUESTION, "context": CONTEXT})
    _expect(response, 200, "application/json")
    result = response.json()
    try:
        answer, start, end, score = (result[key] for key in ("answer", "start", "end", "score"))
    except (TypeError, KeyError) as error:
        raise SmokeError(f"not an answer: {response.excerpt()}") from error
    if not isinstance(answer, str) or not answer:
        raise SmokeError(f"an empty answer: {response.excerpt()}")
    if not (isinstance(start, int) and isinstance(end, int)) or CONTEXT[start:end] != answer:
        raise SmokeError(f"context[{start}:{end}] is not the answer {answer!r}")
    if not (isinstance(score, (int, float)) and 0 <= score <= 1):
        raise SmokeError(f"the score {score!r} is not a probability")
    return f"{answer!r} at {start}:{end}, score {score:.3f}", answer


def check_refusal(client: Client) -> str:
    """A blank question: 400, and a message on the question field."""
    response = client.post_json("api/answer/", {"question": " ", "context": CONTEXT})
    _expect(response, 400, "application/json")
    errors = response.json()
    messages = errors.get("question") if isinstance(errors, dict) else None
    if not (isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)):
        raise SmokeError(f"400 without a message on the question: {response.excerpt()}")
    return f"400, question: {messages[0]}"


CSRF_INPUT = re.compile(r'<input[^>]*name="csrfmiddlewaretoken"[^>]*value="([^"]+)"')
ANSWER_MARK = re.compile(r"<mark>(.*?)</mark>", re.DOTALL)


def check_form(client: Client, api_answer: str | None) -> str:
    """The form's round trip: GET / for the csrftoken cookie and the form's token, POST them back
    with the Origin and Referer a browser sends, and find the answer highlighted in the page
    (the JSON API's answer, when that check got one)."""
    page = client.get("", accept="text/html")
    _expect(page, 200, "text/html")
    cookies = http.cookies.SimpleCookie()
    for header in page.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    if "csrftoken" not in cookies:
        raise SmokeError("the page sets no csrftoken cookie")
    token = CSRF_INPUT.search(page.text)
    if not token:
        raise SmokeError("the page's form has no csrfmiddlewaretoken")
    form = {
        "csrfmiddlewaretoken": html.unescape(token.group(1)),
        "question": QUESTION,
        "context": CONTEXT,
        "top_k": "1",
    }
    response = client.request(
        "POST",
        "",
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "text/html",
            "Accept-Encoding": READABLE_ENCODINGS,
            "Cookie": f"csrftoken={cookies['csrftoken'].value}",
            "Origin": client.origin,
            "Referer": client.base_url,
        },
    )
    _expect(response, 200, "text/html")
    mark = ANSWER_MARK.search(response.text)
    if not mark:
        raise SmokeError("200, but no answer highlighted in the page")
    answer = html.unescape(mark.group(1))
    if api_answer is not None and answer != api_answer:
        raise SmokeError(f"the form answered {answer!r}, the API {api_answer!r}")
    return f"csrftoken cookie and form token accepted; answer {answer!r}"


def check_https_redirect(plain: Client) -> str:
    """The page over plain HTTP redirects to the same host over HTTPS (``plain`` is a Client
    for the site's http:// URL)."""
    response = plain.get("", accept="text/html")
    location = response.headers.get("Location", "")
    secure = "https://" + urllib.parse.urlsplit(plain.base_url).netloc + "/"
    if response.status not in (301, 302, 307, 308) or not location.startswith(secure):
        where = f" to {location}" if location else ""
        raise SmokeError(f"http:// answered {response.status}{where}, not a redirect to {secure}")
    return f"http:// answers {response.status} to {location}"


def _timed(name: str, function, *args, **kwargs) -> tuple[Check, object]:
    """Runs one check. A check returns its detail, or (detail, value) when a later check needs
    the value; the value (None when the check failed) comes back beside the Check."""
    started = time.perf_counter()
    try:
        outcome = function(*args, **kwargs)
    except SmokeError as error:
        return Check(name, FAIL, str(error), round(time.perf_counter() - started, 3)), None
    detail, result = outcome if isinstance(outcome, tuple) else (outcome, outcome)
    return Check(name, PASS, detail, round(time.perf_counter() - started, 3)), result


def run(
    base_url: str,
    *,
    compression: bool,
    wait: float = 30.0,
    timeout: float = 15.0,
    sleep=time.sleep,
    clock=time.monotonic,
) -> list[Check]:
    """Every check against the qasite at ``base_url``, in order; a failed check does not stop
    the others. ``compression``: whether an uncompressed page fails (True) or is skipped."""
    client = Client(base_url, timeout=timeout)
    checks = []
    started = time.perf_counter()
    try:
        page = client.get("", accept="text/html", encodings=BROWSER_ENCODINGS)
    except SmokeError as error:
        page, unreachable = None, str(error)
    fetched = round(time.perf_counter() - started, 3)  # the page check's time
    for name, function in (("page", check_page), ("compression", check_compression)):
        if page is None:
            checks.append(Check(name, FAIL, unreachable, fetched))
        elif name == "compression" and not compression:
            how = page.encoding or "uncompressed"
            why = "not required (http://, or --compression skip)"
            checks.append(Check(name, SKIP, f"{how}; {why}"))
        else:
            check = _timed(name, function, client, page)[0]
            if name == "page":
                check.seconds = round(check.seconds + fetched, 3)
            checks.append(check)
    checks.append(_timed("health", check_health, client, wait=wait, sleep=sleep, clock=clock)[0])
    answer_check, answer = _timed("answer", check_answer, client)
    checks.append(answer_check)
    checks.append(_timed("4xx", check_refusal, client)[0])
    checks.append(_timed("form", check_form, client, answer)[0])
    if urllib.parse.urlsplit(client.base_url).scheme == "https":
        plain = Client("http" + client.base_url.removeprefix("https"), timeout=timeout)
        checks.append(_timed("https", check_https_redirect, plain)[0])
    return checks


DESCRIPTION = (
    "Smoke-test a running qasite at URL (e.g. the stack's CloudFrontUrl after a deploy): the "
    "page (200, Content-Security-Policy, compression), health ready, one answer, one 4xx, "
    "the form's CSRF round trip and, for https://, the redirect from plain HTTP. One line per "
    "check; exits 1 if any check fails."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments, for ``python3 -m qa.operations.smoke`` and ``manage.py smoke``
    alike."""
    parser.add_argument(
        "url", help="The site's base URL, e.g. https://d111111abcdef8.cloudfront.net"
    )
    parser.add_argument(
        "--compression",
        choices=["auto", "require", "skip"],
        default="auto",
        help="Whether the page must come back compressed: required for https:// URLs "
        "(CloudFront compresses), skipped for http:// ones (runserver and gunicorn do not); "
        "default auto.",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="Seconds to wait for health to say ready while the model loads (default 30).",
    )
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="Seconds per request (default 15)."
    )
    parser.add_argument(
        "--json", action="store_true", dest="as_json", help="Print the report as JSON."
    )


def url_error(url: str) -> str | None:
    """Why ``url`` cannot be smoke-tested, or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{url!r} is not an http:// or https:// URL"
    return None


def report(
    url: str, *, compression: str, wait: float, timeout: float, as_json: bool
) -> tuple[str, str | None]:
    """Runs every check against ``url``: the report's text (a line per check, or JSON) and,
    when a check failed, the summary ("1 of 6 checks failed: health"), else None.
    ``compression``: "auto" (required for https://), "require" or "skip"."""
    if compression == "auto":
        compression = "require" if urllib.parse.urlsplit(url).scheme == "https" else "skip"
    checks = run(url, compression=compression == "require", wait=wait, timeout=timeout)
    failed = [check.name for check in checks if check.status == FAIL]
    if as_json:
        document = {"url": url, "passed": not failed, "checks": [c.as_dict() for c in checks]}
        text = json.dumps(document, ensure_ascii=False, indent=2)
    else:
        width = max(len(check.name) for check in checks)
        text = "\n".join(f"{c.status}  {c.name:{width}}  {c.detail}" for c in checks)
    summary = f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}"
    return text, summary if failed else None


def main(argv: list[str] | None = None) -> int:
    """``python3 -m qa.operations.smoke URL [options]``: prints the report; the exit status is 1
    when a
    check failed, 2 for a bad argument."""
    parser = argparse.ArgumentParser(prog="python3 -m qa.operations.smoke", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if error := url_error(args.url):
        parser.error(error)
    text, failure = report(
        args.url,
        compression=args.compression,
        wait=args.wait,
        timeout=args.timeout,
        as_json=args.as_json,
    )
    print(text)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    if not args.as_json:
        print(f"{args.url}: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
