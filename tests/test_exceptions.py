"""qa/exceptions.py: each of qasite's errors becomes its HTTP response in the one handler."""

import pytest
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import NotFound

from qa.exceptions import exception_handler
from qa.reader.errors import BatchTooLarge, InvalidQuestion, ModelUnavailable


class BatchView:
    """A view whose request was a batch: the field at fault is under its question's index."""

    def error_path(self, error):
        return (str(error.index), error.field)


TOO_LARGE = (
    "This batch holds 11 characters of questions and contexts; one call may hold at most 10. "
    "Send it as smaller batches."
)


def invalid_context(index: int = 0) -> InvalidQuestion:
    error = InvalidQuestion("Too many windows.", field="context")
    error.index = index
    return error


@pytest.mark.parametrize(
    ("error", "view", "status", "body", "retry_after"),
    [
        (invalid_context(), None, 400, {"context": ["Too many windows."]}, None),
        (invalid_context(2), BatchView(), 400, {"2": {"context": ["Too many windows."]}}, None),
        (
            ModelUnavailable("The model is loading.", 7),
            None,
            503,
            {"detail": "The model is loading."},
            "7",
        ),
        (BatchTooLarge(11, 10), None, 413, {"detail": TOO_LARGE}, None),
        (
            RequestDataTooBig("Django's message"),
            None,
            413,
            {"detail": "The request body is larger than the limit of 1000 bytes."},
            None,
        ),
        (NotFound(), None, 404, {"detail": "Not found."}, None),  # DRF's own, as DRF maps them
    ],
    ids=[
        "invalid question",
        "invalid question in a batch",
        "model unavailable",
        "batch too large",
        "body too large",
        "DRF's own",
    ],
)
def test_each_error_has_its_status_body_and_retry_after(
    settings, error, view, status, body, retry_after
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = exception_handler(error, {"view": view})
    assert (response.status_code, response.data) == (status, body)
    assert response.headers.get("Retry-After") == retry_after


def test_other_errors_are_left_to_django_as_500s():
    assert exception_handler(RuntimeError("a bug"), {"view": None}) is None
