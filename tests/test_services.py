"""The service layer: plain dicts out, errors as the web layer needs them."""

import pytest

from qa import services


def test_answer_questions_returns_best_and_candidates(tiny_model_settings):
    [result] = services.answer_questions(
        requests=[{"question": "Who?", "context": "Kit-Ho Mak is here.", "top_k": 2}]
    )
    assert result["answers"][0] == {k: result[k] for k in ("answer", "score", "start", "end", "no_answer")}
    assert len(result["answers"]) <= 2


def test_answer_questions_names_the_request_at_fault(tiny_model_settings):
    requests = [{"question": "Who?", "context": "Kit"}, {"question": "Who?", "context": "\u200b"}]
    with pytest.raises(services.InvalidQuestion) as raised:
        services.answer_questions(requests=requests)
    assert (raised.value.index, raised.value.field) == (1, "context")


def test_model_status_follows_the_configured_model(settings, tiny_model_settings, tmp_path):
    services.answer_questions(requests=[{"question": "Who?", "context": "Kit"}])
    assert services.model_status()["state"] == "ready"
    settings.QA_MODEL = str(tmp_path / "other")
    assert services.model_status()["state"] == "idle"


def test_unavailable_model_gives_a_retry_delay(settings, tmp_path):
    settings.QA_MODEL = str(tmp_path / "missing")
    with pytest.raises(services.ModelUnavailable) as raised:
        services.answer_questions(requests=[{"question": "Who?", "context": "Kit"}])
    assert raised.value.retry_after >= 1
    assert str(raised.value) == "The model directory does not exist."
    services._lazy_answerer.cache_clear()
