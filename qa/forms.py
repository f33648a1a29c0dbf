"""The HTML page's form: the question, the context and the everyday subset of the API's options
(qa/serializers.py has them all)."""

from django import forms
from django.conf import settings

from qa.reader.options import MAX_TOP_K
from qa.validators import validate_not_blank


def described_by(name: str) -> str:
    """The ids of a field's live character counter and error list (see templates/qa/index.html)."""
    return f"id_{name}-counter id_{name}-errors"


class AskForm(forms.Form):
    """The HTML page's form: the everyday subset of the API's options."""

    question = forms.CharField(
        max_length=settings.QA_MAX_QUESTION_CHARS,
        strip=False,
        validators=[validate_not_blank],
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "aria-describedby": described_by("question")}
        ),
    )
    context = forms.CharField(
        max_length=settings.QA_MAX_CONTEXT_CHARS,
        strip=False,
        validators=[validate_not_blank],
        widget=forms.Textarea(attrs={"rows": 8, "aria-describedby": described_by("context")}),
    )
    handle_impossible_answer = forms.BooleanField(
        required=False,
        label="The context may not contain the answer",
        widget=forms.CheckboxInput(attrs={"role": "switch"}),
    )
    top_k = forms.IntegerField(
        min_value=1,
        max_value=MAX_TOP_K,
        initial=1,
        label="Answers to show",
        widget=forms.NumberInput(attrs={"aria-describedby": "id_top_k-errors"}),
    )
