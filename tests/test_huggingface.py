"""qa/huggingface.py through Hugging Face's own clients: the real huggingface_hub InferenceClient
over HTTP to pytest-django's live server and through the Lambda handler, and the real
@huggingface/inference client under node (tests/js/huggingface-inference.test.mjs)."""

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import BadRequestError, HfHubHTTPError
from huggingface_hub.utils import _http
from hypothesis import HealthCheck, event, given, settings

from qa import services
from qa.reader.examples import KIT_HO
from qa.serializers import AnswerOptionsSerializer
from tests.helpers import HEAVY, PATIENCE, REPO, invoke, no_answer_best
from tests.lambda_events import body_of, make_event
from tests.properties import LINE_ENDING_CASES, OPTIONS, answer_the_pattern, texts

PATH = "/api/hf/question-answering/"
MOON = {
    "question": "Who was the first person on the Moon?",
    "context": "Hong Kong is a special administrative region on the southern coast of China. "
    "It has a population of about 7.5 million people.",
}
NODE_TEST = REPO / "tests" / "js" / "huggingface-inference.test.mjs"
PARAMETERS = set(AnswerOptionsSerializer().fields)  # the rest is inputs
LAMBDA_URL = "https://abc123defg.execute-api.eu-west-1.amazonaws.com" + PATH


def use_transport(transport: httpx2.BaseTransport | None = None):
    """huggingface_hub's HTTP session as its default one, but for its request hook: instead of
    the offline check (conftest's HF_HUB_OFFLINE makes the client refuse every URL, loopback
    included), one that refuses any host but loopback. With a ``transport`` (which opens no
    socket), requests go to it. Either way nothing reaches the network."""

    def loopback_only(request):
        if transport is None and request.url.host not in ("localhost", "127.0.0.1"):
            raise AssertionError(f"the client tried to reach {request.url}")

    huggingface_hub.set_client_factory(
        lambda: httpx2.Client(
            transport=transport,
            event_hooks={"request": [loopback_only]},
            follow_redirects=True,
            timeout=None,
        )
    )


@pytest.fixture
def client_session():
    """The client's session for this test (see use_transport), and its default one after."""
    use_transport()
    yield
    huggingface_hub.set_client_factory(_http.default_client_factory)


@pytest.fixture
def hf(live_server, client_session, tiny_model_settings) -> InferenceClient:
    """The real client, pointed at qasite's endpoint as its README says."""
    return InferenceClient(model=live_server.url + PATH)


@pytest.fixture
def broken_model_settings(settings, broken_model):
    settings.QA_MODEL = str(broken_model.directory)
    return broken_model


def api_answer(client, request: dict) -> dict:
    """qasite's own API on the same request: what the HF endpoint must agree with."""
    response = client.post("/api/answer/", json.dumps(request), content_type="application/json")
    assert response.status_code == 200
    return response.json()


def hf_shape(answer: dict) -> dict:
    return {key: answer[key] for key in ("answer", "score", "start", "end")}


def post(url: str, body) -> tuple[int, object]:
    """Plain HTTP, for what the clients cannot send (a list of inputs)."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- answers ------------------------------------------------------------------------------------


def test_client_gets_the_best_answer_as_qasite_api_gives_it(hf, client):
    answer = hf.question_answering(**KIT_HO)
    assert isinstance(answer, huggingface_hub.QuestionAnsweringOutputElement)
    assert KIT_HO["context"][answer.start : answer.end] == answer.answer
    assert vars(answer) == hf_shape(api_answer(client, KIT_HO))  # no extra fields either


@pytest.mark.parametrize("case", list(LINE_ENDING_CASES))
def test_the_clients_context_reaches_the_service_as_sent(hf, monkeypatch, case):
    """CR, CRLF, mixed line endings and blank ends, through the real client: the offsets it gets
    index the context it sent."""
    context, expected = LINE_ENDING_CASES[case]
    calls = []
    monkeypatch.setattr(services, "answer_questions", answer_the_pattern(calls))
    answer = hf.question_answering(question="Who?", context=context)
    assert calls[0]["context"] == context
    assert context[answer.start : answer.end] == answer.answer == expected


@pytest.mark.parametrize("top_k", [1, 3])
def test_the_hf_shape_has_no_windows_even_when_the_api_says_several(
    live_server, tiny_model_settings, client, top_k
):
    """qasite's API says how many windows a context took; HF's shape has no such field, and
    gets none (a client that checks the keys must not break)."""
    question = {"question": "Who?", "context": "Kit-Ho Mak is here. " * 100}
    assert api_answer(client, question)["windows"] > 1
    status, body = post(
        live_server.url + PATH, {"inputs": question, "parameters": {"top_k": top_k}}
    )
    assert status == 200
    for answer in body if top_k > 1 else [body]:
        assert set(answer) == {"answer", "score", "start", "end"}


def test_client_gets_top_k_candidates_as_a_list_best_first(hf, client):
    answers = hf.question_answering(**KIT_HO, top_k=3)
    assert isinstance(answers, list) and len(answers) == 3  # far more than three spans
    expected = api_answer(client, {**KIT_HO, "top_k": 3})["answers"]
    assert [vars(answer) for answer in answers] == [hf_shape(answer) for answer in expected]
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)


def test_every_parameter_reaches_the_engine(hf, client):
    parameters = {
        "top_k": 4,
        "doc_stride": 3,
        "max_answer_len": 2,
        "max_seq_len": 24,
        "max_question_len": 3,
        "handle_impossible_answer": True,
        "align_to_words": False,
    }
    answers = hf.question_answering(**KIT_HO, **parameters)
    expected = api_answer(client, {**KIT_HO, **parameters})["answers"]
    assert [vars(answer) for answer in answers] == [hf_shape(answer) for answer in expected]
    default = hf.question_answering(**KIT_HO, top_k=4)
    assert [vars(a) for a in answers] != [vars(a) for a in default]


def test_no_answer_is_an_empty_answer_at_offset_zero_as_v4_gives_it(
    live_server, client_session, settings, real_model_dir
):
    settings.QA_MODEL = str(real_model_dir)
    hf = InferenceClient(model=live_server.url + PATH)
    answer = hf.question_answering(**MOON, handle_impossible_answer=True)
    assert (answer.answer, answer.start, answer.end) == ("", 0, 0)
    assert 0 < answer.score <= 1
    assert hf.question_answering(**MOON).answer != ""  # without the option, a span as v4's


def test_no_answer_among_candidates_has_the_same_shape(hf, client, monkeypatch):
    monkeypatch.setattr(services.lazy_answerer().get(), "_forward", no_answer_best)
    answers = hf.question_answering(**KIT_HO, top_k=5, handle_impossible_answer=True)
    expected = api_answer(client, {**KIT_HO, "top_k": 5, "handle_impossible_answer": True})
    assert [vars(a) for a in answers] == [hf_shape(a) for a in expected["answers"]]
    assert [a["no_answer"] for a in expected["answers"]] == [True, False, False, False, False]
    assert (answers[0].answer, answers[0].start, answers[0].end) == ("", 0, 0)


@pytest.mark.parametrize("top_k", [1, 2])
def test_a_list_of_inputs_gets_a_list_of_results_in_order(
    live_server, tiny_model_settings, client, top_k
):
    """The clients send one question a call; code written for Inference Endpoints may send a list
    (v4's pipeline answers each, in order)."""
    other = {"question": "Where?", "context": "Paris is in France."}
    status, body = post(
        live_server.url + PATH, {"inputs": [KIT_HO, other, KIT_HO], "parameters": {"top_k": top_k}}
    )
    assert status == 200
    expected = [
        api_answer(client, {**question, "top_k": top_k}) for question in (KIT_HO, other, KIT_HO)
    ]
    if top_k == 1:
        assert body == [hf_shape(result) for result in expected]
    else:
        assert body == [[hf_shape(a) for a in result["answers"]] for result in expected]


def test_options_of_the_former_inference_api_are_accepted(live_server, tiny_model_settings, client):
    body = {"inputs": KIT_HO, "options": {"use_cache": False, "wait_for_model": True}}
    assert post(live_server.url + PATH, body) == (200, hf_shape(api_answer(client, KIT_HO)))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(question=texts(500), context=texts(20_000), options=OPTIONS)
def test_answers_and_refusals_are_those_of_qasite_api_in_hf_shape(
    client, tiny_model_settings, question, context, options
):
    """Any Unicode question and context within the limits, any options in range: the HF endpoint
    answers exactly what /api/answer/ answers, in HF's shape, or refuses as it does, naming the
    same fields in its one-line message."""
    ours = client.post(
        "/api/answer/",
        json.dumps({"question": question, "context": context, **options}),
        content_type=JSON,
    )
    body = {"inputs": {"question": question, "context": context}, "parameters": options}
    response = client.post(PATH, json.dumps(body), content_type=JSON)
    assert response.status_code == ours.status_code
    event(str(response.status_code))
    if ours.status_code == 400:
        messages = [
            f"{'parameters' if name in PARAMETERS else 'inputs'}.{name}: {message}"
            for name, field_messages in ours.json().items()
            for message in field_messages
        ]
        assert response.json() == {"error": " ".join(messages), "error_type": "validation"}
        return
    expected = ours.json()
    if options.get("top_k", 1) == 1:
        assert response.json() == hf_shape(expected)
    else:
        assert response.json() == [hf_shape(answer) for answer in expected["answers"]]


def test_a_list_of_n_inputs_costs_n_questions_of_the_shared_budget(hf, live_server, settings):
    """The rate limit counts questions, not calls: a list costs as many as it holds, and the
    client's single questions spend the same budget as /api/answer/'s."""
    settings.QA_THROTTLE_RATE = "4/min"
    url = live_server.url + PATH
    assert post(url, {"inputs": [KIT_HO] * 3})[0] == 200  # 1 left
    status, body = post(url, {"inputs": [KIT_HO] * 2})
    assert status == 429 and body["error_type"] == "throttled"
    assert re.fullmatch(
        r"This request asks 2 questions, more than this client has left of the rate limit "
        r"\(4/min\) now\. Expected available in \d+ seconds?\.",
        body["error"],
    )
    hf.question_answering(**KIT_HO)  # the refused list took nothing: the last one
    with pytest.raises(HfHubHTTPError) as raised:
        hf.question_answering(**KIT_HO)
    assert raised.value.response.status_code == 429


def test_a_list_of_inputs_holds_at_most_qa_max_batch_chars(live_server, tiny_model_settings):
    tiny_model_settings.QA_MAX_BATCH_CHARS = 100
    question = {"question": "Who?", "context": "x" * 46}  # 50 characters
    assert post(live_server.url + PATH, {"inputs": [question] * 2})[0] == 200
    assert post(live_server.url + PATH, {"inputs": [question] * 3}) == (
        413,
        {
            "error": "This batch holds 150 characters of questions and contexts; one call may "
            "hold at most 100. Send it as smaller batches.",
            "error_type": "batch_too_large",
        },
    )


def test_a_list_of_inputs_over_the_token_bound_is_a_413(live_server, tiny_model_settings):
    # helpers.HEAVY's question and context under "inputs", its options under "parameters".
    heavy = {name: HEAVY[name] for name in ("question", "context")}
    parameters = {name: HEAVY[name] for name in ("max_seq_len", "doc_stride")}
    url = live_server.url + PATH
    assert post(url, {"inputs": [heavy], "parameters": parameters})[0] == 200
    status, body = post(url, {"inputs": [heavy, heavy], "parameters": parameters})
    assert (status, body["error_type"]) == (413, "batch_too_large")
    assert "204800 tokens" in body["error"] and "at most 131072" in body["error"]


# Nulls HF's clients and older code send: (name, the request's extra keys).
HF_NULLS = {
    "parameters null": {"parameters": None},
    "options null": {"options": None},
    "a parameter null": {"parameters": {"doc_stride": None, "top_k": None}},
    "an option null": {"options": {"use_cache": None, "wait_for_model": None}},
}


@pytest.mark.parametrize("many", [False, True], ids=["one", "list"])
@pytest.mark.parametrize("case", HF_NULLS)
def test_null_parameters_and_options_are_the_defaults(client, tiny_model_settings, case, many):
    inputs = [KIT_HO, KIT_HO] if many else KIT_HO
    responses = [
        client.post(PATH, json.dumps(body), content_type="application/json")
        for body in ({"inputs": inputs, **HF_NULLS[case]}, {"inputs": inputs})
    ]
    assert [response.status_code for response in responses] == [200, 200], responses[0].content
    assert responses[0].json() == responses[1].json()


# --- errors, as the client raises them ------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        ({**KIT_HO, "question": " "}, 400, "inputs.question: This field may not be blank."),
        ({**KIT_HO, "context": ""}, 400, "inputs.context: This field may not be blank."),
        (
            {**KIT_HO, "context": "c" * 20_001},
            400,
            "inputs.context: Ensure this field has no more than 20000 characters.",
        ),
        (
            {**KIT_HO, "question": "q" * 501},
            400,
            "inputs.question: Ensure this field has no more than 500 characters.",
        ),
        (
            {**KIT_HO, "top_k": 21},
            400,
            "parameters.top_k: Ensure this value is less than or equal to 20.",
        ),
        (
            {**KIT_HO, "max_seq_len": 8},
            400,
            "parameters.max_seq_len: Ensure this value is greater than or equal to 16.",
        ),
        (
            {**KIT_HO, "context": KIT_HO["context"] * 20, "doc_stride": 60, "max_seq_len": 64},
            400,
            "parameters.doc_stride: The question takes 5 tokens, which leaves 56 tokens of each "
            "64-token window for the context: doc_stride (60) must be smaller than that. Shorten "
            "the question, lower doc_stride or raise max_seq_len.",
        ),
        (
            {**KIT_HO, "context": "\u200b\u200b"},
            400,
            "inputs.context: The context contains no text the model can read.",
        ),
    ],
)
def test_bad_input_raises_the_clients_error_with_our_message(hf, arguments, status, message):
    with pytest.raises(BadRequestError) as raised:
        hf.question_answering(**arguments)
    assert raised.value.response.status_code == status
    assert raised.value.server_message == message
    assert message in str(raised.value)


def test_a_body_over_the_upload_limit_raises_with_our_message(hf, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    with pytest.raises(HfHubHTTPError) as raised:
        hf.question_answering(question="Who?", context="x " * 1000)
    assert raised.value.response.status_code == 413
    assert raised.value.server_message == "The request body is larger than the limit of 1000 bytes."


def test_rate_limit_raises_with_our_message_and_retry_after(hf, settings):
    settings.QA_THROTTLE_RATE = "2/min"
    hf.question_answering(**KIT_HO)
    hf.question_answering(**KIT_HO)
    with pytest.raises(HfHubHTTPError) as raised:
        hf.question_answering(**KIT_HO)
    response = raised.value.response
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    throttled = r"Request was throttled\. Expected available in \d+ seconds?\."
    assert re.fullmatch(throttled, raised.value.server_message)
    assert raised.value.server_message in str(raised.value)


def test_model_unavailable_raises_with_the_reason(
    live_server, client_session, broken_model_settings
):
    hf = InferenceClient(model=live_server.url + PATH)
    with pytest.raises(HfHubHTTPError) as raised:
        hf.question_answering(**KIT_HO)
    response = raised.value.response
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert raised.value.server_message == broken_model_settings.reason
    assert str(broken_model_settings.directory) not in str(raised.value)


JSON = "application/json"
INVALID = [
    # (what the body is: as a JSON value, or raw text; status, error, error_type)
    (
        "{not json",
        400,
        "JSON parse error - Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "parse_error",
    ),
    ("text", 400, "Invalid data. Expected a dictionary, but got str.", "validation"),
    ({"inputs": []}, 400, "inputs: This list may not be empty.", "validation"),
    (
        {"inputs": [KIT_HO] * 33},
        400,
        "inputs: Ensure this field has no more than 32 elements.",
        "validation",
    ),
    (
        {"inputs": [KIT_HO, {"question": "q"}]},
        400,
        "inputs.1.context: This field is required.",
        "validation",
    ),
    (
        {"inputs": [KIT_HO, {**KIT_HO, "context": "\u200b"}]},
        400,
        "inputs.1.context: The context contains no text the model can read.",
        "validation",
    ),
    (
        {"inputs": KIT_HO, "parameters": {"topk": 3}},
        400,
        "parameters.topk: Unknown field.",
        "validation",
    ),
    ({"inputs": KIT_HO, "extra": 1}, 400, "extra: Unknown field.", "validation"),
    (
        {"inputs": {"question": " ", "context": ""}},
        400,
        "inputs.question: This field may not be blank. "
        "inputs.context: This field may not be blank.",
        "validation",
    ),
]


@pytest.mark.parametrize(("body", "status", "error", "error_type"), INVALID)
def test_every_error_body_is_hf_shaped_naming_the_field(
    client, tiny_model_settings, body, status, error, error_type
):
    raw = body if body == "{not json" else json.dumps(body)
    response = client.post(PATH, raw, content_type=JSON)
    assert response.status_code == status
    assert response.json() == {"error": error, "error_type": error_type}


def test_a_form_is_a_415_in_the_same_shape(client):
    response = client.post(
        PATH, "question=q&context=c", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": 'Unsupported media type "application/x-www-form-urlencoded" in request.',
        "error_type": "unsupported_media_type",
    }


def test_other_methods_are_a_405_in_the_same_shape(client):
    response = client.get(PATH)
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert response.json() == {
        "error": 'Method "GET" not allowed.',
        "error_type": "method_not_allowed",
    }


# --- through the Lambda handler -------------------------------------------------------------------


class LambdaTransport(httpx2.BaseTransport):
    """Hands each request to qasite.lambda_handler as an API Gateway HTTP API (payload 2.0)
    event, in the shape events/http-api-v2.json records, and the handler's answer back."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        event = make_event(
            "http-api-v2",
            request.method,
            request.url.path,
            body=request.read().decode(),
            headers=dict(request.headers),
        )
        response = invoke(event)
        return httpx2.Response(
            response["statusCode"], headers=response["headers"], content=body_of(response).encode()
        )


def test_the_client_works_through_the_lambda_handler(
    client, client_session, tiny_model_settings, settings
):
    expected = api_answer(client, {**KIT_HO, "top_k": 2})["answers"]
    settings.ALLOWED_HOSTS = [".execute-api.eu-west-1.amazonaws.com"]
    use_transport(LambdaTransport())
    hf = InferenceClient(model=LAMBDA_URL)
    answers = hf.question_answering(**KIT_HO, top_k=2)
    assert [vars(answer) for answer in answers] == [hf_shape(a) for a in expected]
    with pytest.raises(BadRequestError) as raised:
        hf.question_answering(question="", context=KIT_HO["context"])
    assert raised.value.server_message == "inputs.question: This field may not be blank."


# --- the JavaScript client ----------------------------------------------------------------------

NODE = shutil.which("node")


@pytest.fixture
def node_test(live_server):
    """Runs one test of tests/js/huggingface-inference.test.mjs against the live server."""
    if NODE is None:
        pytest.skip("node is not installed")
    if not (REPO / "node_modules" / "@huggingface" / "inference").is_dir():
        pytest.skip("@huggingface/inference is not installed (npm ci)")

    def run(name: str) -> None:
        result = subprocess.run(
            [
                NODE,
                "--test",
                "--test-reporter=tap",
                f"--test-name-pattern=^{re.escape(name)}$",
                str(NODE_TEST),
            ],
            env={**os.environ, "QASITE_URL": live_server.url},
            capture_output=True,
            text=True,
            timeout=PATIENCE,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        # A name that matched no test would pass too: exactly this one ran, and passed.
        assert re.search(r"^# pass 1$", result.stdout, re.M), result.stdout
        assert re.search(r"^# fail 0$", result.stdout, re.M), result.stdout

    return run


@pytest.mark.parametrize(
    "name",
    [
        "answers a question as qasite's API does",
        "top_k above 1 gives the best of the candidates",
        "a blank field throws the client's error with our message",
        "a field over its limit throws with our message",
    ],
)
def test_javascript_client(node_test, tiny_model_settings, name):
    node_test(name)


def test_javascript_client_no_answer(node_test, settings, real_model_dir):
    settings.QA_MODEL = str(real_model_dir)
    node_test("no answer is an empty answer at offset zero")


def test_javascript_client_rate_limited(node_test, tiny_model_settings):
    tiny_model_settings.QA_THROTTLE_RATE = "1/min"
    node_test("the rate limit throws with our message")


def test_javascript_client_model_unavailable(node_test, settings, tmp_path):
    settings.QA_MODEL = str(tmp_path / "missing-model")
    node_test("an unavailable model throws with the reason, when told not to retry")


def test_the_url_works_without_its_final_slash_as_hf_urls_are_written(hf, live_server, client):
    hf = InferenceClient(model=live_server.url + PATH.rstrip("/"))
    assert vars(hf.question_answering(**KIT_HO)) == hf_shape(api_answer(client, KIT_HO))


def test_schema_documents_the_hf_shapes(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    post = schema["paths"][PATH]["post"]

    def ref(name):
        return {"$ref": f"#/components/schemas/{name}"}

    request = post["requestBody"]["content"]
    assert list(request) == ["application/json"]
    assert components["QuestionAnsweringRequest"]["oneOf"] == [
        ref("QuestionAnsweringInput"),
        ref("QuestionAnsweringBatchInput"),
    ]
    single = components["QuestionAnsweringInput"]
    assert single["required"] == ["inputs"]
    assert single["properties"]["inputs"]["allOf"] == [ref("Question")]
    assert single["properties"]["parameters"]["allOf"] == [ref("AnswerOptions")]
    batch = components["QuestionAnsweringBatchInput"]["properties"]["inputs"]
    assert batch["items"] == ref("Question") and batch["description"].endswith("1 to 32.")
    assert set(components["AnswerOptions"]["properties"]) == {
        "top_k",
        "doc_stride",
        "max_answer_len",
        "max_seq_len",
        "max_question_len",
        "handle_impossible_answer",
        "align_to_words",
    }
    element = ref("QuestionAnsweringOutputElement")
    assert components["QuestionAnsweringOutputElement"]["required"] == [
        "answer",
        "end",
        "score",
        "start",
    ]
    assert components["QuestionAnsweringResponse"]["oneOf"] == [
        element,
        {"type": "array", "items": ref("QuestionAnsweringOutput")},
    ]
    assert components["QuestionAnsweringOutput"]["oneOf"] == [
        element,
        {"type": "array", "items": element},
    ]
    for status in ("400", "413", "415", "429", "503"):
        assert post["responses"][status]["content"]["application/json"]["schema"] == ref(
            "InferenceError"
        )
    assert components["InferenceError"]["required"] == ["error", "error_type"]
