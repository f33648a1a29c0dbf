"""The one place where errors become HTTP responses: DRF's exception handler, extended to
qasite's own errors (qa/reader/errors.py) and to Django's refusal of a body over the upload limit.

Both JSON APIs go through it (the Hugging Face endpoint reshapes its bodies afterwards, see
qa/huggingface.py); views raise, they do not translate.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from qa.reader.errors import BatchTooLarge, InvalidQuestion, ModelUnavailable, TooMuchWork


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class BatchTooLargeError(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "batch_too_large"


class ModelUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "model_unavailable"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.wait = retry_after  # DRF turns this into a Retry-After header


def invalid_question_path(error: InvalidQuestion, view) -> tuple[str, ...]:
    """Where the input at fault is in the request body: the view's ``error_path`` says so for its
    request's shape (a batch's index, HF's ``inputs``/``parameters``); else the field's name."""
    error_path = getattr(view, "error_path", None)
    return error_path(error) if error_path else (error.field,)


def nested(path: tuple[str, ...], messages: list[str]) -> dict:
    """``{"0": {"context": [messages]}}`` for the path ("0", "context")."""
    detail = messages
    for key in reversed(path):
        detail = {key: detail}
    return detail


def as_api_exception(exc, view):
    """The DRF exception for one of qasite's errors (or Django's RequestDataTooBig); any other
    exception as it is."""
    if isinstance(exc, InvalidQuestion):
        return ValidationError(nested(invalid_question_path(exc, view), [str(exc)]))
    if isinstance(exc, ModelUnavailable):
        return ModelUnavailableError(str(exc), exc.retry_after)
    if isinstance(exc, BatchTooLarge | TooMuchWork):
        return BatchTooLargeError(str(exc))
    if isinstance(exc, RequestDataTooBig):  # Django's generic 400 otherwise
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    return exc


def exception_handler(exc, context):
    """DRF's handler, after turning qasite's errors into the HTTP errors they are: 400 for an
    invalid question (at its field), 413 for a body or batch over its limit (characters, or the
    model's work), 503 with Retry-After
    when the model is unavailable."""
    return drf_exception_handler(as_api_exception(exc, context.get("view")), context)
