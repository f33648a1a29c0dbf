"""The reader's, loader's and service's errors: what each says and keeps."""

import pytest

from qa.reader.errors import (
    BatchTooLarge,
    InvalidQuestion,
    ModelLoadError,
    ModelUnavailable,
    TooMuchWork,
    one_line,
)


def test_a_load_error_keeps_its_detail_apart_from_the_reason_users_see():
    error = ModelLoadError("The model weights could not be loaded.", "No file /srv/model.onnx")
    assert error.reason == "The model weights could not be loaded."
    assert "/srv" not in error.reason and "/srv/model.onnx" in str(error)
    assert str(ModelLoadError("No tokenizer.")) == "No tokenizer."


def test_the_errors_carry_what_the_http_layer_needs():
    assert ModelUnavailable("loading", retry_after=5).retry_after == 5
    invalid = InvalidQuestion("too long", field="doc_stride")
    assert (invalid.field, invalid.index) == ("doc_stride", 0)
    batch = BatchTooLarge(900_000, 500_000)
    assert (batch.characters, batch.limit) == (900_000, 500_000) and "500000" in str(batch)
    work = TooMuchWork(200_000, 131_072)
    assert (work.tokens, work.limit) == (200_000, 131_072) and "131072" in str(work)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValueError("bad value"), "ValueError: bad value"),
        (ValueError("  first\nsecond\nthird  "), "ValueError: first (+2 lines)"),
        (RuntimeError(""), "RuntimeError"),
        (KeyError("x"), "KeyError: 'x'"),
    ],
)
def test_one_line_keeps_the_type_and_first_line(error, expected):
    assert one_line(error) == expected


def test_one_line_is_cut_at_its_limit():
    text = one_line(ValueError("x" * 1000), limit=40)
    assert len(text) == 40 and text.endswith("\u2026")
