from qa.forms import AskForm


def test_form_keeps_whitespace_but_refuses_blank_text():
    form = AskForm({"question": " Who? ", "context": "  Kit  ", "top_k": 1})
    assert form.is_valid()
    assert form.cleaned_data["context"] == "  Kit  "
    blank = AskForm({"question": "   ", "context": "\n", "top_k": 1})
    assert not blank.is_valid()
    assert set(blank.errors) == {"question", "context"}


def test_form_limits_lengths_and_top_k():
    form = AskForm({"question": "q" * 501, "context": "c" * 20_001, "top_k": 21})
    assert not form.is_valid()
    assert set(form.errors) == {"question", "context", "top_k"}
