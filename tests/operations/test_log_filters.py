"""Logged tracebacks keep their frames and lose the exception's message, in text and in JSON;
records carry no request's query string; no secret nor credential reaches a log line, at any
level; one notice of transformers is dropped."""

import contextlib
import json
import logging
import secrets
import string
import sys

import boto3
import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from django.conf import settings
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from qa.operations import log_filters
from qa.operations.log_filters import (
    REDACTED,
    DropNoLossNotice,
    RedactSecrets,
    WithholdExceptionMessages,
    ascii_json,
    keep_out_of_logs,
    redact,
)
from tests.helpers import (
    AWS_TEST_ENVIRONMENT,
    CONTAINER_CREDENTIALS,
    SSM_PARAMETER,
    console_output,
    get_parameter_answer,
)
from tests.properties import ANY_CHARACTER

MARKER = "-".join(["secret", "question"])  # not in any source line a traceback shows


def fail_with(message: str) -> None:
    raise ValueError(message)


def filtered_record(path: str) -> logging.LogRecord:
    """django.request's record of a 500 at ``path`` whose exception's message is MARKER, after
    the filter."""
    try:
        fail_with(MARKER)
    except ValueError:
        record = logging.LogRecord(
            "django.request",
            logging.ERROR,
            __file__,
            1,
            "Internal Server Error: %s",
            (path,),
            sys.exc_info(),
        )
    assert WithholdExceptionMessages().filter(record)
    return record


def test_a_logged_traceback_has_its_frames_but_not_the_message():
    text = logging.Formatter().format(filtered_record("/api/answer/"))
    assert "Internal Server Error: /api/answer/" in text
    assert "in fail_with" in text and "builtins.ValueError: (message withheld)" in text
    assert MARKER not in text


def test_every_log_record_goes_through_the_filter(client, settings, monkeypatch):
    """Django's own loggers too: a 500 with DEBUG on or off logs no exception message."""
    from qa import views

    marker = "-".join(["marker", "4b1d"])

    def broken(*args, **kwargs):
        raise RuntimeError(marker)

    monkeypatch.setattr(views.services, "answer_questions", broken)
    output = console_output(monkeypatch)
    for debug in (False, True):
        settings.DEBUG = debug
        client.raise_request_exception = False
        response = client.post(
            "/api/answer/", {"question": "Who?", "context": "Kit."}, content_type="application/json"
        )
        assert response.status_code == 500
    logged = output.getvalue()
    assert logged.count("builtins.RuntimeError: (message withheld)") == 2
    assert marker not in logged


def test_the_console_handler_is_the_only_handler_and_filters():
    assert settings.LOGGING["root"]["handlers"] == ["console"]
    filters = settings.LOGGING["handlers"]["console"]["filters"]
    assert filters == ["withhold_messages", "summarize_request", "redact_secrets"]


def test_no_record_carries_a_query_string_in_json(client, settings, monkeypatch):
    """Django attaches the request to its records of 4xx and 5xx (django.request, and
    django.security.* for a bad Host or a CSRF failure), and a JSON formatter writes it: only
    its method and path remain, whatever logger the record comes from."""
    output = console_output(monkeypatch, LambdaPowertoolsFormatter())
    marker = "-".join(["query", "marker"])
    client.get(f"/no/such/page/?question={marker}")
    client.get(f"/?question={marker}", HTTP_HOST="attacker.example")
    Client(enforce_csrf_checks=True).post(f"/?context={marker}", {"question": "Who?"})
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    assert [line["request"] for line in lines] == ["GET /no/such/page/", "GET /", "POST /"]
    assert marker not in output.getvalue()


def test_transformers_notice_of_no_loss_function_is_dropped_and_its_other_warnings_kept():
    """Tracing a QA model printed "`loss_type=None` was set in the config but it is
    unrecognized" on every load; transformers' other warnings (a head left untrained) stay."""
    logger = logging.getLogger("transformers.modeling_utils")
    assert any(isinstance(f, DropNoLossNotice) for f in logger.filters)

    def record(message: str) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, (), None)

    notice = "`loss_type=None` was set in the config but it is unrecognized. Using the default loss"
    assert not logger.filter(record(notice))
    assert logger.filter(record("Some weights of BertForQuestionAnswering were not initialized"))


def test_the_json_formatter_gets_the_withheld_traceback_too():
    """AWS Lambda Powertools' formatter formats exc_info itself, whatever exc_text holds: the
    filter hands it the withheld traceback as ``exception`` instead."""
    record = filtered_record("/api/\udc80")
    text = LambdaPowertoolsFormatter(json_serializer=ascii_json).format(record)
    assert text.isascii() and MARKER not in text  # a lone surrogate in a path, escaped
    line = json.loads(text)
    assert line["message"] == "Internal Server Error: /api/\udc80"
    assert line["exception_name"] == "ValueError" and "in fail_with" in line["exception"]
    assert line["exception"].endswith("builtins.ValueError: (message withheld)")


# --- no secret nor credential, at any level ------------------------------------------------------

AWS_LOGGERS = ["boto3", "botocore", "s3transfer", "urllib3"]


@contextlib.contextmanager
def at_debug(*names: str):
    """The root logger and ``names`` at DEBUG for the block (their levels restored after)."""
    loggers = [logging.getLogger(name) for name in ["", *names]]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def test_the_aws_sdk_never_logs_below_info_whatever_django_log_level():
    """At DEBUG, botocore logs each call's signed headers, its canonical request (the session
    token) and the answer's body (SSM's decrypted value); urllib3, each connection. The level
    DJANGO_LOG_LEVEL sets on the root does not reach them."""
    children = ["botocore.parsers", "botocore.endpoint", "botocore.auth", "urllib3.connectionpool"]
    with at_debug():
        for name in AWS_LOGGERS + children:
            logger = logging.getLogger(name)
            assert logger.isEnabledFor(logging.INFO), name
            assert not logger.isEnabledFor(logging.DEBUG), name


@pytest.mark.parametrize("credentials", ["environment", "elsewhere"])
def test_botocore_at_debug_shows_neither_secrets_nor_credentials_on_the_console(
    local_ssm, monkeypatch, credentials
):
    """The second guard alone: with the AWS SDK's loggers lifted to DEBUG, two reads of the
    origin secrets through a real client and socket, logged in full by botocore, reach the
    console handler without the secrets (the first read's too, which no filter knew yet: an SSM
    SecureString's value), the session token, the secret key or the signatures, whether the
    credentials came from the environment or from elsewhere (SnapStart's credentials
    endpoint, unknown to the filter)."""
    fake = local_ssm(get_parameter_answer(SSM_PARAMETER, "Zq8-first-origin-secret Kd2-second"))
    keys = {}
    if credentials == "elsewhere":
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]:
            monkeypatch.delenv(name)
        keys = {
            "aws_access_key_id": CONTAINER_CREDENTIALS["AccessKeyId"],
            "aws_secret_access_key": CONTAINER_CREDENTIALS["SecretAccessKey"],
            "aws_session_token": CONTAINER_CREDENTIALS["Token"],
        }
    output = console_output(monkeypatch)
    with at_debug(*AWS_LOGGERS):
        client = boto3.client("ssm", endpoint_url=fake.url, **keys)
        for _ in range(2):
            value = client.get_parameter(Name=SSM_PARAMETER, WithDecryption=True)
            keep_out_of_logs(*value["Parameter"]["Value"].split())  # as qa.origin does
    logged = output.getvalue()
    # The capture works: botocore's lines are there, the token went out with each call.
    assert logged.count("Response body:") == 2 and logged.count("x-amz-security-token:") == 2
    token = AWS_TEST_ENVIRONMENT["AWS_SESSION_TOKEN"] if not keys else keys["aws_session_token"]
    assert all(headers["X-Amz-Security-Token"] == token for headers, _ in fake.requests)
    signatures = [
        headers["Authorization"].rsplit("Signature=", 1)[1] for headers, _ in fake.requests
    ]
    withheld = [
        "Zq8-first-origin-secret",
        "Kd2-second",
        token,
        AWS_TEST_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        CONTAINER_CREDENTIALS["SecretAccessKey"],
        *signatures,
    ]
    assert [secret for secret in withheld if secret in logged] == []
    assert f'"Value": "{REDACTED}"' in logged and f"x-amz-security-token:{REDACTED}" in logged


HEX = "4f8181ff09846ccc3b2112b0e14c57037e5297c84a2c6acf6c296882de3503c3"
TOKEN = CONTAINER_CREDENTIALS["Token"]
KEY = CONTAINER_CREDENTIALS["SecretAccessKey"]
# (what, text holding credentials or a SecureString's value, what stays): shapes no record of
# the test above holds.
CREDENTIAL_SHAPES = [
    ("credentials endpoint's answer", json.dumps(CONTAINER_CREDENTIALS), '"AccessKeyId": "ASIA'),
    ("credentials as a dict", repr(CONTAINER_CREDENTIALS), "'Expiration': '2099"),
    (
        "presigned URL",
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
        f"ASIAQASITE/20261207/eu-west-1/s3/aws4_request&X-Amz-Security-Token={TOKEN}"
        f"&X-Amz-Signature={HEX}",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=",
    ),
    (
        "Authorization header, as text",
        "Authorization: AWS4-HMAC-SHA256 Credential=ASIAQASITE/20261207/eu-west-1/ssm/"
        f"aws4_request, SignedHeaders=host;x-amz-date, Signature={HEX}",
        "Authorization: AWS4-HMAC-SHA256 Credential=",
    ),
    (
        "a SigV4 scope alone",
        f"AWS4-HMAC-SHA256 Credential={KEY}/20261207/eu-west-1/ssm/aws4_request",
        "AWS4-HMAC-SHA256 Credential=",
    ),
    ("signature, as botocore.auth logs it", f"Signature:\n{HEX}", "Signature:\n"),
    (
        "SecureString with escaped quotes, as JSON",
        json.dumps({"Parameter": {"Type": "SecureString", "Value": f'x"{KEY}\\"y'}}),
        '"Type": "SecureString"',
    ),
    (
        "SecureString with escaped quotes, as botocore logs the body",
        repr(json.dumps({"Parameter": {"Value": f'x"{KEY}"y', "Type": "SecureString"}}).encode()),
        '"Type": "SecureString"',
    ),
]


@pytest.mark.parametrize(("what", "text", "kept"), CREDENTIAL_SHAPES)
def test_credentials_in_any_shape_aws_gives_them_are_redacted(what, text, kept):
    clean = redact(text)
    assert TOKEN not in clean and KEY not in clean and HEX not in clean, (what, clean)
    assert kept in clean and REDACTED in clean


@pytest.mark.parametrize("handler", ["console", "lambda"])
def test_a_known_secret_is_redacted_from_every_part_of_a_record_at_every_level(
    handler, monkeypatch
):
    """A secret the process read (the origin secret, in every request's X-Origin-Verify) or holds
    in its environment (the AWS credentials), in a record's message, arguments, traceback and
    the attributes a JSON formatter writes, whatever the logger and level, through the filters
    of either handler: the root's (settings.LOGGING) and the Lambda handler's own."""
    from qasite import lambda_observability

    [console] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    chain = {"console": console, "lambda": lambda_observability._handler}[handler]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY)
    secret = "-".join(["origin", "secret", secrets.token_urlsafe(8)])
    keep_out_of_logs(secret, "short")  # too short to be a secret: kept as it is
    for level in [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]:
        try:
            fail_with(secret)
        except ValueError:
            record = logging.getLogger("django.request").makeRecord(
                "django.request",
                level,
                __file__,
                1,
                "headers: %r, a short word",
                ({"X-Origin-Verify": secret},),
                sys.exc_info(),
                extra={"headers": {"x-origin-verify": secret}, "key": KEY, "note": "short"},
            )
        record.stack_info = f"stack with {secret}"
        assert chain.filter(record)
        for formatter in [
            logging.Formatter("%(message)s %(stack_info)s"),
            LambdaPowertoolsFormatter(),
        ]:
            text = formatter.format(record)
            assert secret not in text and KEY not in text, text
            assert REDACTED in text and "a short word" in text


def test_powertools_dict_messages_stay_dicts_unless_they_hold_a_secret():
    record = logging.LogRecord("qasite", logging.INFO, __file__, 1, {"status": 200}, None, None)
    assert RedactSecrets().filter(record) and record.msg == {"status": 200}
    keep_out_of_logs("Zq8-origin-secret")
    record.msg = {"sent": "Zq8-origin-secret"}
    assert RedactSecrets().filter(record) and record.msg == repr({"sent": REDACTED})


URL_SAFE = string.ascii_letters + string.digits + "-_"  # secrets.token_urlsafe's alphabet


@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    secret=st.text(st.sampled_from(URL_SAFE), min_size=8, max_size=64),
    before=st.text(ANY_CHARACTER, max_size=40),
    after=st.text(ANY_CHARACTER, max_size=40),
)
def test_no_secret_survives_redaction_wherever_it_sits(monkeypatch, secret, before, after):
    """Whatever surrounds it, every occurrence of a known secret is replaced: between the
    REDACTED marks, no piece of the line holds it."""
    monkeypatch.setattr(log_filters, "_withheld", set())
    keep_out_of_logs(secret)
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "%s|%s", (before + secret, after + secret + before), None
    )
    record.extra = f"{after}{secret}{secret}{before}"
    assert RedactSecrets().filter(record)
    for text in [record.getMessage(), record.extra]:
        assert all(secret not in piece for piece in text.split(REDACTED)), text
