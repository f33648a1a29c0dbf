"""Logged tracebacks keep their frames and lose the exception's message, in text and in JSON;
records carry no request's query string; one notice of transformers is dropped."""

import json
import logging
import sys

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from django.conf import settings
from django.test import Client

from qa.log_filters import DropNoLossNotice, WithholdExceptionMessages, ascii_json
from tests.helpers import console_output

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
    assert filters == ["withhold_messages", "summarize_request"]


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
