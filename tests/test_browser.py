"""The page in a real headless browser: Debian's Chromium driven by Playwright, against
pytest-django's live server (a real threaded HTTP server in this process, so a test can stub
qa.services to reach states the tiny random model cannot: no answer, warming up, a known span).

No browser is downloaded: Playwright launches /usr/bin/chromium (`apt-get install chromium`;
.ci/run installs it). Without it, or without the playwright package, these tests skip.
Screenshots go to a temporary directory, or to $QA_SCREENSHOTS (e.g. `QA_SCREENSHOTS=docs`).
"""

import json
import os
import re
import threading
from pathlib import Path

import pytest

from qa import services
from qa.model.holder import LazyAnswerer
from qa.reader.errors import ModelUnavailable
from qa.reader.examples import KIT_HO
from tests.helpers import PATIENCE, REAL_MODEL, REPO
from tests.properties import LINE_ENDING_CASES, answer_the_pattern

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="no playwright (pip install -r requirements/dev.txt)"
)
expect = sync_api.expect

CHROMIUM = Path(os.environ.get("QA_CHROMIUM", "/usr/bin/chromium"))
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# A bound on what the page does (the model is loaded first: loaded_model), far beyond what it
# takes, so that a busy machine makes a test slower, never failed.
expect.set_options(timeout=60_000)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, proxy=None
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """Opens the page in a fresh browser context (viewport, JavaScript on or off)."""
    contexts = []

    def open_page(path="/", *, viewport=DESKTOP, javascript=True):
        context = browser.new_context(viewport=viewport, java_script_enabled=javascript)
        contexts.append(context)
        page = context.new_page()
        page.goto(live_server.url + path)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def loaded_model(tiny_model_settings):
    """The tiny model, loaded before the page opens: expect's timeout bounds what the page does,
    never a model load, which a busy machine can make slower than that."""
    services.lazy_answerer().get()
    return tiny_model_settings


@pytest.fixture
def page(new_page, loaded_model):
    return new_page()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    directory = Path(os.environ.get("QA_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def stub_answer(monkeypatch, answer: str, score: float = 0.87, runners_up=(), windows=1):
    """Make the service find `answer` in the context (exact Python offsets), or no answer if "",
    then each (answer, score) of runners_up, in a context read in `windows` windows."""
    calls = []

    def candidate(context, answer, score):
        if answer:
            start = context.index(answer)
            found = {"answer": answer, "score": score, "start": start, "end": start + len(answer)}
        else:
            found = {"answer": "", "score": score, "start": 0, "end": 0}
        return {**found, "no_answer": not answer}

    def answer_questions(*, questions):
        calls.append(questions)
        context = questions[0]["context"]
        answers = [candidate(context, *found) for found in [(answer, score), *runners_up]]
        return [{**answers[0], "windows": windows, "answers": answers}]

    monkeypatch.setattr(services, "answer_questions", answer_questions)
    return calls


LOADING = "Loading the model… (first question after a cold start)"


@pytest.fixture
def cold_model(monkeypatch, tiny_answerer):
    """A server whose model has not loaded: the real model holder (qa.model.holder), whose load
    waits
    until the test sets the event returned; then it has the tiny model."""
    loaded = threading.Event()

    def load():
        assert loaded.wait(timeout=120), "the test never let the model load"
        return tiny_answerer

    holder = LazyAnswerer(load)
    monkeypatch.setattr(services, "lazy_answerer", lambda: holder)
    return holder, loaded


def listed(result: dict) -> list[dict]:
    """The runners-up the page lists: those whose percentage is not 0."""
    return [answer for answer in result["answers"][1:] if round(answer["score"] * 100) > 0]


def ask(page, question, context, *, top_k=1):
    page.fill("#id_question", question)
    page.fill("#id_context", context)
    page.fill("#id_top_k", str(top_k))
    page.click("#ask-button")


def run_axe(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed ({AXE}; run npm ci)")
    # Evaluated through the DevTools protocol: a <script> tag would be blocked by our own CSP.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert results["testEngine"]["name"] == "axe-core"
    if os.environ.get("QA_AXE_REPORT"):  # every impact, for a human to read
        print(json.dumps([(v["id"], v["impact"], len(v["nodes"])) for v in results["violations"]]))
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# --- with JavaScript --------------------------------------------------------------------------


def test_answer_is_fetched_and_highlighted_in_place(page):
    page.evaluate("window.notReloaded = true")
    with page.expect_response("**/api/answer/") as response_info:
        ask(page, KIT_HO["question"], KIT_HO["context"], top_k=3)
    body = response_info.value.json()
    mark = page.locator("#result-body .context-highlight mark")
    expect(mark).to_have_text(body["answer"])
    expect(page.locator("#result-body .answer")).to_have_text(body["answer"])
    expect(page.locator(".context-highlight")).to_have_text(KIT_HO["context"])
    percent = min(100, round(body["score"] * 100))
    expect(page.locator(".confidence-value")).to_have_text(f"{percent}%")
    expect(page.locator("meter.bar")).to_have_attribute("value", str(percent))
    expect(page.locator(".candidates li")).to_have_count(len(listed(body)))
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#id_question")).to_have_value(KIT_HO["question"])  # inputs kept
    expect(page.locator("#ask-button")).to_have_attribute("aria-disabled", "false")


def test_counters_follow_the_input(page):
    counter = page.locator("#id_question-counter")
    expect(counter).to_have_text("16 / 500 characters")  # the example question
    page.fill("#id_question", "Who?")
    expect(counter).to_have_text("4 / 500 characters")
    page.fill("#id_question", "q" * 500)
    expect(counter).to_have_text("500 / 500 characters, the limit")
    expect(page.locator("#id_context-counter")).to_contain_text("/ 20000 characters")


def test_no_answer_state_from_a_preset(page, monkeypatch):
    stub_answer(monkeypatch, "", score=0.93)
    page.get_by_role("link", name="No answer").click()
    expect(page.locator("#id_question")).to_have_value("Who was the first person on the Moon?")
    expect(page.get_by_role("switch")).to_be_checked()
    page.click("#ask-button")
    no_answer = page.locator("#result-body .answer-none")
    expect(no_answer).to_have_text("No answer found in this context")
    expect(page.locator("#result-body mark")).to_have_count(0)
    expect(page.locator(".confidence-value")).to_have_text("93%")


def test_field_errors_appear_next_to_the_fields(page):
    ask(page, "   ", KIT_HO["context"])
    errors = page.locator("#id_question-errors")
    expect(errors).to_have_text("This field may not be blank.")
    expect(page.locator("#id_question")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_question")).to_be_focused()
    expect(page.locator("#id_context")).to_have_value(KIT_HO["context"])
    ask(page, "Who?", KIT_HO["context"])  # fixing it clears the error
    expect(page.locator("#result-body mark")).to_be_visible()
    expect(errors).to_be_empty()


def test_warming_up_is_retried_automatically(page, monkeypatch):
    """A 503 while the model loads: the page says so and asks again after Retry-After. The
    retry's answer waits until the test has seen the loading message (on a busy machine the
    message, shown for a second, was missed between two of Playwright's looks)."""
    real = services.answer_questions
    calls = []
    seen_loading = threading.Event()

    def warming_up_once(*, questions):
        calls.append(questions)
        if len(calls) == 1:
            raise ModelUnavailable("The model is loading.", retry_after=1)
        assert seen_loading.wait(timeout=PATIENCE)
        return real(questions=questions)

    monkeypatch.setattr(services, "answer_questions", warming_up_once)
    ask(page, KIT_HO["question"], KIT_HO["context"])
    try:
        expect(page.locator("#ask-status")).to_have_text(LOADING)
        expect(page.locator("#ask-button")).to_have_class(re.compile("is-busy"))
    finally:
        seen_loading.set()
    expect(page.locator("#result-body mark")).to_be_visible()
    expect(page.locator("#ask-status")).to_be_empty()
    assert len(calls) == 2


@pytest.mark.parametrize("who_loads", ["the question", "the background loader"])
def test_a_cold_first_question_says_the_model_is_loading_until_it_is(
    page, cold_model, settings, who_loads
):
    """The issue: on a cold server the page said only "Finding the answer…" while the model
    loaded (~14 s), and "warming up" only after a 503, 25 s later. Now the page asks health with
    its first question and says the model is loading for as long as it is: whether the question
    loads it itself (no load begun yet), or waits for the background loader's load (qasite.wsgi
    starts it after the first page) and gets a 503 that the page retries."""
    holder, loaded = cold_model
    if who_loads == "the background loader":
        settings.QA_LOAD_WAIT_SECONDS = 0  # the 503 at once, not after 25 s
        holder.load_in_background()
    ask(page, KIT_HO["question"], KIT_HO["context"])
    status = page.locator("#ask-status")
    expect(status).to_have_text(LOADING)
    expect(page.locator("#ask-button")).to_have_class(re.compile("is-busy"))
    assert holder.state == "loading"
    loaded.set()
    expect(page.locator("#result-body mark")).to_be_visible()
    expect(status).to_be_empty()
    expect(page.locator("#ask-button")).to_have_attribute("aria-disabled", "false")


# Counts the page's requests to health, as the page makes them.
COUNT_HEALTH_REQUESTS = """
window.healthRequests = 0;
const pageFetch = window.fetch;
window.fetch = (url, ...rest) => {
  if (String(url).endsWith("/api/health/")) window.healthRequests++;
  return pageFetch(url, ...rest);
};
"""


def test_a_warm_model_is_not_announced_and_health_is_asked_only_when_an_answer_is_slow(
    page, monkeypatch
):
    """Health says ready: the page says "Finding the answer…", never "Loading the model". It asks
    health with the page's first question; later, only when an answer is slow (the page's clock
    is Playwright's fake one, moved by the test: no timing decides the outcome)."""
    page.clock.install()
    page.add_init_script(COUNT_HEALTH_REQUESTS)
    page.reload()
    statuses = []
    page.expose_function("recordStatus", lambda text: statuses.append(text))
    page.evaluate(
        "new MutationObserver(() => window.recordStatus(document.getElementById('ask-status')"
        ".textContent)).observe(document.getElementById('ask-status'), {childList: true, "
        "characterData: true, subtree: true})"
    )
    real = services.answer_questions
    real(questions=[KIT_HO])  # the model loaded
    held = threading.Event()

    def answer_when_let(*, questions):
        assert held.wait(timeout=120)
        return real(questions=questions)

    monkeypatch.setattr(services, "answer_questions", answer_when_let)
    button = page.locator("#ask-button")
    for slow, health_requests in [(False, 1), (False, 1), (True, 2)]:
        if not slow:
            held.set()
        else:
            held.clear()
        ask(page, KIT_HO["question"], KIT_HO["context"])
        if slow:
            page.clock.run_for(2000)  # past SLOW_MS: health is asked
            expect(page.locator("#ask-status")).to_have_text("Finding the answer…")
            assert page.evaluate("window.healthRequests") == health_requests
            held.set()
        expect(button).to_have_attribute("aria-disabled", "false")
        expect(page.locator("#ask-status")).to_be_empty()
        assert page.evaluate("window.healthRequests") == health_requests
    assert LOADING not in statuses and "Finding the answer…" in statuses


def test_a_model_that_failed_to_load_is_reported_not_retried(page, monkeypatch):
    """The review: a 503 from a model that FAILED to load said "warming up, retrying" and spent
    the rate limit on each retry. Health says failed: the 503's detail is shown, no retry."""
    calls = []

    def failed(*, questions):
        calls.append(questions)
        raise ModelUnavailable("The model weights could not be loaded.", retry_after=1)

    monkeypatch.setattr(services, "answer_questions", failed)
    monkeypatch.setattr(
        services,
        "model_status",
        lambda: {
            "model": "m",
            "state": "failed",
            "error": "The model weights could not be loaded.",
        },
    )
    ask(page, KIT_HO["question"], KIT_HO["context"])
    expect(page.get_by_role("alert")).to_contain_text("The model weights could not be loaded.")
    expect(page.locator("#ask-button")).to_have_attribute("aria-disabled", "false")
    page.wait_for_timeout(1500)  # past Retry-After: nothing more is asked
    assert len(calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        "field",
        "network",
        "throttled",
    ],
)
def test_an_error_clears_the_previous_answer(page, error):
    """The issue: after a validation error the previous answer stayed beside a question it does
    not answer. Any error puts the placeholder back, and hides the note on percentages."""
    ask(page, KIT_HO["question"], "Kit-Ho Mak is here. " * 100, top_k=3)
    expect(page.locator("#result-body mark")).to_be_visible()
    if error == "field":
        ask(page, "   ", KIT_HO["context"])
        expect(page.locator("#id_question-errors")).to_have_text("This field may not be blank.")
    else:
        page.route(
            "**/api/answer/",
            lambda route: (
                route.abort("internetdisconnected")
                if error == "network"
                else route.fulfill(
                    status=429, headers={"Retry-After": "5"}, json={"detail": "Slow"}
                )
            ),
        )
        ask(page, KIT_HO["question"], KIT_HO["context"])
        expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#result-body")).to_have_text(
        "The answer will appear here, highlighted in its context."
    )
    expect(page.locator("#score-note")).to_be_hidden()


def test_the_context_is_sent_and_highlighted_as_the_textarea_holds_it(page, monkeypatch):
    """Line endings: a textarea holds LF only (the browser turns CR and CRLF typed or pasted
    into LF); the script sends that text as it is, and cuts the highlight from that same text by
    code points, so the offsets index what was sent."""
    calls = []
    monkeypatch.setattr(services, "answer_questions", answer_the_pattern(calls))
    for context, answer in LINE_ENDING_CASES.values():
        page.fill("#id_context", context)
        held = page.input_value("#id_context")
        assert held == context.replace("\r\n", "\n").replace("\r", "\n")
        with page.expect_response("**/api/answer/"):
            page.click("#ask-button")
        expect(page.locator("#ask-button")).to_have_attribute("aria-disabled", "false")
        mark = page.locator("#result-body mark")
        expect(mark).to_have_text(answer.replace("\r\n", "\n").replace("\r", "\n"))
        assert calls[-1]["context"] == held
        highlighted = page.locator(".context-highlight").evaluate("box => box.textContent")
        assert highlighted == held


def test_network_failure_is_reported(page):
    page.route("**/api/answer/", lambda route: route.abort("internetdisconnected"))
    ask(page, KIT_HO["question"], KIT_HO["context"])
    expect(page.get_by_role("alert")).to_contain_text("Could not reach the server")
    expect(page.locator("#ask-button")).to_have_attribute("aria-disabled", "false")
    expect(page.locator("#id_context")).to_have_value(KIT_HO["context"])


def test_long_context_scrolls_the_answer_into_view(page, monkeypatch):
    # An emoji first: offsets are code points (Python), not UTF-16 units (JavaScript).
    filler = "Nothing of interest happens in this sentence. " * 320
    context = "🙂 " + filler + "I'm Kit-Ho Mak. I come from Hong Kong. " + filler[:500]
    assert 14_000 < len(context) < 20_000
    stub_answer(monkeypatch, "Kit-Ho Mak")
    ask(page, KIT_HO["question"], context)
    mark = page.locator("#result-body mark")
    expect(mark).to_have_text("Kit-Ho Mak")
    box = page.locator(".context-highlight")
    assert box.evaluate("b => b.scrollTop") > 1000
    mark_box, scroll_box = mark.bounding_box(), box.bounding_box()
    bottom = scroll_box["y"] + scroll_box["height"] - mark_box["height"]
    assert scroll_box["y"] <= mark_box["y"] <= bottom


def test_keyboard_only_use(page):
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    for _ in range(15):  # skip link, brand, API links, presets... then the question
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "id_question":
            break
    question = page.locator("#id_question")
    expect(question).to_be_focused()
    assert question.evaluate("e => getComputedStyle(e).outlineStyle") != "none"  # visible focus
    page.keyboard.press("Control+A")
    page.keyboard.type("Where do I come from?")
    page.keyboard.press("Tab")
    expect(page.locator("#id_context")).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#result-body mark")).to_be_visible()


# Records what the Content-Security-Policy blocks, from before any of the page's own scripts run.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


def test_nothing_is_blocked_by_the_servers_content_security_policy(
    browser, live_server, loaded_model
):
    """The server's own strict policy (no 'unsafe-inline') on the page and DRF's browsable API:
    both work, and the browser reports no violation, in events or on the console."""
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    console = []
    context.on("console", lambda message: console.append(message.text))
    page = context.new_page()
    try:
        response = page.goto(live_server.url + "/")
        assert "script-src 'self';" in response.headers["content-security-policy"]
        ask(page, KIT_HO["question"], KIT_HO["context"], top_k=2)
        expect(page.locator("#result-body mark")).to_be_visible()
        page_violations = page.evaluate("window.cspViolations")

        response = page.goto(live_server.url + "/api/answer/")
        assert "style-src 'self';" in response.headers["content-security-policy"]
        page.get_by_role("link", name="HTML form").click()  # DRF's tabs: jQuery and Bootstrap
        page.fill("#post-object-form [name=question]", KIT_HO["question"])
        page.fill("#post-object-form [name=context]", KIT_HO["context"])
        page.locator("#post-object-form button").click()
        expect(page.locator(".response-info")).to_contain_text("HTTP 200 OK")
        expect(page.locator(".response-info")).to_contain_text('"answers"')
        api_violations = page.evaluate("window.cspViolations")
    finally:
        context.close()
    assert (page_violations, api_violations) == ([], [])
    assert not [text for text in console if "Content Security Policy" in text]


@pytest.mark.parametrize("windows", [1, 3])
def test_percentages_are_explained_alike_with_and_without_javascript(
    new_page, loaded_model, monkeypatch, windows
):
    """Candidates from different windows can add up to more than 100%: when the context took
    several windows, a note under them says so and what a percentage means; for one window,
    no note. The script renders exactly the server's result."""
    stub_answer(
        monkeypatch,
        "Kit-Ho Mak",
        0.85,
        runners_up=[("Kit-Ho", 0.33), ("Mak", 0.09)],
        windows=windows,
    )
    results = {}
    for javascript in (True, False):
        page = new_page(javascript=javascript)
        expect(page.locator("#score-note")).to_be_hidden()
        ask(page, KIT_HO["question"], KIT_HO["context"], top_k=3)
        expect(page.locator(".candidates li")).to_have_count(2)
        note = page.locator("#score-note")
        if windows > 1:
            expect(note).to_be_visible()
            expect(note).to_contain_text(f"read in {windows} overlapping windows")
            expect(note).to_contain_text("not shares of one whole")
        else:
            expect(note).to_be_hidden()
        results[javascript] = page.locator("#result").inner_text()
    assert results[True] == results[False]
    assert all(f"{percent}%" in results[True] for percent in (85, 33, 9))


@pytest.mark.parametrize(
    ("best", "runners_up", "listed", "unlisted"),
    [
        (
            ("", 0.97),
            [("Kit-Ho", 0.004), ("Mak", 0.001)],
            [],
            "The other 2 candidates scored under 1%.",
        ),
        (
            ("", 0.6),
            [("Kit-Ho", 0.3), ("Mak", 0.001)],
            ["Kit-Ho"],
            "1 more candidate scored under 1%.",
        ),
        (
            ("Kit-Ho Mak", 0.9),
            [("", 0.05), ("Mak", 0.003)],
            ["No answer"],
            "1 more candidate scored under 1%.",
        ),
        (("Kit-Ho Mak", 0.9), [("Kit-Ho", 0.05)], ["Kit-Ho"], None),
    ],
    ids=["no answer, all others at 0%", "no answer, one other above", "answer", "all listed"],
)
def test_candidates_at_0_percent_are_counted_not_listed_alike_with_and_without_javascript(
    new_page, tiny_model_settings, monkeypatch, best, runners_up, listed, unlisted
):
    """The issue: a "no answer" listed "Other candidates" at 0%. A runner-up that rounds to 0%
    is not listed: one line says how many there were."""
    stub_answer(monkeypatch, *best, runners_up=runners_up)
    results = {}
    for javascript in (True, False):
        page = new_page(javascript=javascript)
        ask(page, "Who was the first person on the Moon?", KIT_HO["context"], top_k=3)
        expect(page.locator(".confidence-value")).to_have_text(f"{round(best[1] * 100)}%")
        texts = page.locator(".candidates .candidate-text")
        expect(texts).to_have_text(listed)
        expect(page.get_by_role("heading", name="Other candidates")).to_have_count(
            1 if listed else 0
        )
        note = page.locator(".candidates-unlisted")
        if unlisted:
            expect(note).to_have_text(unlisted)
        else:
            expect(note).to_have_count(0)
        assert " 0%" not in page.locator("#result").inner_text()
        results[javascript] = page.locator("#result").inner_text()
    assert results[True] == results[False]


@pytest.mark.parametrize("width", [1280, 1100, 992, 800, 390])
def test_no_example_chip_wraps_alone(new_page, width):
    """The issue: at 1280 px the "No answer" chip wrapped alone onto a second line. The chips'
    lines are balanced: the last chip shares its line with another chip or the label."""
    page = new_page(viewport={"width": width, "height": 800})
    middles = page.locator(".presets > *").evaluate_all(
        "items => items.map(item => { const box = item.getBoundingClientRect(); "
        "return box.top + box.height / 2; })"
    )
    last_line = [middle for middle in middles if abs(middle - middles[-1]) < 8]
    assert len(last_line) > 1, middles


def test_the_api_reference_renders_every_operation_under_the_policy(
    browser, live_server, loaded_model
):
    """Swagger UI, from our own static files: the operations listed, one tried from the page,
    and nothing blocked by the Content-Security-Policy nor any console error."""
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    errors = []
    context.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        response = page.goto(live_server.url + "/api/docs/")
        assert "script-src 'self';" in response.headers["content-security-policy"]
        operations = page.locator(".opblock-summary-path")
        expect(operations.first).to_be_visible()
        paths = set(operations.all_inner_texts())
        assert {"/api/answer/", "/api/health/"} <= {path.strip() for path in paths}
        page.locator(".opblock-get", has_text="/api/health/").locator(".opblock-summary").click()
        page.get_by_role("button", name="Try it out").click()
        page.get_by_role("button", name="Execute").click()
        expect(page.locator(".responses-wrapper .live-responses-table")).to_contain_text('"state"')
        expect(page.get_by_role("link", name="YAML")).to_have_attribute("href", "/api/schema/")
        violations = page.evaluate("window.cspViolations")
        if os.environ.get("QA_SCREENSHOTS"):
            page.screenshot(path=str(Path(os.environ["QA_SCREENSHOTS"]) / "api-reference.png"))
    finally:
        context.close()
    assert violations == []
    assert errors == []


def test_browsable_api_checkbox_can_be_turned_off(browser, live_server, loaded_model, monkeypatch):
    """An unchecked box sends nothing; the hidden "false" before it makes it mean false."""
    calls = stub_answer(monkeypatch, "Kit-Ho Mak")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/api/answer/")
        page.get_by_role("link", name="HTML form").click()
        form = page.locator("#post-object-form")
        form.locator("[name=question]").fill(KIT_HO["question"])
        expect(form.locator("textarea[name=context]")).to_be_visible()
        form.locator("[name=context]").fill(KIT_HO["context"])
        align = form.get_by_label("Align to words")
        expect(align).to_be_checked()  # the default
        align.uncheck()
        form.get_by_label("Handle impossible answer").check()
        form.locator("button").click()
        expect(page.locator(".response-info")).to_contain_text("HTTP 200 OK")
        page.get_by_role("link", name="qasite").click()
        expect(page).to_have_url(live_server.url + "/")
    finally:
        context.close()
    [[request]] = calls
    assert (request["align_to_words"], request["handle_impossible_answer"]) == (False, True)


def test_too_many_questions_says_how_long_to_wait(page):
    page.route(
        "**/api/answer/",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "42", "Content-Type": "application/json"},
            body=json.dumps({"detail": "Request was throttled. Expected available in 42 seconds."}),
        ),
    )
    ask(page, KIT_HO["question"], KIT_HO["context"])
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Too many questions at once.")
    expect(alert).to_contain_text("Please wait 42 seconds")
    expect(page.locator("#ask-button")).to_have_attribute("aria-disabled", "false")


# --- without JavaScript -----------------------------------------------------------------------


def test_without_javascript_the_form_post_gives_the_same_result(
    new_page, live_server, loaded_model
):
    page = new_page(javascript=False)
    expect(page.locator("#id_question-counter")).to_be_hidden()
    page.get_by_role("link", name="Eiffel Tower").click()  # a preset is a plain link
    expect(page.locator("#id_question")).to_have_value("When was the Eiffel Tower completed?")
    page.fill("#id_top_k", "3")
    page.click("#ask-button")
    page.wait_for_load_state()
    context = page.input_value("#id_context")
    question = page.input_value("#id_question")
    api = page.request.post(
        live_server.url + "/api/answer/",
        data=json.dumps({"question": question, "context": context, "top_k": 3}),
        headers={"Content-Type": "application/json"},
    ).json()
    expect(page.locator("#result-body mark")).to_have_text(api["answer"])
    expect(page.locator(".context-highlight")).to_have_text(context)
    percent = min(100, round(api["score"] * 100))
    expect(page.locator(".confidence-value")).to_have_text(f"{percent}%")
    expect(page.locator(".candidates li")).to_have_count(len(listed(api)))


def test_without_javascript_the_form_sends_crlf_and_the_highlight_is_cut_from_it(
    new_page, monkeypatch
):
    """The browser submits a textarea's lines ended by CRLF (HTML's form submission): that is
    the context as submitted, the service gets it unchanged, and the page's highlight is cut
    from it at the answer's offsets."""
    calls = []
    monkeypatch.setattr(services, "answer_questions", answer_the_pattern(calls))
    page = new_page(javascript=False)
    context, answer = LINE_ENDING_CASES["mixed inside the answer"]
    page.fill("#id_context", context)
    page.click("#ask-button")
    page.wait_for_load_state()
    as_lf = context.replace("\r\n", "\n").replace("\r", "\n")
    assert calls[-1]["context"] == as_lf.replace("\n", "\r\n")
    expect(page.locator("#result-body mark")).to_have_text(
        answer.replace("\r\n", "\n").replace("\r", "\n")
    )
    highlighted = page.locator(".context-highlight").evaluate("box => box.textContent")
    assert highlighted == as_lf  # the HTML parser reads CRLF as LF


def test_without_javascript_field_errors_show(new_page, loaded_model):
    page = new_page(javascript=False)
    page.fill("#id_question", "  ")
    page.click("#ask-button")
    expect(page.locator("#id_question-errors")).to_have_text("This field may not be blank.")
    expect(page.locator("#id_question")).to_have_attribute("aria-invalid", "true")


# --- accessibility and screenshots ------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_serious_violations(new_page, loaded_model, monkeypatch, viewport):
    page = new_page(viewport=viewport)
    assert run_axe(page) == []
    ask(page, "   ", KIT_HO["context"])  # field errors
    expect(page.locator("#id_question-errors")).not_to_be_empty()
    assert run_axe(page) == []
    ask(page, KIT_HO["question"], KIT_HO["context"], top_k=3)  # an answer with candidates
    expect(page.locator("#result-body mark")).to_be_visible()
    assert run_axe(page) == []
    stub_answer(monkeypatch, "")
    page.click("#ask-button")  # no answer
    expect(page.locator(".answer-none")).to_be_visible()
    assert run_axe(page) == []


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_screenshots(new_page, settings, modern_model_dir, screenshot_dir, viewport, name):
    """The page with an answer; with the real model when ../shared has it (for docs/)."""
    real = (REAL_MODEL / "config.json").is_file()
    settings.QA_MODEL = str(REAL_MODEL if real else modern_model_dir)
    services.lazy_answerer().get()  # loaded first (an export can outlast expect's timeout)
    page = new_page(viewport=viewport)
    page.fill("#id_top_k", "3")
    page.click("#ask-button")
    expect(page.locator("#result-body mark")).to_be_visible()
    page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
    path = screenshot_dir / f"page-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
