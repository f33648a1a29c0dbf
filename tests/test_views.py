"""The HTML form, the JSON API, health and schema, through Django's test client."""

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.utils.html import escape
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qa import services
from qa.model.holder import LazyAnswerer
from qa.reader.examples import KIT_HO
from qa.reader.options import OPTION_NAMES
from tests.helpers import HEAVY, no_answer_best
from tests.properties import (
    LINE_ENDING_CASES,
    OPTIONS,
    answer_the_pattern,
    assert_consistent_answers,
    line_ended_texts,
    texts,
)


def post_json(client, data, **extra):
    return client.post("/api/answer/", json.dumps(data), content_type="application/json", **extra)


@pytest.fixture
def broken_model_settings(settings, tmp_path):
    settings.QA_MODEL = str(tmp_path / "missing-model")
    return settings


# --- JSON API ---------------------------------------------------------------------------------


def test_api_answers_with_best_answer_and_candidates(client, tiny_model_settings):
    response = post_json(client, {**KIT_HO, "top_k": 3})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"answer", "score", "start", "end", "no_answer", "windows", "answers"}
    assert len(body["answers"]) == 3  # the context has far more than three spans
    assert {k: body[k] for k in ("answer", "start", "end")} == {
        k: body["answers"][0][k] for k in ("answer", "start", "end")
    }
    for answer in body["answers"]:
        assert KIT_HO["context"][answer["start"] : answer["end"]] == answer["answer"]
        assert 0 <= answer["score"] <= 1


def test_api_batch_answers_each_request_in_order(client, tiny_model_settings):
    requests = [KIT_HO, {"question": "Where?", "context": "Paris is in France."}, KIT_HO]
    response = post_json(client, requests)
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 3
    assert body[0] == body[2]
    assert "Paris is in France."[body[1]["start"] : body[1]["end"]] == body[1]["answer"]


def test_api_no_answer_is_explicit(client, tiny_model_settings, monkeypatch):
    """When the model scores "no answer" ([CLS]) best, the API says so: no_answer true, an empty
    answer at 0:0, best and once among the candidates, the spans after it."""

    monkeypatch.setattr(services.lazy_answerer().get(), "_forward", no_answer_best)
    response = post_json(client, {**KIT_HO, "handle_impossible_answer": True, "top_k": 5})
    assert response.status_code == 200
    body = response.json()
    assert (body["answer"], body["start"], body["end"], body["no_answer"]) == ("", 0, 0, True)
    assert [a["no_answer"] for a in body["answers"]] == [True, False, False, False, False]


def test_api_keeps_whitespace_so_offsets_index_the_context_as_sent(client, tiny_model_settings):
    context = "   \n  I'm Kit-Ho Mak.  "
    body = post_json(client, {"question": "  Who? ", "context": context}).json()
    assert context[body["start"] : body["end"]] == body["answer"]


# Every way a context reaches the service over HTTP (the page's form, the API's three media types).
POSTS = {
    "page form": lambda client, data: client.post("/", {**data, "top_k": 1}),
    "API JSON": post_json,
    "API url-encoded form": lambda client, data: client.post(
        "/api/answer/", urlencode(data), content_type="application/x-www-form-urlencoded"
    ),
    "API multipart form": lambda client, data: client.post("/api/answer/", data),
}


@pytest.mark.parametrize("post", list(POSTS))
@pytest.mark.parametrize("case", list(LINE_ENDING_CASES))
def test_every_post_gives_the_service_the_context_as_sent(client, monkeypatch, post, case):
    """CR, CRLF, mixed line endings, before and inside the answer, and blank ends: the service
    gets the context unchanged, so the offsets index the text as sent (on the page, the text the
    browser submitted: a textarea's is CRLF-ended, and the highlight is cut from that same text)."""
    context, expected = LINE_ENDING_CASES[case]
    calls = []
    monkeypatch.setattr(services, "answer_questions", answer_the_pattern(calls))
    response = POSTS[post](client, {"question": "Who?", "context": context})
    assert response.status_code == 200
    [question] = calls
    assert question["context"] == context
    if post == "page form":
        html = response.content.decode()
        before, after = context.split(expected)
        highlight = f"{escape(before)}<mark>{escape(expected)}</mark>{escape(after)}"
        assert f'tabindex="0">{highlight}</div>' in html
    else:
        body = response.json()
        assert context[body["start"] : body["end"]] == body["answer"] == expected


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(context=line_ended_texts(), post=st.sampled_from(sorted(set(POSTS) - {"page form"})))
def test_any_line_endings_and_blank_ends_get_offsets_into_the_context_as_sent(
    client, tiny_model_settings, context, post
):
    """The real engine, any mix of LF, CRLF and CR, blanks at the ends, in every media type."""
    response = POSTS[post](client, {"question": "What is my name?", "context": context})
    assert response.status_code == 200
    assert_consistent_answers(context, response.json()["answers"], 1)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"context": "x"}, "question", "This field is required."),
        ({**KIT_HO, "question": ""}, "question", "This field may not be blank."),
        ({**KIT_HO, "context": " \n\t "}, "context", "This field may not be blank."),
        ({**KIT_HO, "question": None}, "question", "This field may not be null."),
        ({**KIT_HO, "context": ["a"]}, "context", "Not a valid string."),
        ({**KIT_HO, "question": "q" * 501}, "question", "no more than 500 characters"),
        ({**KIT_HO, "context": "c" * 20_001}, "context", "no more than 20000 characters"),
        ({**KIT_HO, "top_k": 0}, "top_k", "greater than or equal to 1"),
        ({**KIT_HO, "top_k": 21}, "top_k", "less than or equal to 20"),
        ({**KIT_HO, "top_k": 1.5}, "top_k", "A valid integer is required."),
        ({**KIT_HO, "max_seq_len": 8}, "max_seq_len", "greater than or equal to 16"),
        (
            {**KIT_HO, "handle_impossible_answer": "maybe"},
            "handle_impossible_answer",
            "valid boolean",
        ),
        ({**KIT_HO, "topk": 3}, "topk", "Unknown field."),
        ({**KIT_HO, "context": "a\x00b"}, "context", "Null characters are not allowed."),
        (
            {"question": "who", "context": "a " * 600, "doc_stride": 300, "max_seq_len": 256},
            "doc_stride",
            "must be smaller",
        ),
        ({**KIT_HO, "context": "\u200b\u200b"}, "context", "no text the model can read"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(client, tiny_model_settings, data, field, message):
    response = post_json(client, data)
    assert response.status_code == 400
    errors = response.json()
    assert field in errors
    assert any(message in error for error in errors[field])


def test_api_batch_errors_name_the_item_and_field(client, tiny_model_settings):
    response = post_json(client, [KIT_HO, {"question": "q"}])
    assert response.status_code == 400
    assert response.json() == {"1": {"context": ["This field is required."]}}


def test_api_engine_error_in_a_batch_names_the_item(client, tiny_model_settings):
    response = post_json(client, [KIT_HO, {**KIT_HO, "context": "\u200b"}])
    assert response.status_code == 400
    assert set(response.json()) == {"1"}
    assert "no text the model can read" in response.json()["1"]["context"][0]


@pytest.mark.parametrize(
    ("data", "message"),
    [([], "may not be empty"), ([KIT_HO] * 33, "no more than 32")],
)
def test_api_batch_size_is_limited(client, tiny_model_settings, data, message):
    response = post_json(client, data)
    assert response.status_code == 400
    assert message in json.dumps(response.json())


def test_api_malformed_json_is_a_400(client, tiny_model_settings):
    response = client.post("/api/answer/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_api_non_object_json_is_a_400(client, tiny_model_settings):
    response = post_json(client, "just a string")
    assert response.status_code == 400


def test_api_unsupported_content_type_is_a_415(client, tiny_model_settings):
    response = client.post("/api/answer/", "question=x", content_type="text/plain")
    assert response.status_code == 415


def test_api_body_over_the_upload_limit_is_a_413(client, tiny_model_settings, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post_json(client, {**KIT_HO, "context": "x" * 2000})
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]


def test_api_batch_over_the_token_bound_is_a_413_naming_it(client, tiny_model_settings):
    """Each item fits alone (200 windows of 512 tokens); two would put 204,800 tokens through
    the model, over the 131,072 one call may: refused before any runs."""
    assert post_json(client, [HEAVY]).status_code == 200
    response = post_json(client, [HEAVY, HEAVY])
    assert response.status_code == 413
    assert response.json() == {
        "detail": "These questions would put 204800 tokens through the model (windows x "
        "max_seq_len, summed over the batch); one call may put at most 131072. Send them as "
        "smaller batches, or with fewer windows each (a lower doc_stride)."
    }


ALL_OPTIONS = sorted(OPTION_NAMES)  # every option the engine takes, in a stable order
# Options sent as null: (name, the options). null is the default, as if absent.
NULL_OPTIONS = {
    "doc_stride and max_seq_len (the browsable API's raw data)": {
        "doc_stride": None,
        "max_seq_len": None,
    },
    "every option": dict.fromkeys(ALL_OPTIONS),
    **{name: {name: None} for name in ALL_OPTIONS},
}


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
@pytest.mark.parametrize("case", NULL_OPTIONS)
def test_api_reads_a_null_option_as_its_default(client, tiny_model_settings, case, batch):
    request = {**KIT_HO, **NULL_OPTIONS[case]}
    response = post_json(client, [request, request] if batch else request)
    assert response.status_code == 200, response.content
    expected = post_json(client, [KIT_HO, KIT_HO] if batch else KIT_HO).json()
    assert response.json() == expected


def test_the_browsable_apis_raw_data_as_prefilled_is_answered(client, tiny_model_settings):
    from html import unescape

    page = client.get("/api/answer/", HTTP_ACCEPT="text/html").content.decode()
    raw = re.search(r'<textarea[^>]*name="_content"[^>]*>(.*?)</textarea>', page, re.S)
    prefilled = json.loads(unescape(raw.group(1)))
    response = post_json(client, {**prefilled, **KIT_HO})
    assert response.status_code == 200, response.content


def test_api_accepts_the_browsable_api_form_post(client, tiny_model_settings):
    response = client.post("/api/answer/", {**KIT_HO, "top_k": 2})
    assert response.status_code == 200
    assert response.json()["answers"]


def test_api_model_unavailable_is_a_503_with_retry_after(client, broken_model_settings):
    response = post_json(client, KIT_HO)
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    detail = response.json()["detail"]
    assert detail == "The model directory does not exist."
    assert "missing-model" not in detail


def test_api_model_unavailable_shows_paths_only_in_debug(client, broken_model_settings):
    broken_model_settings.DEBUG = True
    response = post_json(client, KIT_HO)
    assert response.status_code == 503
    assert "missing-model" in response.json()["detail"]


def test_api_get_shows_the_browsable_api_with_a_form(client):
    response = client.get("/api/answer/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="question"' in html and 'name="context"' in html
    assert "/static/rest_framework/" in html


def test_browsable_api_static_files_are_served_without_debug(client, settings):
    assert settings.DEBUG is False
    response = client.get("/static/rest_framework/css/bootstrap.min.css")
    assert response.status_code == 200


def test_api_get_as_json_explains_usage(client):
    body = client.get("/api/answer/", HTTP_ACCEPT="application/json").json()
    assert body["limits"]["context_chars"] == 20_000
    assert body["example"]["question"] == "What is my name?"


def test_api_wrong_method_is_a_405(client):
    assert client.put("/api/answer/", "{}", content_type="application/json").status_code == 405


# --- health and schema ------------------------------------------------------------------------


def test_health_reports_the_model_state(client, tiny_model_settings):
    post_json(client, KIT_HO)
    body = client.get("/api/health/").json()
    assert body == {
        "model": Path(tiny_model_settings.QA_MODEL).name,
        "quantization": None,
        "state": "ready",
        "engine": "onnx",
        "error": None,
    }


@pytest.mark.parametrize(
    ("record", "model", "quantization"),
    [
        (b'{"model": "someone/model", "revision": "abc"}', "someone/model", None),
        (b'{"model": "someone/model", "quantization": "int8"}', "someone/model", "int8"),
        (b'{"model": "m", "quantization": "int4"}', "m", None),  # no bake makes it
        (b'{"model": "m", "quantization": ["int8"]}', "m", None),
        (b"[" * 100_000, "baked", None),  # deeper than Python's recursion limit
        (b'{"model": "\xff\xfe"}', "baked", None),  # not UTF-8
        (b'{"model": "a\\udc80"}', "a?", None),  # a lone surrogate, which no JSON can hold
        (b'{"model": "' + b"a" * 100_000 + b'"}', "baked", None),  # no name sent every check
        (None, "baked", None),  # a directory where the record should be
    ],
)
def test_health_names_the_model_whatever_its_record_holds(
    client, tiny_model_settings, tmp_path, record, model, quantization
):
    """The name and quantization come from the baked directory's source.json
    (qa.model.files.model_name, model_quantization): a record no bake wrote never makes health
    fail (a 500 where a 200 or a 503 is expected)."""
    directory = tmp_path / "baked"
    directory.mkdir()
    if record is None:
        (directory / "source.json").mkdir()
    else:
        (directory / "source.json").write_bytes(record)
    tiny_model_settings.QA_MODEL = str(directory)
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {
        "model": model,
        "quantization": quantization,
        "state": "idle",
        "engine": None,
        "error": None,
    }


def test_health_says_why_the_model_failed(client, broken_model_settings):
    post_json(client, KIT_HO)
    response = client.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["state"] == "failed"
    assert response.json()["error"] == "The model directory does not exist."


def test_schema_describes_request_and_response(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    components = schema["components"]["schemas"]
    request = components["AnswerRequest"]
    assert request["required"] == ["context", "question"]
    assert request["properties"]["question"]["maxLength"] == 500
    assert request["properties"]["top_k"]["maximum"] == 20
    assert set(components["AnswerResponse"]["properties"]) == {
        "answer",
        "score",
        "start",
        "end",
        "no_answer",
        "windows",
        "answers",
    }
    windows = components["AnswerResponse"]["properties"]["windows"]
    assert (windows["type"], windows["minimum"]) == ("integer", 1)
    assert "not shares of one whole" in windows["description"]
    # The HF endpoint keeps HF's shape: no windows there.
    hf_answer = components["QuestionAnsweringOutputElement"]["properties"]
    assert set(hf_answer) == {"answer", "score", "start", "end"}
    post = schema["paths"]["/api/answer/"]["post"]
    assert {"200", "400", "413", "503"} <= set(post["responses"])


# --- HTML form --------------------------------------------------------------------------------


def test_form_page_offers_the_example(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "What is my name?" in html and "Kit-Ho Mak" in html
    assert "csrfmiddlewaretoken" in html
    assert "up to 500 characters" in html and "up to 20000 characters" in html
    assert response.cookies["csrftoken"]


def test_form_post_highlights_the_answer_in_the_context(client, tiny_model_settings):
    response = client.post("/", {**KIT_HO, "top_k": 3})
    assert response.status_code == 200
    result = response.context["result"]
    assert KIT_HO["context"][result["start"] : result["end"]] == result["answer"]
    html = response.content.decode()
    assert f"<mark>{result['answer']}</mark>".replace("'", "&#x27;") in html


def test_form_escapes_html_in_the_context(client, tiny_model_settings):
    context = "<script>alert(1)</script> Paris is in France."
    html = client.post("/", {"question": "Where?", "context": context, "top_k": 1}).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_form_shows_field_errors_inline(client, tiny_model_settings):
    response = client.post("/", {"question": "  ", "context": "", "top_k": 1})
    assert response.status_code == 400
    assert response.context["result"] is None
    html = response.content.decode()
    assert "This field may not be blank." in html and "This field is required." in html


def test_form_without_its_csrf_token_is_a_friendly_403_saying_how_to_fix_it(tiny_model_settings):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/", {**KIT_HO, "top_k": 1})
    assert response.status_code == 403
    html = response.content.decode()
    assert "reload the page" in html and "allow cookies" in html
    assert 'href="/"' in html
    assert "CSRF" not in html  # Django's own page names the mechanism, not the fix


def test_form_says_when_the_model_is_unavailable(client, broken_model_settings):
    response = client.post("/", {**KIT_HO, "top_k": 1})
    assert response.status_code == 503
    html = response.content.decode()
    assert "The model is not available right now." in html
    assert "Loading the model" not in html
    assert int(response["Retry-After"]) >= 1


def test_form_says_the_model_is_loading_on_a_cold_first_question(
    client, settings, monkeypatch, tiny_answerer
):
    """Without JavaScript: a question that comes while the model loads (qasite.wsgi's
    background loader, started after the first page) waits QA_LOAD_WAIT_SECONDS, then the page
    says the model is loading and to send the question again, with Retry-After: not that the
    model is "not available"."""
    loaded = threading.Event()

    def load():
        assert loaded.wait(timeout=120)
        return tiny_answerer

    holder = LazyAnswerer(load)
    monkeypatch.setattr(services, "lazy_answerer", lambda: holder)
    settings.QA_LOAD_WAIT_SECONDS = 0
    loader = holder.load_in_background()
    try:
        response = client.post("/", {**KIT_HO, "top_k": 1})
    finally:
        loaded.set()
        loader.join()
    assert response.status_code == 503
    html = response.content.decode()
    assert "Loading the model…" in html and "send your question again" in html
    assert "not available" not in html
    assert response.context["form"]["question"].value() == KIT_HO["question"]  # kept to resend
    assert int(response["Retry-After"]) >= 1
    assert client.post("/", {**KIT_HO, "top_k": 1}).status_code == 200  # once loaded


def test_form_after_a_field_error_shows_no_answer_and_no_note(client, monkeypatch):
    """The form re-rendered for a field error holds no answer (the placeholder) and no note on
    percentages, whatever was shown before."""
    stub_candidates(monkeypatch, [0.85, 0.33, 0.09], windows=3)
    assert "<mark>" in client.post("/", {**KIT_HO, "top_k": 3}).content.decode()
    html = client.post("/", {**KIT_HO, "question": "  ", "top_k": 3}).content.decode()
    assert "<mark>" not in html and "The answer will appear here" in html
    assert re.search(r'<p id="score-note" class="score-note" hidden>', html)


def test_only_cookie_set_is_csrftoken(client, tiny_model_settings):
    responses = [
        client.get("/"),
        client.post("/", {**KIT_HO, "top_k": 1}),
        post_json(client, KIT_HO),
    ]
    for response in responses:
        assert set(response.cookies) <= {"csrftoken"}


def test_the_page_imports_no_numpy_or_tokenizer_and_health_no_torch(settings):
    """What a first page from cold waits for: neither the model's libraries nor the loader's."""
    code = (
        "import django, os, sys;"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'qasite.settings';"
        "django.setup();"
        "from django.test.utils import setup_test_environment; setup_test_environment();"
        "from django.test import Client;"
        "assert Client().get('/').status_code == 200;"
        "print(*(name in sys.modules for name in ('numpy', 'tokenizers')));"
        "assert Client().get('/api/health/').status_code == 200;"
        "print(*(name in sys.modules for name in ('torch', 'transformers')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=settings.BASE_DIR
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False", "False"]


def test_api_responses_match_the_documented_response_serializer(client, tiny_model_settings):
    """The view returns the service's dicts as they are: they must be exactly the schema's shape."""
    from qa.serializers import AnswerResponseSerializer

    body = post_json(client, {**KIT_HO, "top_k": 3, "handle_impossible_answer": True}).json()
    assert AnswerResponseSerializer(body).data == body
    assert type(body["score"]) is float and type(body["start"]) is int


# --- error pages ------------------------------------------------------------------------------


def assert_friendly_page(response, status: int, message: str):
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert message in html and 'href="/"' in html  # a human message and a way home
    return html


def test_unknown_page_is_a_friendly_404_and_unknown_api_path_a_json_404(client):
    assert_friendly_page(client.get("/no/such/page/"), 404, "There is no page at this address.")
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_bad_host_is_a_friendly_400_and_json_under_the_api(client):
    assert_friendly_page(client.get("/", HTTP_HOST="attacker.example"), 400, "Bad request")
    response = client.get("/api/answer/", HTTP_HOST="attacker.example")
    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request."}


def test_permission_denied_is_a_friendly_403_page(client, settings):
    settings.DISALLOWED_USER_AGENTS = [re.compile("BadBot")]  # CommonMiddleware's 403
    response = client.get("/", HTTP_USER_AGENT="BadBot/1.0")
    assert "Forbidden user agent" not in assert_friendly_page(response, 403, "You are not allowed")


@pytest.fixture
def crashing_service(monkeypatch, tiny_model_settings, settings):
    """The service fails in a way no one planned for, with a path in its message."""

    def crash(*, questions):
        raise RuntimeError("/secret/path/marker")

    assert settings.DEBUG is False
    monkeypatch.setattr(services, "answer_questions", crash)


def assert_no_internals(body: str):
    assert "marker" not in body and "/secret" not in body and "Traceback" not in body
    assert "RuntimeError" not in body and ".py" not in body and "/work/" not in body


def test_unexpected_error_on_the_page_is_a_friendly_500_without_internals(crashing_service):
    from django.test import Client

    response = Client(raise_request_exception=False).post("/", {**KIT_HO, "top_k": 1})
    assert_no_internals(assert_friendly_page(response, 500, "Something went wrong"))


def test_unexpected_error_in_the_api_is_a_json_500_without_internals(crashing_service):
    from django.test import Client

    for accept in ("application/json", "text/html"):  # the browsable API too
        response = Client(raise_request_exception=False).post(
            "/api/answer/", json.dumps(KIT_HO), content_type="application/json", HTTP_ACCEPT=accept
        )
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal server error."}
        assert_no_internals(response.content.decode())


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(question=texts(500), context=texts(20_000), options=OPTIONS)
def test_api_answers_any_text_with_any_options_or_says_which_field_is_wrong(
    client, tiny_model_settings, question, context, options
):
    """Any Unicode question and context within the limits, any options within their ranges: a
    200 whose answers index the context, or a 400 naming fields of the request; never a 500."""
    response = post_json(client, {"question": question, "context": context, **options})
    assert response.status_code in (200, 400)
    body = response.json()
    if response.status_code == 400:
        event(f"400: {', '.join(sorted(body))}")
        fields = {"question", "context", "doc_stride", "max_seq_len", "max_question_len"}
        assert set(body) <= fields
        return
    event("200")
    assert_consistent_answers(context, body["answers"], options.get("top_k", 1))
    best = {key: body[key] for key in body if key not in ("windows", "answers")}
    assert best == body["answers"][0]


def test_schema_documents_batches_and_error_bodies(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    post = schema["paths"]["/api/answer/"]["post"]

    def one_or_many(name):
        return [
            {"$ref": f"#/components/schemas/{name}"},
            {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}},
        ]

    body = post["requestBody"]["content"]
    assert components[body["application/json"]["schema"]["$ref"].split("/")[-1]]["oneOf"] == (
        one_or_many("AnswerRequest")
    )
    for form in ("application/x-www-form-urlencoded", "multipart/form-data"):
        assert body[form]["schema"] == {"$ref": "#/components/schemas/AnswerRequest"}
    assert components["AnswerResponseOrBatch"]["oneOf"] == one_or_many("AnswerResponse")
    for status in ("413", "415", "503"):
        error = post["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/Error"}
    assert components["Error"]["required"] == ["detail"]
    assert post["responses"]["400"]["content"]["application/json"]["schema"]["type"] == "object"
    for text in ("question", "context"):
        assert components["AnswerRequest"]["properties"][text]["minLength"] == 1


# --- the API reference, the browsable API's form, the icon ------------------------------------


def test_the_api_reference_is_swagger_ui_served_by_us_and_the_raw_schema_stays(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/qa/api-reference.js",
    ]
    assert 'data-schema-url="/api/schema/?format=json"' in html
    assert 'href="/api/schema/"' in html  # the raw schema, YAML
    for url in [*scripts, "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"]:
        assert client.get(url).status_code == 200, url
    assert client.get("/api/schema/?format=json").json()["paths"]
    assert client.get("/api/schema/")["Content-Type"].startswith("application/vnd.oai.openapi")


def test_pages_link_the_api_reference(client):
    for path in ("/", "/no/such/page/"):
        assert 'href="/api/docs/"' in client.get(path).content.decode(), path


def test_the_icon_is_linked_from_every_page_and_answered_at_favicon_ico(client):
    pages = {
        "page": client.get("/"),
        "error page": client.get("/no/such/page/"),
        "browsable API": client.get("/api/answer/", HTTP_ACCEPT="text/html"),
        "API reference": client.get("/api/docs/"),
    }
    for name, page in pages.items():
        link = '<link rel="icon" href="/static/qa/favicon.svg" type="image/svg+xml">'
        assert link in page.content.decode(), name
    svg = client.get("/static/qa/favicon.svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in b"".join(svg.streaming_content)
    icon = client.get("/favicon.ico")  # what a browser asks for where no page links an icon
    assert (icon.status_code, icon["Content-Type"]) == (200, "image/x-icon")
    body = b"".join(icon.streaming_content)
    assert body[:4] == b"\0\0\1\0" and body[4] >= 2  # an ICO of 2 sizes or more


def test_browsable_api_form_context_is_a_textarea_and_the_brand_leads_home(client):
    html = client.get("/api/answer/", HTTP_ACCEPT="text/html").content.decode()
    assert re.search(r'<textarea name="context"[^>]*rows="8"', html)
    assert '<a class="navbar-brand" href="/">qasite</a>' in html
    assert 'href="/api/docs/"' in html


BOOLEAN_OPTIONS = {"handle_impossible_answer": False, "align_to_words": True}


def test_every_boolean_option_is_listed():
    from rest_framework import serializers

    from qa.serializers import AnswerRequestSerializer

    fields = AnswerRequestSerializer().fields
    booleans = {
        name: field.default
        for name, field in fields.items()
        if isinstance(field, serializers.BooleanField)
    }
    assert booleans == BOOLEAN_OPTIONS


def test_browsable_api_checkboxes_start_at_the_default_and_send_false_when_unchecked(client):
    """A browser sends nothing for an unchecked box: each checkbox has a hidden "false" before
    it, and starts checked if and only if its option's default is true."""
    html = client.get("/api/answer/", HTTP_ACCEPT="text/html").content.decode()
    for name, default in BOOLEAN_OPTIONS.items():
        hidden = html.index(f'<input type="hidden" name="{name}" value="false">')
        checkbox = re.search(
            rf'<input type="checkbox" id="checkbox-{name}" name="{name}" '
            rf'value="true" ?(checked)?>',
            html,
        )
        assert hidden < checkbox.start()
        assert bool(checkbox.group(1)) is default
        assert f'<label for="checkbox-{name}"' in html


@pytest.fixture
def received(monkeypatch, tiny_model_settings):
    """The questions the service is asked, as the view validated them."""
    calls = []
    real = services.answer_questions

    def record(*, questions):
        calls.extend(questions)
        return real(questions=questions)

    monkeypatch.setattr(services, "answer_questions", record)
    return calls


@pytest.mark.parametrize("name", BOOLEAN_OPTIONS)
@pytest.mark.parametrize(
    ("how", "sent", "expected"),
    [
        # What the browsable API's form posts (multipart): its hidden "false", "true" if checked.
        ("form, unchecked", ["false"], False),
        ("form, checked", ["false", "true"], True),
        ("form without the field", None, "default"),
        ("JSON without the field", None, "default"),
        ("JSON false", False, False),
        ("JSON true", True, True),
    ],
)
def test_boolean_options_unchecked_checked_or_absent(client, received, name, how, sent, expected):
    data = dict(KIT_HO) if sent is None else {**KIT_HO, name: sent}
    if how.startswith("JSON"):
        response = post_json(client, data)
    else:
        response = client.post("/api/answer/", data)  # multipart, as the browser's form
    assert response.status_code == 200
    assert received[-1][name] is (BOOLEAN_OPTIONS[name] if expected == "default" else expected)


def stub_candidates(monkeypatch, scores: list[float], windows: int = 1, no_answer: bool = False):
    """The service returns the Kit-Ho candidates with these scores, best first (the first the
    no-answer, if ``no_answer``), from a context read in ``windows`` windows."""
    spans = [(4, 14), (4, 10), (11, 14)]
    if no_answer:
        spans = [(0, 0), *spans]

    def answer_questions(*, questions):
        answers = [
            {
                "answer": KIT_HO["context"][start:end],
                "score": score,
                "start": start,
                "end": end,
                "no_answer": start == end,
            }
            for (start, end), score in zip(spans, scores, strict=False)
        ]
        return [{**answers[0], "windows": windows, "answers": answers}]

    monkeypatch.setattr(services, "answer_questions", answer_questions)


@pytest.mark.parametrize(
    ("scores", "windows", "note"),
    [
        ([0.85, 0.33, 0.09], 3, True),
        ([0.85], 2, True),
        ([0.85, 0.33, 0.09], 1, False),  # the issue: shown for a one-sentence context
        ([0.85], 1, False),
    ],
)
def test_page_says_what_percentages_mean_when_the_context_took_several_windows(
    client, monkeypatch, scores, windows, note
):
    """Percentages of answers from different windows can add up to more than 100%: the page
    says so, with how many windows, when the context took several; and shows the API's scores
    as they are."""
    stub_candidates(monkeypatch, scores, windows=windows)
    html = client.post("/", {**KIT_HO, "top_k": 3}).content.decode()
    for score in scores:
        assert f"{round(score * 100)}%" in html
    shown = re.search(r'<p id="score-note" class="score-note"( hidden)?>(.*?)</p>', html, re.S)
    assert "not shares of one whole" in shown.group(2)
    assert (shown.group(1) is None) is note
    if note:
        assert f'read in <span id="score-note-windows">{windows}</span> overlapping' in html


@pytest.mark.parametrize(
    ("scores", "no_answer", "listed", "unlisted"),
    [
        ([0.97, 0.004, 0.001], True, [], "The other 2 candidates scored under 1%."),
        ([0.6, 0.3, 0.001], True, ["Kit-Ho Mak"], "1 more candidate scored under 1%."),
        ([0.9, 0.05, 0.003], False, ["Kit-Ho"], "1 more candidate scored under 1%."),
        ([0.9, 0.05, 0.01], False, ["Kit-Ho", "Mak"], None),
    ],
)
def test_runners_up_at_0_percent_are_counted_not_listed(
    client, monkeypatch, scores, no_answer, listed, unlisted
):
    """The issue: a "no answer" listed "Other candidates" at 0%."""
    stub_candidates(monkeypatch, scores, no_answer=no_answer)
    html = client.post("/", {**KIT_HO, "top_k": 3}).content.decode()
    assert re.findall(r'<span class="candidate-text">(.*?)</span>', html) == listed
    assert ("<h3>Other candidates</h3>" in html) is bool(listed)
    assert '<span class="score">0%</span>' not in html
    note = re.search(r'<p class="candidates-unlisted">(.*?)</p>', html)
    assert (note and note.group(1)) == unlisted


@pytest.mark.parametrize(
    ("path", "example"),
    [("/api/answer/", KIT_HO), ("/api/hf/question-answering/", {"inputs": KIT_HO})],
)
def test_swaggers_request_example_is_the_kit_ho_example_with_default_options(client, path, example):
    """The review: Try it out started from doc_stride 512, max_seq_len 512 (the schema's
    maxima), a 400 for a long context. Every request example is the page's, options absent."""
    schema = client.get("/api/schema/?format=json").json()
    body = schema["paths"][path]["post"]["requestBody"]["content"]
    examples = [media["examples"] for media in body.values() if "examples" in media]
    assert examples and all(
        [case["value"] for case in found.values()] == [example] for found in examples
    )


def test_api_form_data_in_utf16_is_a_415_not_a_garbled_field(client, tiny_model_settings):
    body = "question=Who%3F&context=Kit".encode("utf-16")
    response = client.generic(
        "POST",
        "/api/answer/",
        body,
        content_type="application/x-www-form-urlencoded; charset=utf-16",
    )
    assert response.status_code == 415
    assert response.json()["detail"].startswith("Form data is read as UTF-8")
