import io
import json
import string
from urllib.parse import urlencode

import pytest
from django.test import RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request

from qa.parsers import ContentNegotiation, JSONParser, form_not_utf8, is_json_document
from tests.properties import LINE_ENDING_CASES


def parse(raw: str | bytes, media_type="application/json"):
    raw = raw.encode() if isinstance(raw, str) else raw
    context = {"encoding": "latin-1"} if "latin-1" in media_type else {}
    return JSONParser().parse(io.BytesIO(raw), media_type, context)


def test_json_is_parsed_as_drf_parses_it():
    assert parse('[{"question": "Who?", "context": "Kit"}]') == [
        {"question": "Who?", "context": "Kit"}
    ]


def test_json_nested_too_deeply_is_a_parse_error_not_a_crash():
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("[" * 100_000 + "]" * 100_000)


def test_json_is_read_as_utf8_whatever_charset_is_declared():
    body = json.dumps({"context": "café 東京"}, ensure_ascii=False).encode()
    assert parse(body, "application/json; charset=latin-1") == {"context": "café 東京"}
    with pytest.raises(ParseError, match="can't decode byte 0xe9"):
        parse('{"context": "café"}'.encode("latin-1"), "application/json; charset=latin-1")


@pytest.mark.parametrize("case", list(LINE_ENDING_CASES))
@pytest.mark.parametrize("media_type", ["json", "form", "multipart"])
def test_every_parser_gives_the_text_as_sent(case, media_type):
    """CR, CRLF, mixed line endings and blank ends survive each parser of the API unchanged."""
    context, _ = LINE_ENDING_CASES[case]
    if media_type == "json":
        assert parse(json.dumps({"context": context})) == {"context": context}
        return
    factory = RequestFactory()
    if media_type == "form":
        django_request = factory.post("/", urlencode({"context": context}), content_type=FORM)
        parser = FormParser()
    else:
        django_request = factory.post("/", {"context": context})  # multipart
        parser = MultiPartParser()
    request = Request(django_request, parsers=[parser])
    assert request.data["context"] == context


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"question": "Who?"}', True),
        (b' [{"question": "Who?"}]\n', True),
        ('{"q": "東京"}'.encode("utf-16"), True),
        (b"{}", True),
        (b'"a string"', False),
        (b"3", False),
        (b"question=Who%3F&context=Kit", False),
        (b"{not json", False),
        (b"[" * 100_000 + b"]" * 100_000, False),
        (b'{"q": "\xff"}', False),
        (b"", False),
    ],
)
def test_what_counts_as_a_json_document(body, expected):
    assert is_json_document(body) is expected


PARSERS = [JSONParser(), FormParser(), MultiPartParser()]
FORM = "application/x-www-form-urlencoded"
JSON_BODY = json.dumps({"question": "Who?", "context": "Kit"})


def select(body: str, content_type: str | None):
    extra = {"content_type": content_type} if content_type is not None else {}
    request = Request(RequestFactory().generic("POST", "/api/answer/", body, **extra))
    return ContentNegotiation().select_parser(request, PARSERS)


@pytest.mark.parametrize(
    ("content_type", "parser"),
    [
        ("application/json", JSONParser),
        ("application/json; charset=utf-8", JSONParser),
        ("application/x-www-form-urlencoded", None),
        ("text/plain", None),
        ("", None),
    ],
)
def test_a_json_body_gets_the_json_parser_or_a_415_naming_the_header(content_type, parser):
    if parser:
        assert isinstance(select(JSON_BODY, content_type), parser)
        return
    with pytest.raises(UnsupportedMediaType) as raised:
        select(JSON_BODY, content_type)
    assert 'send it with "Content-Type: application/json"' in str(raised.value.detail)


def test_other_bodies_are_negotiated_as_drf_does():
    assert isinstance(select("question=Who%3F", "application/x-www-form-urlencoded"), FormParser)
    assert select("Who?", "text/plain") is None  # DRF's own 415


# Form data by declared charset: (Content-Type, the body's encoding, refused)
FORM_CHARSETS = [
    ("application/x-www-form-urlencoded", "utf-8", False),
    ("application/x-www-form-urlencoded; charset=utf-8", "utf-8", False),
    ("application/x-www-form-urlencoded; charset=UTF8", "utf-8", False),
    ("application/x-www-form-urlencoded; charset=no-such-charset", "utf-8", False),  # as Django
    ("application/x-www-form-urlencoded; charset=utf-16", "utf-16", True),
    ("application/x-www-form-urlencoded; charset=utf-16le", "utf-16-le", True),
    ("application/x-www-form-urlencoded; charset=iso-8859-1", "latin-1", True),
    ("application/x-www-form-urlencoded; charset=us-ascii", "ascii", True),
    ("multipart/form-data; boundary=x; charset=utf-16", "utf-16", True),
    ("multipart/form-data; boundary=x; charset=shift_jis", "shift_jis", True),
]


@pytest.mark.parametrize(("content_type", "encoding", "refused"), FORM_CHARSETS)
def test_form_data_in_a_charset_other_than_utf8_is_a_415_that_says_so(
    content_type, encoding, refused
):
    """The review: a form body with charset=utf-16 came back as one garbled "Unknown field."
    Django's own form parsing refuses any charset but UTF-8; the API says so too."""
    body = "question=Qui%3F&context=K%C3%A9vin".encode(encoding)
    if not refused:
        assert isinstance(select(body, content_type), (FormParser, MultiPartParser))
        return
    with pytest.raises(UnsupportedMediaType, match="Form data is read as UTF-8") as raised:
        select(body, content_type)
    assert "charset=" in str(raised.value.detail)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
MEDIA_TYPE_TOKENS = st.text(
    alphabet=string.ascii_lowercase + string.digits + "+-.", min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None)
@given(
    document=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)
    | st.lists(JSON_VALUES, max_size=4),
    content_type=st.sampled_from(["", FORM, "multipart/form-data; boundary=x", "text/plain"])
    | st.builds("{}/{}".format, MEDIA_TYPE_TOKENS, MEDIA_TYPE_TOKENS),
    ensure_ascii=st.booleans(),
)
def test_any_json_document_under_any_other_content_type_is_told_which_header_to_send(
    document, content_type, ensure_ascii
):
    body = json.dumps(document, ensure_ascii=ensure_ascii)
    if content_type.split(";")[0] == "application/json":
        assert isinstance(select(body, content_type), JSONParser)
        return
    with pytest.raises(UnsupportedMediaType, match='send it with "Content-Type: application/json"'):
        select(body, content_type)


@given(st.dictionaries(st.text(), st.text()))
def test_any_text_sent_as_form_data_is_utf8(fields):
    assert form_not_utf8(urlencode(fields).encode()) is None


@pytest.mark.parametrize(
    ("body", "byte"),
    [
        (b"context=K%FFt", 0xFF),
        (b"question=%C3&context=x", 0xC3),  # a sequence cut short
        (b"context=K\xe9t", 0xE9),  # a raw byte, not %-escaped
        (b"a=%ED%A0%80", 0xED),  # an encoded surrogate
    ],
)
def test_form_data_that_is_not_utf8_says_which_byte(body, byte):
    assert f"byte 0x{byte:02x}" in form_not_utf8(body)
