"""The service layer: plain dicts out, errors as the web layer needs them."""

import functools
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils.html import escape

from qa import services
from qa.model import loading
from qa.model.holder import LazyAnswerer
from qa.reader.errors import InvalidQuestion, ModelUnavailable, TooMuchWork
from qa.reader.examples import KIT_HO
from qa.reader.options import Options
from tests.helpers import HEAVY


def test_answer_questions_returns_best_and_candidates(tiny_model_settings):
    [result] = services.answer_questions(
        questions=[{"question": "Who?", "context": "Kit-Ho Mak is here.", "top_k": 2}]
    )
    assert result["answers"][0] == {
        k: result[k] for k in ("answer", "score", "start", "end", "no_answer")
    }
    assert len(result["answers"]) == 2  # the context has far more than two spans


@pytest.mark.parametrize(
    ("context", "options", "count"),
    [
        ("Kit-Ho Mak is here.", {}, 1),
        ("Kit-Ho Mak is here. " * 100, {}, None),
        ("Kit-Ho Mak is here. " * 100, {"max_seq_len": 64, "doc_stride": 16}, None),
        (HEAVY["context"], {"max_seq_len": 512, "doc_stride": 468}, 200),  # helpers.HEAVY's
    ],
)
def test_each_result_says_how_many_windows_its_context_was_read_in(
    tiny_model_settings, context, options, count
):
    """``windows``: the number of windows the model read, as the engine cut them (the page
    explains percentages across windows only when there were several)."""
    question = {"question": "who", "context": context, **options}  # HEAVY's question
    [result] = services.answer_questions(questions=[question])
    answerer = services.lazy_answerer().get()
    expected = answerer.windows("who", context, Options(**options)).count
    assert result["windows"] == expected == (count or expected)
    assert (expected > 1) is (len(context) > 100)


def test_answer_questions_names_the_question_at_fault(tiny_model_settings):
    questions = [{"question": "Who?", "context": "Kit"}, {"question": "Who?", "context": "\u200b"}]
    with pytest.raises(InvalidQuestion) as raised:
        services.answer_questions(questions=questions)
    assert (raised.value.index, raised.value.field) == (1, "context")


def test_model_status_follows_the_configured_model(settings, tiny_model_settings, tmp_path):
    services.answer_questions(questions=[{"question": "Who?", "context": "Kit"}])
    assert services.model_status()["state"] == "ready"
    settings.QA_MODEL = str(tmp_path / "other")
    assert services.model_status()["state"] == "idle"


@pytest.mark.parametrize("engine, fast", [("onnx", False), ("torch", False), ("torch", True)])
def test_the_revision_engine_threads_and_fast_mode_come_from_settings(
    settings, tiny_model_settings, monkeypatch, engine, fast
):
    settings.QA_ENGINE, settings.QA_FAST, settings.QA_THREADS = engine, fast, 2
    settings.QA_MODEL_REVISION = "v1"  # a directory has none: resolve_model_dir ignores it
    asked = []
    real_load = loading.load_answerer

    def recording_load(*args, **kwargs):
        asked.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loading, "load_answerer", recording_load)
    [result] = services.answer_questions(questions=[{"question": "Who?", "context": "Kit-Ho Mak"}])
    assert asked == [
        {
            "revision": "v1",
            "engine": engine,
            "threads": 2,
            "cache_dir": settings.QA_CACHE_DIR,
            "fast": fast,
        }
    ]
    assert "Kit-Ho Mak"[result["start"] : result["end"]] == result["answer"]


def test_unavailable_model_gives_a_retry_delay(settings, tmp_path):
    settings.QA_MODEL = str(tmp_path / "missing")
    with pytest.raises(ModelUnavailable) as raised:
        services.answer_questions(questions=[{"question": "Who?", "context": "Kit"}])
    assert raised.value.retry_after >= 1
    assert str(raised.value) == "The model directory does not exist."


def recorded_metrics(monkeypatch) -> list[tuple]:
    """Every (name, unit, value) the services record, whatever the platform."""
    recorded = []
    monkeypatch.setattr(services.metrics, "add", lambda *metric: recorded.append(metric))
    return recorded


def test_answers_and_the_no_answer_share_are_metrics(tiny_model_settings, monkeypatch):
    recorded = recorded_metrics(monkeypatch)
    results = services.answer_questions(
        questions=[
            {"question": "Who?", "context": "Kit-Ho Mak is here."},
            {
                "question": "Who?",
                "context": "Kit-Ho Mak is here.",
                "handle_impossible_answer": True,
            },
        ]
    )
    shares = [100 if result["no_answer"] else 0 for result in results]
    answered = [metric for metric in recorded if metric[0] != "ModelLoadTime"]  # if it loaded
    assert answered == [("Answers", "Count", 2), *[("NoAnswer", "Percent", s) for s in shares]]


def test_each_model_load_is_timed_and_a_failed_one_counted(settings, tmp_path, monkeypatch):
    recorded = recorded_metrics(monkeypatch)
    settings.QA_MODEL = str(tmp_path / "missing")
    with pytest.raises(ModelUnavailable):
        services.answer_questions(questions=[{"question": "Who?", "context": "Kit"}])
    [failure, (name, unit, milliseconds)] = recorded
    assert failure == ("ModelLoadFailures", "Count", 1)
    assert (name, unit) == ("ModelLoadTime", "Milliseconds") and milliseconds >= 0


# --- a broken model, end to end -----------------------------------------------------------------


@pytest.fixture
def service_clock(manual_clock, monkeypatch):
    """The service's model holder runs on a clock the test moves, so back-offs pass at once."""
    holder = functools.partial(LazyAnswerer, clock=manual_clock)
    monkeypatch.setattr(services, "LazyAnswerer", holder)
    return manual_clock


def ask_api(client):
    return client.post("/api/answer/", json.dumps(KIT_HO), content_type="application/json")


def test_a_broken_model_is_a_503_everywhere_then_recovers_without_a_restart(
    client, settings, broken_model, service_clock, tmp_path
):
    settings.QA_MODEL = str(broken_model.directory)
    assert settings.DEBUG is False
    retry_afters = []
    for attempt in range(3):
        if attempt:
            service_clock.advance(retry_afters[-1])  # past the back-off: the load is retried
        api = ask_api(client)
        assert api.status_code == 503
        assert api.json() == {"detail": broken_model.reason}
        retry_afters.append(int(api["Retry-After"]))
    assert retry_afters == [2, 4, 8]  # doubling each time (bounded: see test_loading)

    page = client.post("/", {**KIT_HO, "top_k": 1})
    html = page.content.decode()
    assert page.status_code == 503
    assert "The model is not available right now." in html and escape(broken_model.reason) in html
    assert 'name="question"' in html and 'name="context"' in html  # the form is still there
    assert client.get("/").status_code == 200
    health = client.get("/api/health/")
    assert health.status_code == 503
    assert health.json()["state"] == "failed" and health.json()["error"] == broken_model.reason
    for response in (api, page, health):
        assert str(tmp_path) not in response.content.decode()

    broken_model.repair()
    assert ask_api(client).status_code == 503  # still within the back-off
    service_clock.advance(8)
    answer = ask_api(client)
    assert answer.status_code == 200
    best = answer.json()
    assert KIT_HO["context"][best["start"] : best["end"]] == best["answer"]
    assert client.get("/api/health/").json() == {
        "model": broken_model.directory.name,
        "quantization": None,
        "state": "ready",
        "engine": "onnx",
        "error": None,
    }


# --- the work of one call is bounded before the model runs -------------------------------------


@pytest.fixture
def forward_calls(tiny_model_settings, monkeypatch) -> list:
    """The model runs of the service's answerer, recorded."""
    answerer = services.lazy_answerer().get()
    calls, forward = [], answerer._forward
    monkeypatch.setattr(answerer, "_forward", lambda *batch: calls.append(1) or forward(*batch))
    return calls


@pytest.mark.parametrize(
    ("requests", "refused"),
    [
        ([HEAVY], False),
        ([HEAVY, {"question": "who", "context": "a a"}], False),  # 102,400 + 512 tokens
        ([HEAVY, HEAVY], True),  # 204,800 tokens
        ([{"question": "who", "context": "a a"}, HEAVY, HEAVY], True),  # refused, none run
    ],
)
def test_the_token_bound_holds_for_the_whole_call_before_any_question_runs(
    forward_calls, requests, refused
):
    from qa.reader.answerer import MAX_BATCH_TOKENS

    if refused:
        with pytest.raises(TooMuchWork, match=rf"at most {MAX_BATCH_TOKENS}\b"):
            services.answer_questions(questions=requests)
        assert forward_calls == []
    else:
        assert len(services.answer_questions(questions=requests)) == len(requests)
        assert len(forward_calls) == len(requests)


# --- one holder, one load, whatever the threads ------------------------------------------------

THREADS = 16


def test_threads_asking_at_once_for_a_new_model_get_one_holder(tiny_model_settings, monkeypatch):
    """Each construction waits (briefly) for the others: two threads that could build a holder
    each would both be inside at once, as functools.cache allowed."""
    together = threading.Barrier(THREADS, timeout=2)

    class SlowToBuild(LazyAnswerer):
        def __init__(self, *args, **kwargs):
            try:
                together.wait()
            except threading.BrokenBarrierError:
                pass  # alone inside, as it should be: the others wait for the lock
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(services, "LazyAnswerer", SlowToBuild)
    start = threading.Barrier(THREADS, timeout=60)

    def ask(_):
        start.wait()
        return services.lazy_answerer()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        holders = list(pool.map(ask, range(THREADS)))
    assert len(set(map(id, holders))) == 1


def test_many_threads_answering_and_checking_health_load_the_model_once(
    tiny_model_settings, monkeypatch
):
    """Answers, health and a background load, all at once on a cold process: one load (counted
    by the loader), every answer given, and health ready on the configured engine."""
    loads, asking = [], threading.Barrier(THREADS + 1, timeout=60)
    real_load = loading.load_answerer

    def counted_load(*args, **kwargs):
        loads.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loading, "load_answerer", counted_load)

    def work(index):
        asking.wait()
        if index % 4 == 0:
            return services.model_status()["state"]
        return services.answer_questions(questions=[KIT_HO])[0]["answer"]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = pool.map(work, range(THREADS))
        asking.wait()
        services.lazy_answerer().load_in_background().join()
        results = list(results)
    assert len(loads) == 1
    answers = [result for index, result in enumerate(results) if index % 4]
    assert len(set(answers)) == 1 and answers[0] in KIT_HO["context"]
    assert services.model_status()["state"] == "ready"
    assert services.model_status()["engine"] == "onnx"
