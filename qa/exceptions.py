"""API errors beyond DRF's own, and the handler that maps Django's to them."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler as drf_exception_handler


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than the limit of {limit} bytes.")


class BatchTooLarge(APIException):
    """A batch whose questions and contexts hold more characters than one call may: the work of
    a call grows with its text, and must end well within the function's timeout."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "batch_too_large"

    def __init__(self, characters: int):
        limit = settings.QA_MAX_BATCH_CHARS
        super().__init__(
            f"This batch holds {characters} characters of questions and contexts; one call may "
            f"hold at most {limit}. Send it as smaller batches."
        )


class TooMuchWork(APIException):
    """A batch whose questions each fit, but together would put more tokens through the model
    than one call may (qa.services.TooMuchWork; the detail says the bound)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "batch_too_large"


class ModelUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "model_unavailable"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.wait = retry_after  # DRF turns this into a Retry-After header


def exception_handler(exc, context):
    """DRF's handler, plus 413 (not Django's generic 400) for a body over the upload limit."""
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    return drf_exception_handler(exc, context)
