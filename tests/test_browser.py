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
from pathlib import Path

import pytest

from qa import services
from qa.errors import ModelUnavailable
from qa.examples import KIT_HO
from tests.helpers import REAL_MODEL, REPO

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


def stub_answer(monkeypatch, answer: str, score: float = 0.87, runners_up=()):
    """Make the service find `answer` in the context (exact Python offsets), or no answer if "",
    then each (answer, score) of runners_up."""
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
        return [{**answers[0], "answers": answers}]

    monkeypatch.setattr(services, "answer_questions", answer_questions)
    return calls


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
    expect(page.locator(".candidates li")).to_have_count(len(body["answers"]) - 1)
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
    real = services.answer_questions
    calls = []

    def warming_up_once(*, questions):
        calls.append(questions)
        if len(calls) == 1:
            raise ModelUnavailable("The model is loading.", retry_after=1)
        return real(questions=questions)

    monkeypatch.setattr(services, "answer_questions", warming_up_once)
    ask(page, KIT_HO["question"], KIT_HO["context"])
    expect(page.locator("#ask-status")).to_have_text("The model is warming up, retrying…")
    expect(page.locator("#ask-button")).to_have_class(re.compile("is-busy"))
    expect(page.locator("#result-body mark")).to_be_visible()
    expect(page.locator("#ask-status")).to_be_empty()
    assert len(calls) == 2


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


def test_percentages_are_explained_alike_with_and_without_javascript(
    new_page, loaded_model, monkeypatch
):
    """Candidates from different windows can add up to more than 100%: the note under them says
    what a percentage means, and the script renders exactly the server's result."""
    stub_answer(monkeypatch, "Kit-Ho Mak", 0.85, runners_up=[("Kit-Ho", 0.33), ("Mak", 0.09)])
    results = {}
    for javascript in (True, False):
        page = new_page(javascript=javascript)
        expect(page.locator("#score-note")).to_be_hidden()
        ask(page, KIT_HO["question"], KIT_HO["context"], top_k=3)
        expect(page.locator(".candidates li")).to_have_count(2)
        note = page.locator("#score-note")
        expect(note).to_be_visible()
        expect(note).to_contain_text("not shares of one whole")
        results[javascript] = page.locator("#result").inner_text()
    assert results[True] == results[False]
    assert all(f"{percent}%" in results[True] for percent in (85, 33, 9))


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
    expect(page.locator(".candidates li")).to_have_count(len(api["answers"]) - 1)


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
    page = new_page(viewport=viewport)
    page.fill("#id_top_k", "3")
    page.click("#ask-button")
    expect(page.locator("#result-body mark")).to_be_visible()
    page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
    path = screenshot_dir / f"page-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
