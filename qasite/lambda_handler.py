"""AWS Lambda entry point: API Gateway (HTTP API v2, REST API v1), ALB and function URL events.

Importing this module is Lambda's init phase, so it loads the model here: init (and a SnapStart
snapshot) pays for the load, not the first user. Only /tmp is writable on Lambda, so every cache
is pointed there before anything that might write one is imported. With SnapStart, every instance
is restored from one snapshot of that init; ``after_restore`` makes each its own.

Run it locally on an event file: ``python -m qasite.lambda_handler events/http-api-v2.json``.
"""

import binascii
import contextlib
import json
import os
import random
import sys
import time

# Before any other import (ruff's E402 is off for this file in pyproject.toml): the caches go to
# /tmp before anything that might write one is imported.
for _variable, _path in [
    ("HF_HOME", "/tmp/huggingface"),
    ("XDG_CACHE_HOME", "/tmp/cache"),
    ("MPLCONFIGDIR", "/tmp/matplotlib"),
    ("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor"),
]:
    os.environ.setdefault(_variable, _path)
sys.dont_write_bytecode = True
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qasite.settings")

from apig_wsgi import make_lambda_handler
from django.conf import settings
from django.core.cache import caches
from django.core.management.utils import get_random_secret_key
from django.core.wsgi import get_wsgi_application

from qa import services
from qa.operations import metrics
from qa.origin import proxy_secrets, refresh_secrets
from qa.reader.errors import ModelLoadError, ModelUnavailable
from qa.reader.examples import KIT_HO
from qa.services import lazy_answerer
from qasite.lambda_environ import replace_lone_surrogates, with_corrected_environ
from qasite.lambda_observability import (
    invocation_keys,
    logger,
    reset_cold_start,
    traced,
)
from qasite.middleware import is_rust_panic

# Responses of these types go back as text, all others base64-encoded (binary_support): a REST
# API without binaryMediaTypes hands base64 to the client as it is, so no text may be sent as
# binary. apig-wsgi's own list misses the OpenAPI schema (YAML and JSON), SVG, XML, YAML and
# JavaScript served as application/*. Matched as prefixes of Content-Type.
TEXT_CONTENT_TYPES = (
    "text/",
    "application/json",
    "application/problem+json",
    "application/vnd.api+json",
    "application/vnd.oai.openapi",  # drf-spectacular's YAML, and +json
    "application/manifest+json",
    "application/javascript",
    "application/ecmascript",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "image/svg+xml",
)

wsgi_handler = make_lambda_handler(
    with_corrected_environ(get_wsgi_application()),
    binary_support=True,
    non_binary_content_type_prefixes=TEXT_CONTENT_TYPES,
)

try:
    lazy_answerer().get()
except ModelLoadError:
    pass  # remembered: health reports it, requests answer 503 and retry the load later
proxy_secrets()  # read from SSM now, if that is where they are: init pays for boto3, not a user

_cold = True

# Requests that warm what a snapshot should hold ready (prime): the page, an answer, health.
PRIMING_REQUESTS = [
    ("GET", "/", None),
    ("POST", "/api/answer/", json.dumps(KIT_HO)),
    ("GET", "/api/health/", None),
]


def prime() -> list[int]:
    """Warm the app before a SnapStart snapshot: the first request of a process pays for the URL
    conf, DRF, the templates and the engine's first run (about 0.3 s on a page, measured in the
    runtime tree), and an instance restored from a primed snapshot does not. Sends
    PRIMING_REQUESTS through the WSGI app as an HTTP API would, to the first allowed host;
    returns their statuses. Runs only when the runtime takes a snapshot; what it leaves behind
    (rate-limit counts) after_restore clears. Source: AWS Lambda's guide, "Maximize Lambda
    SnapStart performance" (priming).
    """
    host = next(iter(settings.ALLOWED_HOSTS), "localhost").lstrip(".").replace("*", "localhost")
    secrets = proxy_secrets()  # as CloudFront sends them: the site refuses requests without
    statuses = []
    for method, path, body in PRIMING_REQUESTS:
        event = {
            "version": "2.0",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {
                "host": host,
                "x-forwarded-proto": "https",
                "accept": "application/json" if body else "text/html",
                "content-type": "application/json",
                **({"x-origin-verify": secrets[0]} if secrets else {}),
            },
            "requestContext": {
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                },
            },
            "body": body,
            "isBase64Encoded": False,
        }
        statuses.append(wsgi_handler(event, None)["statusCode"])
    return statuses


def after_restore() -> None:
    """Reset what init left in the process that must not be shared by instances restored from
    one SnapStart snapshot: the cold-start flag (an instance's first request is its cold start),
    the rate-limit counters (Django's local-memory cache: each instance counts its own clients),
    Python's random generator, and Django's secret key when init generated it (no
    DJANGO_SECRET_KEY). Randomness from the operating system (``secrets``, ``uuid4``) is fresh
    in each instance anyway. Also Powertools' cold-start flag, the metrics init and priming
    recorded (not this instance's), and the origin secrets read at init: read again now, so a
    rotation since the snapshot counts and no request waits for SSM, with the SSM client init
    built, within qa.origin.READ_BOUND seconds (Lambda fails a restore whose hooks pass 10 s);
    the snapshot's secrets stay in use should SSM fail. Source: AWS Lambda's guide, "Handling
    uniqueness with Lambda SnapStart"; the runtime calls this after each restore.
    """
    global _cold
    _cold = True
    reset_cold_start()
    metrics.discard()
    for cache in caches.all():
        cache.clear()
    random.seed()
    if not os.environ.get("DJANGO_SECRET_KEY"):
        settings.SECRET_KEY = get_random_secret_key()
    refresh_secrets()


try:
    # Lambda's Python runtime provides it (SnapStart's hooks); elsewhere nothing is restored.
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:
    pass
else:
    register_before_snapshot(prime)
    register_after_restore(after_restore)


def is_keep_warm(event: dict) -> bool:
    """A scheduled EventBridge ping (or the equivalent custom event serverless.yml sends)."""
    return event.get("source") == "aws.events" or event.get("keep_warm") is True


def is_measure(event: dict) -> bool:
    """A direct invocation asking for the instance's CPU and latency (qa.services.measure):
    ``aws lambda invoke --payload '{"measure": true}'``, which no HTTP request can send."""
    return event.get("measure") is True and "requestContext" not in event


def request_line(event: dict) -> tuple[str, str]:
    """Method and path of any of the event shapes apig-wsgi understands."""
    http = (event.get("requestContext") or {}).get("http")
    if http:  # HTTP API payload 2.0 and function URLs
        return http.get("method", "?"), event.get("rawPath", "?")
    return event.get("httpMethod", "?"), event.get("path", "?")


def error_response(status: int, detail: str) -> dict:
    """A JSON {"detail": ...} response, for what fails before or around Django (never cached,
    as no dynamic response is: qasite.middleware.NoStoreMiddleware)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps({"detail": detail}),
        "isBase64Encoded": False,
    }


def handler(event: dict, context) -> dict:
    """Answer one event; never raises (a failure outside Django is logged and answers 500). Logs
    one JSON line per request and publishes its metrics (qasite.lambda_observability); a
    keep-warm ping does neither."""
    global _cold
    if is_keep_warm(event):
        return {"warm": True}
    if is_measure(event):
        try:
            return services.measure()
        except ModelUnavailable as error:
            return {"error": str(error)}
    cold, _cold = _cold, False
    return serve(event, context, cold_start=cold)


@traced
def serve(event: dict, context, *, cold_start: bool) -> dict:
    """One request: the response, its log line, its metrics."""
    started = time.perf_counter()
    logger.thread_safe_append_keys(**invocation_keys(context, cold_start))
    if cold_start:
        metrics.add("ColdStart", "Count", 1)
    answered_by_django = False
    try:
        response = wsgi_handler(replace_lone_surrogates(event), context)
        answered_by_django = True  # whose middleware recorded the request's metrics
    except binascii.Error:
        response = error_response(400, "The request body is not valid base64.")
    except BaseException as error:
        # Any Exception, and a Rust panic (a BaseException); never KeyboardInterrupt or
        # SystemExit, which must end the process.
        if not (isinstance(error, Exception) or is_rust_panic(error)):
            raise
        logger.exception("The event could not be handled")  # the message is withheld
        response = error_response(500, "Internal server error.")
    seconds = time.perf_counter() - started
    if not answered_by_django:
        metrics.request_served(response["statusCode"], seconds)
    method, path = request_line(event)
    # One line per request; never the question, context or answer.
    logger.info(
        "request",
        extra={
            "method": method,
            "path": path,
            "status": response.get("statusCode"),
            "duration_ms": round(seconds * 1000, 2),
        },
    )
    logger.thread_safe_clear_keys()
    metrics.publish()
    return response


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as event_file:
        event = json.load(event_file)
    with contextlib.redirect_stdout(sys.stderr):  # the log line; stdout gets the response only
        response = handler(event, None)
    print(json.dumps(response, indent=2))
