"""The Lambda handler's logs, traces and cold-start flags (AWS Lambda Powertools)."""

import importlib
import logging
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from qasite import lambda_observability
from tests.helpers import LambdaContext


class FullContext(LambdaContext):
    """Lambda's context object, with the function's attributes Powertools reads as well."""

    function_name = "qasite-prod-web"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:qasite-prod-web:live"


def test_invocation_keys_are_powertools_names_and_skip_what_is_missing():
    assert lambda_observability.invocation_keys(FullContext(), True) == {
        "cold_start": True,
        "function_request_id": FullContext.aws_request_id,
        "function_name": "qasite-prod-web",
        "function_memory_size": 2048,
        "function_arn": FullContext.invoked_function_arn,
    }
    assert lambda_observability.invocation_keys(None, False) == {"cold_start": False}


def test_the_handlers_lines_go_to_stdout_once_whatever_stdout_is_now(capsys):
    lambda_observability.logger.info("request", extra={"status": 200})
    captured = capsys.readouterr()
    assert captured.out.count('"message":"request"') == 1 and captured.err == ""
    assert not logging.getLogger("qasite").propagate


def test_tracing_is_off_by_default_and_wraps_the_handler_when_on(settings, monkeypatch):
    def serve(event, context, *, cold_start):
        return {"cold_start": cold_start}

    assert settings.QA_TRACING is False
    assert lambda_observability.traced(serve) is serve
    settings.QA_TRACING = True
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here
    traced = lambda_observability.traced(serve)
    assert traced is not serve
    assert traced({}, FullContext(), cold_start=True) == {"cold_start": True}


def test_tracing_without_the_xray_sdk_stops_the_start_clearly(settings, monkeypatch):
    settings.QA_TRACING = True
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # as if not installed
    with pytest.raises(ImproperlyConfigured, match="requirements/tracing.txt"):
        lambda_observability.traced(lambda event, context: None)


def test_reset_cold_start_makes_powertools_report_a_cold_start_again():
    """After a SnapStart restore: the Tracer's flag, a module global, came from the snapshot."""
    tracer = importlib.import_module("aws_lambda_powertools.tracing.tracer")
    tracer._is_cold_start()  # the first invocation's, which flips it
    assert tracer._is_cold_start() is False
    lambda_observability.reset_cold_start()
    assert tracer._is_cold_start() is True
    assert "aws_lambda_powertools.tracing.tracer" in sys.modules
