"""The web layer's views, thin: each validates with a form or serializer, calls one function of
qa/services.py and renders. The HTML page (``index``), the JSON API (``AnswerView``, DRF's
browsable API included), health (``HealthView``) and the 400 page. The Hugging Face-shaped
endpoint is qa/huggingface.py; the routes are qa/urls.py. A new endpoint: a view here (or a
module beside it), its serializer in qa/serializers.py, its route in qa/urls.py.
"""

import math

from django.conf import settings
from django.core.exceptions import BadRequest
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from qa import services
from qa.forms import AskForm
from qa.model.holder import ModelState
from qa.parsers import JSONParser, form_not_utf8
from qa.reader.errors import InvalidQuestion, ModelUnavailable
from qa.reader.examples import EXAMPLES, KIT_HO
from qa.serializers import (
    AnswerRequestSerializer,
    AnswerResponseSerializer,
    ErrorSerializer,
    ModelStatusSerializer,
    request_serializer,
)
from qa.throttling import QuestionRateThrottle, charge_questions, throttle_questions


def percent(score: float) -> int:
    """A score (a probability) as a whole percentage, halves rounded up as the page's script
    does."""
    return math.floor(score * 100 + 0.5)


INDEX_METHODS = ["GET", "HEAD", "POST"]


@require_http_methods(INDEX_METHODS)
@throttle_questions
def index(request):
    """The HTML form; a POST re-renders it with the answer highlighted in the context."""
    example = EXAMPLES.get(request.GET.get("example", ""), KIT_HO)
    if request.content_type == "application/x-www-form-urlencoded" and (
        why := form_not_utf8(request.body)
    ):
        raise BadRequest(why)  # templates/400.html: the text sent is not the text answered
    form = AskForm(
        request.POST or None,
        initial={name: value for name, value in example.items() if name in AskForm.base_fields},
    )
    result = unavailable = None
    loading = False
    if form.is_valid():
        try:
            [result] = services.answer_questions(questions=[form.cleaned_data])
        except InvalidQuestion as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        except ModelUnavailable as error:
            unavailable = error
            loading = services.model_status()["state"] != ModelState.FAILED
    if result:
        result = shown_result(result)
    context = form.cleaned_data.get("context", "") if result else ""
    response = render(
        request,
        "qa/index.html",
        {
            "form": form,
            "result": result,
            "unavailable": unavailable,
            "loading": loading,
            "before": context[: result["start"]] if result else "",
            "after": context[result["end"] :] if result else "",
            "max_question_chars": settings.QA_MAX_QUESTION_CHARS,
            "max_context_chars": settings.QA_MAX_CONTEXT_CHARS,
            "examples": EXAMPLES,
        },
        # A question the form refuses is the asker's error, as the API's 400 says: the page comes
        # back with the field errors beside their fields.
        status=503 if unavailable else 400 if form.is_bound and form.errors else 200,
    )
    if unavailable:
        response["Retry-After"] = str(unavailable.retry_after)
    return response


def shown_result(result: dict) -> dict:
    """A copy of a service result (the API's dict) with what the page shows: percentages, the
    runners-up worth listing (``listed``: those that round to 1% or more) and how many others
    there are (``unlisted``). qa/static/qa/ask.js does the same."""
    answers = [{**answer, "percent": percent(answer["score"])} for answer in result["answers"]]
    listed = [answer for answer in answers[1:] if answer["percent"] > 0]
    return {
        **result,
        "percent": percent(result["score"]),
        "answers": answers,
        "listed": listed,
        "unlisted": len(answers) - 1 - len(listed),
    }


index.allowed_methods = INDEX_METHODS  # a 405 before CSRF: qasite.middleware


# The schema of a JSON request: one object or a JSON list of them; many=False keeps the list
# variant in the schema (without it drf-spectacular drops it). Form posts (the browsable API)
# carry one request only.
request_or_batch_schema = PolymorphicProxySerializer(
    component_name="AnswerRequestOrBatch",
    serializers=[AnswerRequestSerializer, AnswerRequestSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


class AnswerView(APIView):
    """Answer a question from a context, or a JSON list of such requests in one call."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]
    throttle_classes = [QuestionRateThrottle]

    def get_serializer(self, *args, **kwargs):
        """Lets the browsable API draw an HTML form for POST."""
        return AnswerRequestSerializer(*args, **kwargs)

    def error_path(self, error: InvalidQuestion) -> tuple[str, ...]:
        """Where the field at fault is in the body (qa.exceptions): ``{index: {field: ...}}`` in
        a batch, ``{field: ...}`` otherwise."""
        if isinstance(self.request.data, list):
            return (str(error.index), error.field)
        return (error.field,)

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, description="Usage and limits.")
    def get(self, request):
        return Response(
            {
                "usage": "POST {question, context} (or a JSON list of them) to get answers.",
                "example": KIT_HO,
                "limits": {
                    "question_chars": settings.QA_MAX_QUESTION_CHARS,
                    "context_chars": settings.QA_MAX_CONTEXT_CHARS,
                    "batch": settings.QA_MAX_BATCH,
                    "batch_chars": settings.QA_MAX_BATCH_CHARS,
                    "body_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
                },
            }
        )

    @extend_schema(
        # What Swagger UI's "Try it out" starts from (else a body of the schema's maxima, which
        # a long context refuses): the page's example, every option at its default.
        examples=[OpenApiExample("Kit-Ho Mak", value=KIT_HO, request_only=True)],
        request={
            "application/json": request_or_batch_schema,
            "application/x-www-form-urlencoded": AnswerRequestSerializer,
            "multipart/form-data": AnswerRequestSerializer,
        },
        responses={
            200: PolymorphicProxySerializer(
                component_name="AnswerResponseOrBatch",
                serializers=[AnswerResponseSerializer, AnswerResponseSerializer(many=True)],
                resource_type_field_name=None,
                many=False,
            ),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A field is missing, malformed or out of range: {field: [messages]}, "
                "{index: {field: [messages]}} for a batch, or {detail} for a body that does not "
                "parse.",
            ),
            413: OpenApiResponse(
                ErrorSerializer,
                description="The body is over the upload limit, or a batch holds more characters "
                "than one call may, or would put more tokens through the model than one call may "
                "(windows x max_seq_len, summed over the batch).",
            ),
            415: OpenApiResponse(
                ErrorSerializer,
                description="Neither JSON nor form data, or a JSON body sent under another "
                "Content-Type (the detail says to send Content-Type: application/json).",
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many questions from this client (a batch of N counts N); see "
                "Retry-After.",
            ),
            503: OpenApiResponse(
                ErrorSerializer, description="The model is not available; see Retry-After."
            ),
        },
    )
    def post(self, request):
        serializer = request_serializer(request.data)
        serializer.is_valid(raise_exception=True)
        many = isinstance(serializer.validated_data, list)
        questions = serializer.validated_data if many else [serializer.validated_data]
        charge_questions(request, len(questions))
        # InvalidQuestion and ModelUnavailable become 400 and 503 in qa.exceptions' handler.
        results = services.answer_questions(questions=questions)
        # The service's dicts already have the documented shape (AnswerResponseSerializer);
        # serializing them again would cost more than the model on a short input.
        return Response(results if many else results[0])


class AlwaysJSON(DefaultContentNegotiation):
    """JSON whatever Accept asks for: a health checker must never get a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class HealthView(APIView):
    """Whether the model is loaded, loading or failed, and which model (503 when it failed).

    JSON only, with nothing built from Host (no browsable page, no links), since it answers any
    Host (qasite.middleware.HealthCheckMiddleware).
    """

    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON

    @extend_schema(responses={200: ModelStatusSerializer, 503: ModelStatusSerializer})
    def get(self, request):
        model = services.model_status()
        return Response(
            model,
            status=status.HTTP_503_SERVICE_UNAVAILABLE
            if model["state"] == ModelState.FAILED
            else 200,
        )


def bad_request(request, exception):
    """templates/400.html (qasite/urls.py's handler400; under /api/ qasite.middleware makes it
    JSON). Not Django's defaults.bad_request, whose CSRF decorator reads the body again: a form
    body Django refuses to read (a charset other than UTF-8) raised a second time there, and the
    client got a 500."""
    return render(request, "400.html", status=400)
