"""The shared field validators (the form's and the serializers' own tests check their messages)."""

import pytest
from django.core.exceptions import ValidationError

from qa.validators import validate_not_blank


@pytest.mark.parametrize("value", ["", " ", "\t\n", "\u3000", " \u00a0 "])
def test_nothing_but_whitespace_is_blank(value):
    with pytest.raises(ValidationError) as raised:
        validate_not_blank(value)
    assert raised.value.code == "blank"


@pytest.mark.parametrize("value", ["x", "  What is my name?  ", "\u200b"])
def test_text_with_anything_else_passes_as_it_is(value):
    assert validate_not_blank(value) is None
