"""The JSON API's request and response shapes; the OpenAPI schema is generated from them."""

import copy
from collections.abc import Mapping

from django.conf import settings
from rest_framework import serializers

from qa.model.files import QUANTIZATIONS
from qa.model.holder import ModelState
from qa.reader.errors import BatchTooLarge
from qa.reader.options import MAX_TOP_K, MAX_WINDOW_TOKENS
from qa.validators import validate_not_blank


class TextField(serializers.CharField):
    """A JSON string only. DRF's CharField also takes numbers, but the text of 1e2 is "100.0":
    answer offsets would index a text the client never sent."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def text_field(max_length: int, help_text: str, **kwargs) -> serializers.CharField:
    return TextField(
        min_length=1,  # for the schema: "" gets DRF's "may not be blank" before this check
        max_length=max_length,
        trim_whitespace=False,
        validators=[validate_not_blank],
        help_text=help_text,
        **kwargs,
    )


def option_field(min_value: int, max_value: int, help_text: str, **kwargs):
    """An integer option; the browsable API's form shows its default, if it has one. null is
    its default (AnswerOptionsSerializer.validate)."""
    if "default" in kwargs:
        kwargs["initial"] = kwargs["default"]
    return serializers.IntegerField(
        min_value=min_value, max_value=max_value, help_text=help_text, allow_null=True, **kwargs
    )


def flag_field(default: bool, help_text: str) -> serializers.BooleanField:
    """A boolean option. Its checkbox in the browsable API's form starts at the default (DRF's
    starts unchecked); templates/rest_framework/horizontal/checkbox.html sends it unchecked too.
    null is its default (AnswerOptionsSerializer.validate)."""
    return serializers.BooleanField(
        default=default, initial=default, allow_null=True, help_text=help_text
    )


class AnswerBatchSerializer(serializers.ListSerializer):
    """A JSON list of questions (a batch of /api/answer/, or the HF endpoint's list of inputs),
    whose questions and contexts hold at most settings.QA_MAX_BATCH_CHARS characters in all
    (413 BatchTooLarge above it)."""

    def validate(self, attrs):
        characters = sum(len(item["question"]) + len(item["context"]) for item in attrs)
        if characters > settings.QA_MAX_BATCH_CHARS:
            raise BatchTooLarge(characters, settings.QA_MAX_BATCH_CHARS)
        return attrs


class StrictSerializer(serializers.Serializer):
    """A serializer that refuses the fields it does not declare."""

    # Names tolerated without being fields (none here).
    IGNORED_FIELDS = frozenset()

    def to_internal_value(self, data):
        """Reject unknown fields: a misspelt option ("topk") must not be silently ignored."""
        if isinstance(data, Mapping):
            unknown = set(data) - set(self.fields) - self.IGNORED_FIELDS
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in sorted(unknown)}
                )
        return super().to_internal_value(data)


class FlatSerializer(StrictSerializer):
    """A strict serializer of flat fields (no nested serializers), bound cheaply."""

    def get_fields(self):
        """Shallow copies of the declared fields, where DRF makes deep ones.

        A deep copy re-runs every field's constructor, which on a short input costs a sizeable
        share of the model's own time. These flat fields keep no per-request state but what
        binding sets on the copy.
        """
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class QuestionSerializer(FlatSerializer):
    """One question about one context."""

    class Meta:
        list_serializer_class = AnswerBatchSerializer

    question = text_field(settings.QA_MAX_QUESTION_CHARS, "The question to answer.")
    context = text_field(
        settings.QA_MAX_CONTEXT_CHARS,
        "The text that may hold the answer.",
        style={"base_template": "textarea.html", "rows": 8},  # in the browsable API's form
    )


class AnswerOptionsSerializer(FlatSerializer):
    """The options of transformers v4's QA pipeline, with its defaults."""

    top_k = option_field(1, MAX_TOP_K, "How many candidate answers to return.", default=1)
    doc_stride = option_field(
        1,
        MAX_WINDOW_TOKENS,
        "Tokens of overlap between windows of a long context (default: min(max_seq_len/2, 128)).",
        required=False,
    )
    max_answer_len = option_field(1, MAX_WINDOW_TOKENS, "Longest answer, in tokens.", default=15)
    max_seq_len = option_field(
        16,
        MAX_WINDOW_TOKENS,
        "Tokens per window, question included (default: 384, or less if the model takes less).",
        required=False,
    )
    max_question_len = option_field(
        1, MAX_WINDOW_TOKENS, "Tokens of the question kept; the rest is cut.", default=64
    )
    handle_impossible_answer = flag_field(
        False, "Allow the answer 'not in this context' (SQuAD v2); it comes with no_answer true."
    )
    align_to_words = flag_field(True, "Widen answers to whole words.")

    def validate(self, attrs):
        """An option given as null is left to its default, as if absent: the browsable API's
        "Raw data" tab sends "doc_stride": null, and HF's clients send nulls for parameters
        they leave unset."""
        return {name: value for name, value in attrs.items() if value is not None}


class AnswerRequestSerializer(QuestionSerializer, AnswerOptionsSerializer):
    """One question about one context, with the options of transformers v4's QA pipeline."""

    # Sent by the browsable API's HTML form; not an input of ours.
    IGNORED_FIELDS = frozenset({"csrfmiddlewaretoken"})


class AnswerSerializer(serializers.Serializer):
    """One candidate answer; ``context[start:end] == answer``."""

    answer = serializers.CharField(help_text="The answer text, exactly as in the context.")
    score = serializers.FloatField(help_text="The model's probability for this answer.")
    start = serializers.IntegerField(help_text="Offset of the answer's first character.")
    end = serializers.IntegerField(help_text="Offset just after the answer's last character.")
    no_answer = serializers.BooleanField(
        help_text="True for 'the context does not answer the question' (answer is empty)."
    )


class AnswerResponseSerializer(AnswerSerializer):
    """The best answer at top level, how many windows the context was read in, and all ``top_k``
    candidates, best first."""

    windows = serializers.IntegerField(
        min_value=1,
        help_text="How many overlapping windows of max_seq_len tokens the context was read in "
        "(1 when it fits in one). Each window is scored on its own: the scores of answers from "
        "different windows are not shares of one whole, and can add up to more than 1.",
    )
    answers = AnswerSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    """An error that is about the request as a whole, not one of its fields."""

    detail = serializers.CharField(help_text="What went wrong.")


class ModelStatusSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The model served.")
    quantization = serializers.ChoiceField(
        QUANTIZATIONS,
        allow_null=True,
        help_text="How the served graph is quantized (bake_model --quantize); null: float32.",
    )
    state = serializers.ChoiceField(
        [state.value for state in ModelState], help_text="Whether the model is loaded yet."
    )
    engine = serializers.ChoiceField(
        ["onnx", "torch"],
        allow_null=True,
        help_text=(
            "The engine that serves the model once it is loaded (null before): QA_ENGINE's, or "
            "torch where the onnx engine could not export a model that has no ONNX graph."
        ),
    )
    error = serializers.CharField(allow_null=True, help_text="Why loading failed, if it did.")


def request_serializer(data) -> AnswerRequestSerializer:
    """A serializer for one request object or for a batch (a JSON list) of them."""
    if isinstance(data, list):
        return AnswerRequestSerializer(
            data=data, many=True, allow_empty=False, max_length=settings.QA_MAX_BATCH
        )
    return AnswerRequestSerializer(data=data)
