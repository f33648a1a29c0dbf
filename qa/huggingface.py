"""Hugging Face's question-answering task shape, served beside qasite's own API.

The shape that huggingface_hub's ``InferenceClient.question_answering``, the JavaScript
``@huggingface/inference`` client's ``questionAnswering``, and code written for Inference
Endpoints or SageMaker's Hugging Face containers send and parse (HF's task specification,
"question-answering" in @huggingface/tasks; transformers v4's pipeline where it is silent):

- request: ``{"inputs": {"question", "context"}, "parameters": {"top_k", ...}}``; ``inputs`` may
  be a list of such objects (answered in order, as v4's pipeline answers a list).
- response: ``{"answer", "score", "start", "end"}``, or a list of those, best first, when ``top_k``
  is over 1 (the Python client returns the list; the JavaScript one takes its first); for a list of
  inputs, a list of those results. No answer is ``answer ""`` with ``start == end == 0``, as v4's.
- error: ``{"error": "message", "error_type": "..."}``, as HF's Inference API and TGI send it: both
  clients put ``error`` into the exception they raise.

Same engine, limits, rate limit and statuses as ``/api/answer/``; only the shapes differ.
"""

from collections.abc import Mapping

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from qa import services
from qa.parsers import JSONParser
from qa.reader.errors import InvalidQuestion
from qa.reader.examples import KIT_HO
from qa.reader.options import OPTION_NAMES
from qa.serializers import (
    AnswerOptionsSerializer,
    FlatSerializer,
    QuestionSerializer,
    StrictSerializer,
)
from qa.throttling import QuestionRateThrottle, charge_questions

# --- request ------------------------------------------------------------------------------------


class InferenceApiOptionsSerializer(FlatSerializer):
    """``options`` of HF's former serverless Inference API, which older client code still sends.

    Accepted so that such code runs unchanged, and without effect: qasite caches no answers, and
    always waits up to QA_LOAD_WAIT_SECONDS for a model that is loading."""

    use_cache = serializers.BooleanField(
        required=False, allow_null=True, help_text="Ignored: nothing is cached."
    )
    wait_for_model = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="Ignored: a request always waits a while for a loading model.",
    )


class QuestionAnsweringInputSerializer(StrictSerializer):
    """One question about one context, with the reader's options as ``parameters``."""

    inputs = QuestionSerializer(help_text="The question and the context that may answer it.")
    parameters = AnswerOptionsSerializer(
        required=False,
        allow_null=True,  # null: every option at its default
        help_text="The options of transformers v4's pipeline, by their HF names.",
    )
    options = InferenceApiOptionsSerializer(required=False, allow_null=True)


class QuestionAnsweringBatchInputSerializer(QuestionAnsweringInputSerializer):
    """Several questions in one call, answered in order with the same ``parameters``."""

    inputs = QuestionSerializer(
        many=True,
        allow_empty=False,
        max_length=settings.QA_MAX_BATCH,
        help_text=f"Questions and contexts, answered in order: 1 to {settings.QA_MAX_BATCH}.",
    )


def input_serializer(data) -> QuestionAnsweringInputSerializer:
    """The serializer for one question, or for a batch when ``inputs`` is a JSON list."""
    if isinstance(data, Mapping) and isinstance(data.get("inputs"), list):
        return QuestionAnsweringBatchInputSerializer(data=data)
    return QuestionAnsweringInputSerializer(data=data)


# --- response -----------------------------------------------------------------------------------


class QuestionAnsweringOutputElementSerializer(serializers.Serializer):
    """One answer; ``context[start:end] == answer``, and no answer is ``("", 0, 0)``."""

    answer = serializers.CharField(help_text="The answer, exactly as in the context; '' for none.")
    score = serializers.FloatField(help_text="The model's probability for this answer.")
    start = serializers.IntegerField(help_text="Offset of the answer's first character.")
    end = serializers.IntegerField(help_text="Offset just after the answer's last character.")


class InferenceErrorSerializer(serializers.Serializer):
    """An error as HF's Inference API and TGI send it; both clients show ``error``."""

    error = serializers.CharField(help_text="What went wrong, naming the field at fault.")
    error_type = serializers.CharField(
        help_text="validation, parse_error, unsupported_media_type, request_too_large, "
        "batch_too_large, throttled, model_unavailable, method_not_allowed or not_acceptable."
    )


def output_element(answer: dict) -> dict:
    return {key: answer[key] for key in ("answer", "score", "start", "end")}


def hf_result(result: dict, top_k: int) -> dict | list[dict]:
    """One result of services.answer_questions in HF's shape: the best answer when ``top_k`` is 1
    (v4's pipeline returns a dict then), else the list of candidates, best first (a list even
    when fewer candidates exist: the Python client promises a list for ``top_k`` > 1)."""
    if top_k == 1:
        return output_element(result)
    return [output_element(answer) for answer in result["answers"]]


# --- errors -------------------------------------------------------------------------------------


def error_messages(detail, path: tuple[str, ...] = ()):
    """DRF's nested error detail as "inputs.1.context: message" lines, in order."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            inner = path if key == api_settings.NON_FIELD_ERRORS_KEY else (*path, str(key))
            yield from error_messages(value, inner)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):  # messages, or a batch's items
            inner = path if isinstance(value, str) else (*path, str(index))
            yield from error_messages(value, inner)
    else:
        yield f"{'.'.join(path)}: {detail}" if path else str(detail)


def error_body(response) -> dict:
    """A DRF error response's body in the shape HF's clients read: {"error", "error_type"}."""
    detail = response.data.get("detail") if isinstance(response.data, Mapping) else None
    if isinstance(detail, str) and len(response.data) == 1:
        return {"error": str(detail), "error_type": getattr(detail, "code", "error")}
    return {"error": " ".join(error_messages(response.data)), "error_type": "validation"}


# --- view ---------------------------------------------------------------------------------------

# A list response holds answers (one input, top_k > 1; several inputs, top_k 1) or lists of them
# (several inputs, top_k > 1).
listed_result_schema = PolymorphicProxySerializer(
    component_name="QuestionAnsweringOutput",
    serializers=[
        QuestionAnsweringOutputElementSerializer,
        QuestionAnsweringOutputElementSerializer(many=True),
    ],
    resource_type_field_name=None,
    many=False,
)


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(InferenceErrorSerializer, description=description)


class QuestionAnsweringView(APIView):
    """Answer in Hugging Face's question-answering task shape (a drop-in for its clients)."""

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes = [QuestionRateThrottle]

    def get_exception_handler(self):
        """The project's handler, with its bodies reshaped as HF's {"error", "error_type"}."""
        handler = super().get_exception_handler()

        def handle(exc, context):
            response = handler(exc, context)
            if response is not None:
                response.data = error_body(response)
            return response

        return handle

    def error_path(self, error: InvalidQuestion) -> tuple[str, ...]:
        """Where the input at fault is in the body (qa.exceptions): an option under
        ``parameters``, a question or context under ``inputs`` (at its index in a list)."""
        if error.field in OPTION_NAMES:
            return ("parameters", error.field)
        data = self.request.data
        if isinstance(data, Mapping) and isinstance(data.get("inputs"), list):
            return ("inputs", str(error.index), error.field)
        return ("inputs", error.field)

    @extend_schema(
        summary="Answer a question in Hugging Face's question-answering task shape",
        description="For huggingface_hub's InferenceClient.question_answering and "
        "@huggingface/inference's questionAnswering pointed at this URL. A list of inputs gets "
        "a list of results, in order.",
        examples=[
            OpenApiExample(
                "Kit-Ho Mak",
                value={"inputs": KIT_HO},
                request_only=True,
            )
        ],
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="QuestionAnsweringRequest",
                serializers=[
                    QuestionAnsweringInputSerializer,
                    QuestionAnsweringBatchInputSerializer,
                ],
                resource_type_field_name=None,
            )
        },
        responses={
            200: PolymorphicProxySerializer(
                component_name="QuestionAnsweringResponse",
                serializers=[
                    QuestionAnsweringOutputElementSerializer,
                    serializers.ListSerializer(child=listed_result_schema),
                ],
                resource_type_field_name=None,
                many=False,
            ),
            400: error_response(
                "A field is missing, malformed or out of range, or the body is not JSON; error "
                "names the field at fault (inputs.1.context: ...)."
            ),
            413: error_response(
                "The body is over the upload limit, or a list of inputs holds more characters, "
                "or would put more tokens through the model, than one call may."
            ),
            415: error_response("Not JSON."),
            429: error_response(
                "Too many questions from this client (a list of N inputs counts N); see "
                "Retry-After."
            ),
            503: error_response("The model is not available; see Retry-After."),
        },
    )
    def post(self, request):
        serializer = input_serializer(request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        options = data.get("parameters") or {}
        many = isinstance(data["inputs"], list)
        questions = data["inputs"] if many else [data["inputs"]]
        charge_questions(request, len(questions))  # a list of N inputs costs N
        # InvalidQuestion and ModelUnavailable become 400 and 503 in qa.exceptions' handler, and
        # then HF's error shape in get_exception_handler.
        results = services.answer_questions(
            questions=[{**question, **options} for question in questions]
        )
        top_k = options.get("top_k", 1)
        answers = [hf_result(result, top_k) for result in results]
        return Response(answers if many else answers[0])
