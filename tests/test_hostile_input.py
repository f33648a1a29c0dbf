"""Hostile and odd input at the three entry points: the JSON API, the HTML form and Lambda events.

Each case names what is sent and what must come back: the status, and the message (the error of
the field at fault, DRF's detail, or the page's error); a 200 must hold answers whose offsets
index the context as sent. No case may get a 500. The tiny random model answers: its answers
mean nothing, but their offsets must still be right.
"""

import base64
import json
import re
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

import pytest
from django.test import Client

from qa.reader.examples import KIT_HO
from tests.helpers import invoke
from tests.lambda_events import KINDS, api_post, body_of, form_post, header, make_event
from tests.properties import assert_consistent_answers

KIT_HO_JSON = json.dumps(KIT_HO)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=BoUnDaRy"
UPLOAD_LIMIT = 5 * 1024 * 1024
OVER_THE_UPLOAD_LIMIT = "x" * UPLOAD_LIMIT
HTML = '<script>alert(1)</script><b onclick="x()">Kit</b> &amp; Mak'
UNICODE_CONTEXTS = {
    "emoji": "My name is Kit 😀👩‍👩‍👧 and I come from 🇭🇰 Hong Kong.",
    "cjk": "我叫麥傑豪，我來自香港。私の名前はキットです。",
    "rtl": "\u202bاسمي كيت هو ماك\u202c ו\u200fשמי קיט ממק\u200f from Hong Kong.",
    "combining": "Zalgo: k\u0301\u0302\u0303it m\u0300\u0301a\u0327k h\u0308o\u20dd",
    "zero-width": "Kit\u200bHo\u200c Mak\u200d from\u2060Hong\ufeffKong\u00ad.",
    "crlf-tabs": "line one\r\nI'm\tKit-Ho Mak\rfrom\x0bHong\x0cKong\x85end",
}


@dataclass
class Case:
    """One request and what must come back.

    ``at`` is where the message must be: a field name ("1.context" in a batch), "detail", "page"
    for the whole body, or "Allow" for that header. ``message`` is None for a 200, which must
    carry good answers. ``base64`` (Lambda only): the event carries ``data`` as its base64 body.
    """

    id: str
    data: object
    status: int
    message: str | None = None
    at: str = "detail"
    content_type: str = JSON
    method: str = "POST"
    base64: bool = False

    def __str__(self):
        return self.id

    def body(self) -> bytes:
        if isinstance(self.data, bytes):
            return self.data
        if isinstance(self.data, str):
            return self.data.encode()
        if self.content_type == FORM:
            return urlencode(self.data).encode()
        if self.content_type == MULTIPART:
            return multipart(self.data)
        return json.dumps(self.data, ensure_ascii=False).encode()  # raw UTF-8, as most send

    def requests(self) -> list[dict]:
        """The requests a 200 answers, to check the answers against."""
        return self.data if isinstance(self.data, list) else [self.data]


def multipart(fields: dict) -> bytes:
    parts = [
        f'--BoUnDaRy\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + "--BoUnDaRy--\r\n").encode()


def errors_at(body: dict, at: str) -> list[str]:
    """The messages at a dotted path of a DRF error body ("detail" is a single string)."""
    for key in at.split("."):
        body = body[key]
    return [body] if isinstance(body, str) else body


def assert_answers_each_request(case: Case, body) -> None:
    results = body if isinstance(body, list) else [body]
    requests = case.requests()
    assert len(results) == len(requests)
    for request, result in zip(requests, results, strict=True):
        top_k = int(request.get("top_k") or 1)  # absent or null: the default
        assert_consistent_answers(request["context"], result["answers"], top_k)
        best = {key: result[key] for key in ("answer", "score", "start", "end", "no_answer")}
        assert best == result["answers"][0]


# --- the JSON API -----------------------------------------------------------------------------

API_CASES = [
    # Bodies that do not parse.
    Case("malformed-json", "{not json", 400, "JSON parse error"),
    Case("truncated-json", '{"question": "Who?", "context": "Kit', 400, "JSON parse error"),
    Case("nested-too-deeply", "[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
    Case("nan", '{"question": "a", "context": "b", "top_k": NaN}', 400, "not JSON compliant"),
    Case("integer-of-5000-digits", '{"top_k": ' + "9" * 5000 + "}", 400, "4300 digits"),
    Case("utf8-bom", '\ufeff{"question": "a", "context": "b"}', 400, "BOM"),
    Case(
        "invalid-utf8", b'{"question": "\xff\xfe", "context": "abc"}', 400, "can't decode byte 0xff"
    ),
    Case(
        "lone-surrogate",
        '{"question": "Who\\ud800?", "context": "Kit"}',
        400,
        "Surrogate characters are not allowed",
        "question",
    ),
    Case(
        "nul-byte",
        '{"question": "Who?", "context": "Kit\\u0000Mak"}',
        400,
        "Null characters are not allowed.",
        "context",
    ),
    # Bodies that parse to something other than a request.
    Case("empty-body", "", 400, "This field is required.", "question"),
    Case("json-null", "null", 400, "No data provided", "non_field_errors"),
    Case("json-number", "3", 400, "Expected a dictionary, but got int.", "non_field_errors"),
    Case(
        "json-string",
        '"What is my name?"',
        400,
        "Expected a dictionary, but got str.",
        "non_field_errors",
    ),
    Case(
        "list-of-lists",
        [[KIT_HO]],
        400,
        "Expected a dictionary, but got list.",
        "0.non_field_errors",
    ),
    # Content types. JSON sent under another type (curl -d sends form data's) is a 415 that says
    # which header to send; JSON is read as UTF-8 whatever charset is declared (RFC 8259).
    *[
        Case(
            f"json-as-{name}",
            data,
            415,
            f'The body is JSON, but {said}: send it with "Content-Type: application/json".',
            content_type=content_type,
        )
        for name, data, content_type, said in [
            ("no-content-type", KIT_HO, "", "it has no Content-Type"),
            (
                "form-encoded",
                KIT_HO_JSON,
                FORM,
                'its Content-Type is "application/x-www-form-urlencoded"',
            ),
            ("form-encoded-batch", json.dumps([KIT_HO] * 2), FORM, f'its Content-Type is "{FORM}"'),
            (
                "form-encoded-with-ampersands",
                json.dumps({**KIT_HO, "context": "a=1&b=2 & c"}),
                FORM,
                f'its Content-Type is "{FORM}"',
            ),
            (
                "form-encoded-utf8",
                json.dumps({**KIT_HO, "context": "東京"}, ensure_ascii=False),
                f"{FORM}; charset=utf-8",
                f'its Content-Type is "{FORM}; charset=utf-8"',
            ),
            ("multipart", KIT_HO_JSON, MULTIPART, f'its Content-Type is "{MULTIPART}"'),
            ("text-plain", KIT_HO, "text/plain", 'its Content-Type is "text/plain"'),
            (
                "text-plain-utf8",
                KIT_HO,
                "text/plain;charset=UTF-8",
                'its Content-Type is "text/plain;charset=UTF-8"',
            ),
            ("text-json", KIT_HO, "text/json", 'its Content-Type is "text/json"'),
            (
                "vendor-json",
                KIT_HO,
                "application/vnd.api+json",
                'its Content-Type is "application/vnd.api+json"',
            ),
            (
                "octet-stream",
                KIT_HO,
                "application/octet-stream",
                'its Content-Type is "application/octet-stream"',
            ),
        ]
    ],
    Case(
        "text-plain",
        "Who am I?",
        415,
        'Unsupported media type "text/plain" in request.',
        content_type="text/plain",
    ),
    Case("xml", "<q>Who?</q>", 415, "Unsupported media type", content_type="application/xml"),
    Case("json-with-charset", KIT_HO, 200, content_type="application/json; charset=utf-8"),
    Case("json-with-charset-unspaced", KIT_HO, 200, content_type="application/json;charset=UTF-8"),
    Case("json-in-capitals", KIT_HO, 200, content_type="Application/JSON"),
    Case(
        "json-with-another-charset",
        {"question": "Who?", "context": "東京 café, Kit 東京 Mak é", "top_k": 20},
        200,
        content_type="application/json; charset=ISO-8859-1",
    ),  # read as UTF-8, as sent
    Case("json-with-unknown-charset", KIT_HO, 200, content_type="application/json; charset=bogus"),
    Case(
        "json-in-latin-1",
        '{"question": "Who?", "context": "café"}'.encode("latin-1"),
        400,
        "can't decode byte 0xe9",
        content_type="application/json; charset=latin-1",
    ),
    Case("form-encoded", {**KIT_HO, "top_k": "2"}, 200, content_type=FORM),  # the browsable API
    # Form data whose %-escapes are not UTF-8: Django would answer "K\ufffdt", another text.
    *[
        Case(
            f"form-not-utf8-{name}",
            body,
            400,
            f"Form data must be UTF-8 text: byte 0x{byte}",
            content_type=FORM,
        )
        for name, body, byte in [
            ("context", b"question=Who%3F&context=I+am+K%FFt.", "ff"),
            ("question", b"question=Wh%FF%3F&context=Kit", "ff"),
            ("raw-byte", b"question=Who&context=K\xe9t", "e9"),
            ("cut-sequence", b"question=Who&context=K%C3", "c3"),
        ]
    ],
    Case("multipart", {**KIT_HO, "handle_impossible_answer": "true"}, 200, content_type=MULTIPART),
    Case(
        "form-encoded-csrf-token-ignored",
        {**KIT_HO, "csrfmiddlewaretoken": "x"},
        200,
        content_type=FORM,
    ),
    Case(
        "form-encoded-unknown-field",
        {**KIT_HO, "topk": "2"},
        400,
        "Unknown field.",
        "topk",
        content_type=FORM,
    ),
    Case(
        "multipart-without-boundary",
        multipart(KIT_HO),
        400,
        "Invalid boundary",
        content_type="multipart/form-data",
    ),
    # Missing, null, blank and mistyped fields.
    Case("missing-question", {"context": "Kit"}, 400, "This field is required.", "question"),
    Case("null-question", {**KIT_HO, "question": None}, 400, "may not be null.", "question"),
    Case("empty-context", {**KIT_HO, "context": ""}, 400, "may not be blank.", "context"),
    Case(
        "whitespace-only-question",
        {**KIT_HO, "question": " \t\n\u3000\u00a0"},
        400,
        "may not be blank.",
        "question",
    ),
    Case("number-question", {**KIT_HO, "question": 42}, 400, "Not a valid string.", "question"),
    Case("number-context", {**KIT_HO, "context": 1e2}, 400, "Not a valid string.", "context"),
    Case("list-context", {**KIT_HO, "context": ["Kit"]}, 400, "Not a valid string.", "context"),
    Case(
        "object-question",
        {**KIT_HO, "question": {"text": "Who?"}},
        400,
        "Not a valid string.",
        "question",
    ),
    Case("boolean-question", {**KIT_HO, "question": True}, 400, "Not a valid string.", "question"),
    # Options out of range or of the wrong type.
    Case("top-k-0", {**KIT_HO, "top_k": 0}, 400, "greater than or equal to 1.", "top_k"),
    Case("top-k-21", {**KIT_HO, "top_k": 21}, 400, "less than or equal to 20.", "top_k"),
    Case("top-k-fraction", {**KIT_HO, "top_k": 1.5}, 400, "A valid integer is required.", "top_k"),
    Case("top-k-boolean", {**KIT_HO, "top_k": True}, 400, "A valid integer is required.", "top_k"),
    Case("top-k-null", {**KIT_HO, "top_k": None}, 200),  # null: the default
    Case("top-k-numeric-string", {**KIT_HO, "top_k": "3"}, 200),
    Case("top-k-integral-float", {**KIT_HO, "top_k": 2.0}, 200),
    Case(
        "doc-stride-0",
        {**KIT_HO, "doc_stride": 0},
        400,
        "greater than or equal to 1.",
        "doc_stride",
    ),
    Case(
        "doc-stride-513",
        {**KIT_HO, "doc_stride": 513},
        400,
        "less than or equal to 512.",
        "doc_stride",
    ),
    Case(
        "max-seq-len-15",
        {**KIT_HO, "max_seq_len": 15},
        400,
        "greater than or equal to 16.",
        "max_seq_len",
    ),
    Case(
        "max-seq-len-513",
        {**KIT_HO, "max_seq_len": 513},
        400,
        "less than or equal to 512.",
        "max_seq_len",
    ),
    Case(
        "max-answer-len-0",
        {**KIT_HO, "max_answer_len": 0},
        400,
        "greater than or equal to 1.",
        "max_answer_len",
    ),
    Case(
        "max-question-len-600",
        {**KIT_HO, "max_question_len": 600},
        400,
        "less than or equal to 512.",
        "max_question_len",
    ),
    Case(
        "max-question-len-word",
        {**KIT_HO, "max_question_len": "ten"},
        400,
        "A valid integer is required.",
        "max_question_len",
    ),
    Case(
        "boolean-maybe",
        {**KIT_HO, "handle_impossible_answer": "maybe"},
        400,
        "Must be a valid boolean.",
        "handle_impossible_answer",
    ),
    Case(
        "boolean-2",
        {**KIT_HO, "align_to_words": 2},
        400,
        "Must be a valid boolean.",
        "align_to_words",
    ),
    Case("boolean-as-string", {**KIT_HO, "handle_impossible_answer": "true", "top_k": 3}, 200),
    Case("boolean-as-0", {**KIT_HO, "align_to_words": 0}, 200),
    Case("unknown-field", {**KIT_HO, "topk": 3}, 400, "Unknown field.", "topk"),
    Case("unknown-empty-name", {**KIT_HO, "": 1}, 400, "Unknown field.", ""),
    # Window shapes the engine cannot work with.
    Case(
        "doc-stride-over-max-seq-len",
        {"question": "who", "context": "a " * 600, "doc_stride": 300, "max_seq_len": 256},
        400,
        "doc_stride (300) must be smaller than that",
        "doc_stride",
    ),
    Case(
        "doc-stride-over-max-seq-len-context-fits",
        {**KIT_HO, "doc_stride": 300, "max_seq_len": 256},
        200,
    ),
    Case(
        "question-leaves-no-room",
        {
            "question": "a b c d e f g h i j k l m n o p",
            "context": "Kit",
            "max_question_len": 512,
            "max_seq_len": 16,
            "doc_stride": 1,
        },
        400,
        "leaves no room",
        "question",
    ),
    Case(
        "context-fits-beside-a-long-question",
        {"question": "What is my name, please?", "context": "Kit", "max_seq_len": 18},
        200,
    ),
    Case(
        "too-many-windows",
        {"question": "who", "context": "a " * 9999, "max_seq_len": 512, "doc_stride": 507},
        400,
        "windows of 512 tokens",
        "doc_stride",
    ),
    Case("top-k-as-many-as-token-pairs", {"question": "who is", "context": "a", "top_k": 13}, 200),
    # Issue 10: answers past the end of the context, and empty candidates scoring 0.
    Case(
        "typed-special-tokens",
        {"question": "Is it sunny today? [CLS]", "context": "Rain. [SEP]", "top_k": 5},
        200,
    ),
    Case("top-k-beyond-the-spans", {"question": "a?", "context": "abc", "top_k": 3}, 200),
    # Sizes.
    Case(
        "question-over-limit",
        {**KIT_HO, "question": "q" * 501},
        400,
        "no more than 500 characters.",
        "question",
    ),
    Case(
        "context-over-limit",
        {**KIT_HO, "context": "c" * 20_001},
        400,
        "no more than 20000 characters.",
        "context",
    ),
    Case("one-20000-character-word", {**KIT_HO, "context": "a" * 20_000}, 200),
    Case(
        "question-over-max-question-len-tokens",
        {**KIT_HO, "question": "who is it " * 40, "max_question_len": 8},
        200,
    ),
    Case(
        "body-over-the-upload-limit",
        {**KIT_HO, "context": OVER_THE_UPLOAD_LIMIT},
        413,
        f"larger than the limit of {UPLOAD_LIMIT} bytes",
    ),
    # Batches.
    Case("empty-batch", [], 400, "This list may not be empty.", "non_field_errors"),
    Case(
        "batch-over-the-limit", [KIT_HO] * 33, 400, "no more than 32 elements.", "non_field_errors"
    ),
    Case("batch-at-the-limit", [KIT_HO] * 31 + [{**KIT_HO, "top_k": 5}], 200),
    Case(
        "batch-over-the-character-bound",
        [{"question": "Who?", "context": "c" * 19_996}] * 5 + [{"question": "?", "context": "c"}],
        413,
        "holds 100002 characters",
    ),
    Case("batch-at-the-character-bound", [{"question": "Who?", "context": "a " * 9998}] * 5, 200),
    Case(
        "batch-with-a-bad-item",
        [KIT_HO, {"question": "Who?"}],
        400,
        "This field is required.",
        "1.context",
    ),
    Case(
        "batch-with-unreadable-item",
        [KIT_HO, {**KIT_HO, "context": "\u200b"}],
        400,
        "no text the model can read",
        "1.context",
    ),
    # Text the model may find odd; offsets must still index the context as sent.
    *[
        Case(f"context-{name}", {"question": "Who am I?", "context": context, "top_k": 5}, 200)
        for name, context in UNICODE_CONTEXTS.items()
    ],
    Case("context-without-word-characters", {**KIT_HO, "context": "!!! ??? ... --- ;;;"}, 200),
    Case(
        "context-of-zero-width-characters",
        {**KIT_HO, "context": "\u200b\u200d\ufeff"},
        400,
        "no text the model can read",
        "context",
    ),
    Case(
        "context-of-combining-marks",
        {**KIT_HO, "context": "\u0301\u0302" * 5},
        400,
        "no text the model can read",
        "context",
    ),
    Case("question-of-control-characters", {**KIT_HO, "question": "\x01\x02\x7f?"}, 200),
    Case("html-context", {"question": "Who?", "context": HTML, "top_k": 20}, 200),
    # Methods.
    *[
        Case(
            f"method-{method.lower()}",
            KIT_HO,
            405,
            f'Method "{method}" not allowed.',
            method=method,
        )
        for method in ["PUT", "PATCH", "DELETE", "TRACE"]
    ],
]


@pytest.mark.parametrize("case", API_CASES, ids=str)
def test_json_api(client, tiny_model_settings, case):
    response = client.generic(
        case.method,
        "/api/answer/",
        case.body(),
        content_type=case.content_type,
        HTTP_ACCEPT=JSON,
    )
    assert response.status_code == case.status, response.content[:500]
    body = response.json()
    if case.status == 200:
        assert_answers_each_request(case, body)
    else:
        assert any(case.message in message for message in errors_at(body, case.at)), body
    if case.status == 405:
        assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_json_api_returns_html_in_the_context_verbatim(client, tiny_model_settings):
    response = client.post(
        "/api/answer/", {"question": "Who?", "context": HTML, "top_k": 20}, content_type=JSON
    )
    answers = response.json()["answers"]
    assert any(set('<>&"') & set(answer["answer"]) for answer in answers)
    assert "&lt;" not in response.content.decode() and "\\u003c" not in response.content.decode()


def test_json_api_refuses_a_disallowed_host(client, tiny_model_settings):
    response = client.post("/api/answer/", KIT_HO, content_type=JSON, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "bad request" in response.content.decode().lower()
    assert "Traceback" not in response.content.decode()


# --- the HTML form ----------------------------------------------------------------------------

PAGE_CASES = [
    Case("answered", {**KIT_HO, "top_k": "3"}, 200, content_type=FORM),
    Case("multipart", {**KIT_HO, "top_k": "1"}, 200, content_type=MULTIPART),
    Case(
        "blank-question",
        {**KIT_HO, "question": " \t ", "top_k": "1"},
        400,
        "This field may not be blank.",
        "question",
        content_type=FORM,
    ),
    Case(
        "missing-context",
        {"question": "Who?", "top_k": "1"},
        400,
        "This field is required.",
        "context",
        content_type=FORM,
    ),
    Case("missing-top-k", KIT_HO, 400, "This field is required.", "top_k", content_type=FORM),
    Case(
        "top-k-word",
        {**KIT_HO, "top_k": "three"},
        400,
        "Enter a whole number.",
        "top_k",
        content_type=FORM,
    ),
    Case(
        "top-k-fraction",
        {**KIT_HO, "top_k": "1.5"},
        400,
        "Enter a whole number.",
        "top_k",
        content_type=FORM,
    ),
    Case(
        "top-k-0",
        {**KIT_HO, "top_k": "0"},
        400,
        "greater than or equal to 1.",
        "top_k",
        content_type=FORM,
    ),
    Case(
        "top-k-21",
        {**KIT_HO, "top_k": "21"},
        400,
        "less than or equal to 20.",
        "top_k",
        content_type=FORM,
    ),
    Case(
        "top-k-of-5000-digits",
        {**KIT_HO, "top_k": "9" * 5000},
        400,
        "Enter a whole number.",
        "top_k",
        content_type=FORM,
    ),
    Case(
        "question-over-limit",
        {**KIT_HO, "question": "q" * 501, "top_k": "1"},
        400,
        "at most 500 characters (it has 501).",
        "question",
        content_type=FORM,
    ),
    Case(
        "context-over-limit",
        {**KIT_HO, "context": "c" * 20_001, "top_k": "1"},
        400,
        "at most 20000 characters (it has 20001).",
        "context",
        content_type=FORM,
    ),
    Case(
        "nul-byte",
        {**KIT_HO, "context": "Kit\x00Mak", "top_k": "1"},
        400,
        "Null characters are not allowed.",
        "context",
        content_type=FORM,
    ),
    Case(
        "unreadable-context",
        {**KIT_HO, "context": "\u200b\u200b", "top_k": "1"},
        400,
        "no text the model can read",
        "context",
        content_type=FORM,
    ),
    Case(
        "boolean-maybe",
        {**KIT_HO, "handle_impossible_answer": "maybe", "top_k": "2"},
        200,
        content_type=FORM,
    ),  # a checkbox: anything but "false"/"0"/"" is ticked
    Case("unknown-field", {**KIT_HO, "top_k": "1", "topk": "3"}, 200, content_type=FORM),
    Case(
        "one-20000-character-word",
        {**KIT_HO, "context": "a" * 20_000, "top_k": "1"},
        200,
        content_type=FORM,
    ),
    *[
        Case(
            f"context-{name}",
            {"question": "Who am I?", "context": context, "top_k": "5"},
            200,
            content_type=FORM,
        )
        for name, context in UNICODE_CONTEXTS.items()
    ],
    Case(
        "invalid-utf8",
        b"question=%FF%FE&context=Kit+Mak&top_k=1",
        400,
        "Bad request",
        "page",
        content_type=FORM,
    ),
    Case(
        "not-utf8-charset",
        b"question=Who&context=Kit&top_k=1",
        400,
        "Bad request",
        "page",
        content_type=f"{FORM}; charset=latin-1",
    ),
    Case(
        "too-many-fields",
        "&".join(f"f{i}=1" for i in range(1001)),
        400,
        "Bad request",
        "page",
        content_type=FORM,
    ),
    Case(
        "body-over-the-upload-limit",
        {**KIT_HO, "context": OVER_THE_UPLOAD_LIMIT, "top_k": "1"},
        400,
        "Bad request",
        "page",
        content_type=FORM,
    ),
    Case("json-body", KIT_HO, 200, "The answer will appear here", "page"),  # an empty form
    *[
        Case(f"method-{method.lower()}", {}, 405, "GET, HEAD, POST", "Allow", method=method)
        for method in ["PUT", "PATCH", "DELETE", "OPTIONS"]
    ],
]


@pytest.fixture
def csrf_client():
    """A browser before a real server: CSRF checks on, the token the page hands out, and errors
    as the pages a server sends rather than exceptions."""
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.get("/")
    browser.token = browser.cookies["csrftoken"].value
    return browser


def field_errors(html: str, field: str) -> str:
    """The inline error list under one of the page's fields."""
    return re.search(rf'id="id_{field}-errors">(.*?)</div>', html, re.S).group(1)


@pytest.mark.parametrize("case", PAGE_CASES, ids=str)
def test_html_form(csrf_client, tiny_model_settings, case):
    response = csrf_client.generic(
        case.method,
        "/",
        case.body(),
        content_type=case.content_type,
        HTTP_X_CSRFTOKEN=csrf_client.token,
    )
    assert response.status_code == case.status, response.content[:500]
    html = response.content.decode()
    assert "Traceback" not in html
    if case.message is None:
        asked, result = response.context["form"].cleaned_data, response.context["result"]
        assert_consistent_answers(asked["context"], result["answers"], asked["top_k"])
        if not result["no_answer"]:
            assert f"<mark>{escape(result['answer'])}</mark>" in html
    elif case.at == "page":
        assert case.message.lower() in html.lower()
    elif case.at == "Allow":
        assert response["Allow"] == case.message
    else:
        assert escape(case.message) in field_errors(html, case.at)
        assert response.context["result"] is None


def test_html_form_escapes_html_in_the_context(csrf_client, tiny_model_settings):
    data = {
        "question": "Who?",
        "context": HTML,
        "top_k": "5",
        "csrfmiddlewaretoken": csrf_client.token,
    }
    html = csrf_client.post("/", data).content.decode()
    assert "<script>alert(1)</script>" not in html and 'onclick="x()"' not in html
    assert escape(HTML) in html  # the textarea gives the context back, escaped


@pytest.mark.parametrize("token", [None, "wrong" * 8], ids=["no-token", "wrong-token"])
def test_html_form_without_a_valid_csrf_token_is_a_403_page(
    csrf_client, tiny_model_settings, token
):
    data = {**KIT_HO, "top_k": "1", **({"csrfmiddlewaretoken": token} if token else {})}
    response = csrf_client.post("/", data)
    assert response.status_code == 403
    html = response.content.decode()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "Traceback" not in html and KIT_HO["context"] not in html


# --- Lambda events ----------------------------------------------------------------------------

LAMBDA_CASES = [
    Case("not-base64", "not base64!!!", 400, "not valid base64", base64=True),
    Case(
        "base64-of-invalid-utf8", b'{"question": "\xff", "context": "Kit"}', 400, "JSON parse error"
    ),
    Case("base64-of-binary", bytes(range(256)), 400, "JSON parse error"),
    Case("malformed-json", "{not json", 400, "JSON parse error"),
    Case("nested-too-deeply", "[" * 50_000 + "]" * 50_000, 400, "nested too deeply"),
    Case(
        "nul-byte",
        '{"question": "Who?", "context": "Kit\\u0000"}',
        400,
        "Null characters are not allowed.",
        "context",
    ),
    Case("unknown-field", {**KIT_HO, "topk": 2}, 400, "Unknown field.", "topk"),
    Case(
        "json-without-content-type",
        KIT_HO,
        415,
        "The body is JSON, but it has no Content-Type",
        content_type="",
    ),
    Case(
        "json-as-form-encoded",
        KIT_HO_JSON,
        415,
        'send it with "Content-Type: application/json"',
        content_type=FORM,
    ),
    Case(
        "batch-over-the-limit", [KIT_HO] * 33, 400, "no more than 32 elements.", "non_field_errors"
    ),
    Case(
        "body-over-the-upload-limit",
        {**KIT_HO, "context": OVER_THE_UPLOAD_LIMIT},
        413,
        f"larger than the limit of {UPLOAD_LIMIT} bytes",
    ),
    Case(
        "batch-over-the-character-bound",
        [{"question": "Who?", "context": "가" * 20_000}] * 32,
        413,
        "one call may hold at most 100000",
    ),
    Case(
        "unicode",
        [
            {"question": "Who am I?", "context": context, "top_k": 5}
            for context in UNICODE_CONTEXTS.values()
        ],
        200,
    ),
    Case("html-context", {"question": "Who?", "context": HTML, "top_k": 20}, 200),
    Case("method-put", KIT_HO, 405, 'Method "PUT" not allowed.', method="PUT"),
]


def lambda_event(kind: str, case: Case) -> dict:
    """The event API Gateway, an ALB or a function URL would send; binary bodies in base64."""
    headers = {"Accept": JSON, **({"Content-Type": case.content_type} if case.content_type else {})}
    event = make_event(kind, case.method, "/api/answer/", body="", headers=headers)
    raw = case.body()
    if case.base64:
        event["body"], event["isBase64Encoded"] = case.data, True
    elif isinstance(case.data, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    else:
        event["body"] = raw.decode()
    for key in ("headers", "multiValueHeaders"):
        if key in event:
            length = str(len(raw))
            event[key]["content-length"] = length if key == "headers" else [length]
    return event


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", LAMBDA_CASES, ids=str)
def test_lambda_event(lambda_settings, case, kind):
    response = invoke(lambda_event(kind, case))
    assert response["statusCode"] == case.status, body_of(response)[:500]
    body = json.loads(body_of(response))
    if case.status == 200:
        assert_answers_each_request(case, body)
    else:
        assert any(case.message in message for message in errors_at(body, case.at)), body


@pytest.mark.parametrize("kind", KINDS)
def test_lambda_refuses_a_disallowed_host(lambda_settings, kind):
    event = api_post(kind, KIT_HO, headers={"Host": "evil.example"})
    response = invoke(event)
    assert response["statusCode"] == 400
    assert "Traceback" not in body_of(response)


@pytest.mark.parametrize("kind", KINDS)
def test_lambda_form_post_without_csrf_token_is_a_403_page(lambda_settings, kind):
    event = make_event(
        kind, "POST", "/", body=urlencode({**KIT_HO, "top_k": 1}), headers={"Content-Type": FORM}
    )
    response = invoke(event)
    assert response["statusCode"] == 403
    assert header(response, "Content-Type").startswith("text/html")
    assert "Traceback" not in body_of(response)


@pytest.mark.parametrize("kind", KINDS)
def test_lambda_form_post_in_a_charset_other_than_utf8_is_a_400_page(lambda_settings, kind):
    """Django refuses to read such a body; its CSRF check and its 400 page both tried: a 500."""
    event = form_post(kind, {**KIT_HO, "top_k": 1}, charset="latin-1")
    response = invoke(event)
    assert response["statusCode"] == 400
    assert "Bad request" in body_of(response)
