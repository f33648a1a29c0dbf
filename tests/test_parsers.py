import io

import pytest
from rest_framework.exceptions import ParseError

from qa.parsers import JSONParser


def parse(raw: str):
    return JSONParser().parse(io.BytesIO(raw.encode()), "application/json", {})


def test_json_is_parsed_as_drf_parses_it():
    assert parse('[{"question": "Who?", "context": "Kit"}]') == [{"question": "Who?", "context": "Kit"}]


def test_json_nested_too_deeply_is_a_parse_error_not_a_crash():
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("[" * 100_000 + "]" * 100_000)
