"""What the Lambda handler tells CloudWatch and X-Ray, with AWS Lambda Powertools.

- **Logs**: one JSON object per line (Powertools' Logger and formatter). Every line of an
  invocation, Django's included (settings.LOGGING formats them the same way on Lambda), carries
  its ``function_request_id`` and ``cold_start``; each request ends with one ``request`` line:
  method, path, status, duration. Never a question, a context or an answer; tracebacks without
  exception messages; no secret nor credential, at any level (qa.operations.log_filters).
- **Metrics**: qa.operations.metrics, published at the end of each invocation (ColdStart is counted
here).
- **Traces** (settings.QA_TRACING): Powertools' Tracer around each invocation, with neither the
  response (it holds answers) nor the error (its message may quote input) in the trace.
"""

import logging
import sys

from aws_lambda_powertools import Logger
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from qa.operations.log_filters import RedactSecrets, WithholdExceptionMessages, ascii_json


class StdoutHandler(logging.StreamHandler):
    """A StreamHandler on whatever ``sys.stdout`` is when it writes (Lambda's runtime client and
    test captures replace it after import)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


_handler = StdoutHandler()
_handler.addFilter(WithholdExceptionMessages())
_handler.addFilter(RedactSecrets())
logger = Logger(service="qasite", logger_handler=_handler, json_serializer=ascii_json)
# Its lines are written by its own handler only, not again by the root logger's (settings.LOGGING).
logging.getLogger("qasite").propagate = False


def invocation_keys(context, cold_start: bool) -> dict:
    """The keys every log line of an invocation carries, named as Powertools' own
    ``inject_lambda_context`` names them (absent ones left out: a local run has no context)."""
    keys = {
        "cold_start": cold_start,
        "function_request_id": getattr(context, "aws_request_id", None),
        "function_name": getattr(context, "function_name", None),
        "function_memory_size": getattr(context, "memory_limit_in_mb", None),
        "function_arn": getattr(context, "invoked_function_arn", None),
    }
    return {name: value for name, value in keys.items() if value is not None}


def traced(handler):
    """``handler`` inside an X-Ray segment when settings.QA_TRACING is on (importing the X-Ray
    SDK costs the cold start about 0.3 s, so it is off by default); ``handler`` itself otherwise.
    The handler's ColdStart annotation is Powertools' own flag: reset_cold_start() resets it."""
    if not settings.QA_TRACING:
        return handler
    try:
        import aws_xray_sdk  # noqa: F401  (Powertools imports it lazily; fail at init, clearly)
    except ImportError as error:
        raise ImproperlyConfigured(
            "QA_TRACING=1 needs the X-Ray SDK in the function: requirements/tracing.txt"
        ) from error
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service="qasite")
    return tracer.capture_lambda_handler(handler, capture_response=False, capture_error=False)


def reset_cold_start() -> None:
    """Make the next invocation report a cold start to Powertools again: its Tracer keeps the
    flag in a module global set at import, which a SnapStart snapshot would carry into every
    restored instance. Call it after a restore (the handler's own flag is reset beside it)."""
    tracing = sys.modules.get("aws_lambda_powertools.tracing.tracer")
    if tracing is not None:
        tracing.is_cold_start = True
