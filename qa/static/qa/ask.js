/* The page, enhanced: live character counters, example presets filled in place, and answers
 * fetched from the JSON API without reloading. Without this file the form posts to the server,
 * which renders the same result (templates/qa/_result.html is the markup built here). No inline
 * script or style anywhere, for a strict Content-Security-Policy. */
"use strict";

(function () {
  const form = document.getElementById("ask-form");
  if (!form || !window.fetch) return;

  const fields = form.elements;
  const button = document.getElementById("ask-button");
  const buttonLabel = button.querySelector(".button-label");
  const status = document.getElementById("ask-status");
  const formErrors = document.getElementById("form-errors");
  const resultSection = document.getElementById("result");
  const resultBody = document.getElementById("result-body");
  const scoreNote = document.getElementById("score-note");
  const scoreNoteWindows = document.getElementById("score-note-windows");
  const FIELD_NAMES = ["question", "context", "handle_impossible_answer", "top_k"];
  const MAX_RETRIES = 10; // 503 while the model loads: retry after Retry-After, this many times
  const FINDING = "Finding the answer…";
  const LOADING = "Loading the model… (first question after a cold start)";
  // Once the model was seen ready, health is asked only when an answer takes longer than this
  // (another worker, or a restarted server, may be loading it); and how often while it loads.
  const SLOW_MS = 1500;
  const HEALTH_POLL_MS = 2000;
  let busy = false;
  let asking = 0; // which ask is under way: a late health answer must not touch a later one
  let modelSeenReady = false;

  /* --- small helpers --------------------------------------------------------------------- */

  /** An element with attributes and children (strings become text: nothing is parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  /** Scores are probabilities in [0, 1]; rounded as the server rounds them. */
  function percent(score) {
    return Math.round(score * 100);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /* --- character counters ---------------------------------------------------------------- */

  // Counted in code points, as the server counts (a string's .length counts UTF-16 units).
  const counters = Array.from(document.querySelectorAll("[data-counter-for]"));
  function updateCounter(counter) {
    const input = document.getElementById(counter.dataset.counterFor);
    const used = Array.from(input.value).length;
    const max = Number(counter.dataset.max);
    counter.textContent = used >= max
      ? `${used} / ${max} characters, the limit`
      : `${used} / ${max} characters`;
    counter.classList.toggle("counter-near", used >= 0.9 * max);
  }
  for (const counter of counters) {
    const input = document.getElementById(counter.dataset.counterFor);
    input.addEventListener("input", () => updateCounter(counter));
    updateCounter(counter);
    counter.hidden = false;
  }
  const updateCounters = () => counters.forEach(updateCounter);

  /* --- presets ----------------------------------------------------------------------------- */

  // Without JavaScript the preset links reload the page with the example (?example=...).
  for (const preset of document.querySelectorAll(".preset")) {
    preset.addEventListener("click", (event) => {
      event.preventDefault();
      fields.question.value = preset.dataset.question;
      fields.context.value = preset.dataset.context;
      fields.handle_impossible_answer.checked = preset.dataset.impossible === "true";
      clearErrors();
      updateCounters();
      fields.question.focus();
    });
  }

  /* --- errors and status ---------------------------------------------------------------- */

  function clearErrors() {
    formErrors.hidden = true;
    formErrors.replaceChildren();
    for (const name of FIELD_NAMES) {
      document.getElementById(`id_${name}-errors`).replaceChildren();
      fields[name].removeAttribute("aria-invalid");
    }
  }

  function showError(...message) {
    formErrors.replaceChildren(el("p", {}, ...message));
    formErrors.hidden = false;
  }

  /** A 400's {"field": ["message", ...]}: each next to its field, anything else above. */
  function showFieldErrors(errors) {
    let first = null;
    for (const [name, messages] of Object.entries(errors)) {
      const list = Array.isArray(messages) ? messages : [String(messages)];
      if (FIELD_NAMES.includes(name)) {
        const box = document.getElementById(`id_${name}-errors`);
        box.replaceChildren(...list.map((message) => el("p", {}, message)));
        fields[name].setAttribute("aria-invalid", "true");
        first = first || fields[name];
      } else {
        const prefix = name === "detail" || name === "non_field_errors" ? "" : `${name}: `;
        formErrors.append(...list.map((message) => el("p", {}, prefix + message)));
        formErrors.hidden = false;
      }
    }
    if (first) first.focus();
  }

  function setBusy(on) {
    busy = on;
    button.classList.toggle("is-busy", on);
    button.setAttribute("aria-disabled", String(on));
    buttonLabel.textContent = on ? FINDING : "Find the answer";
    resultSection.setAttribute("aria-busy", String(on));
    if (on) status.textContent = FINDING;
  }

  /* --- the result ------------------------------------------------------------------------- */

  /** The markup of templates/qa/_result.html, from the API's JSON and the context sent. */
  function renderResult(result, context) {
    const nodes = [];
    if (result.no_answer) {
      nodes.push(
        el("p", { class: "answer answer-none" }, "No answer found in this context"),
        el("p", { class: "answer-note" }, "The model thinks the text does not answer this question."),
      );
    } else {
      nodes.push(el("p", { class: "answer" }, result.answer));
    }
    const score = percent(result.score);
    nodes.push(
      el("div", { class: "confidence" },
        el("span", { class: "confidence-label", id: "confidence-label" }, "Confidence"),
        el("meter", {
          class: "bar", min: "0", max: "100", low: "34", high: "67", optimum: "100",
          value: String(score), "aria-labelledby": "confidence-label",
        }, `${score}%`),
        el("span", { class: "confidence-value" }, `${score}%`)),
    );
    if (!result.no_answer) {
      // Offsets are Python string indices: code points, not UTF-16 units.
      const chars = Array.from(context);
      nodes.push(
        el("h3", {}, "In the context"),
        el("div", {
          class: "context-highlight", role: "region", tabindex: "0",
          "aria-label": "The context, with the answer highlighted",
        },
        chars.slice(0, result.start).join(""),
        el("mark", {}, chars.slice(result.start, result.end).join("")),
        chars.slice(result.end).join("")),
      );
    }
    // Runners-up that round to 0% are counted, not listed (as qa/views.py's shown_result).
    const others = (result.answers || []).slice(1);
    const listed = others.filter((candidate) => percent(candidate.score) > 0);
    const unlisted = others.length - listed.length;
    if (listed.length) {
      nodes.push(
        el("h3", {}, "Other candidates"),
        el("ol", { class: "candidates", start: "2" }, ...listed.map((candidate) => el("li", {},
          el("span", { class: "candidate-text" },
            candidate.no_answer ? el("em", {}, "No answer") : candidate.answer),
          " ", el("span", { class: "score" }, `${percent(candidate.score)}%`),
          candidate.no_answer ? null : " ",
          candidate.no_answer ? null
            : el("span", { class: "offsets" }, `characters ${candidate.start}–${candidate.end}`)))),
      );
    }
    if (unlisted) {
      const which = listed.length ? `${unlisted} more` : `The other ${unlisted}`;
      nodes.push(el("p", { class: "candidates-unlisted" },
        `${which} candidate${unlisted === 1 ? "" : "s"} scored under 1%.`));
    }
    resultBody.replaceChildren(...nodes);
    const windows = result.windows || 1;
    scoreNoteWindows.textContent = String(windows);
    scoreNote.hidden = windows < 2;
    scrollToMark();
    // On a phone the result is below the form: bring it into view.
    if (resultSection.getBoundingClientRect().top > window.innerHeight * 0.8) {
      resultSection.scrollIntoView({ block: "start" });
    }
  }

  /** Back to "the answer will appear here": after an error, the answer to an earlier question
   * must not stand beside the question in the form. */
  function clearResult() {
    resultBody.replaceChildren(el("p", { class: "placeholder" },
      "The answer will appear here, highlighted in its context."));
    scoreNote.hidden = true;
  }

  /** Scroll a long context (in its own scroll box) so that the highlighted answer is visible. */
  function scrollToMark() {
    const box = resultBody.querySelector(".context-highlight");
    const mark = box && box.querySelector("mark");
    if (!mark) return;
    box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
  }

  /* --- asking ----------------------------------------------------------------------------- */

  /** The model's state as health says it (idle, loading, ready or failed), or null if it
   * cannot be had. */
  async function modelState() {
    try {
      const health = await fetch(form.dataset.healthUrl, { headers: { Accept: "application/json" } });
      return (await health.json()).state || null;
    } catch (error) {
      return null;
    }
  }

  /** While ask number `id` waits for its answer, say "Loading the model…" for as long as health
   * says the model is loading (or not yet asked for: the question will load it). On the page's
   * first question health is asked at once, since a cold server loads the model for it; once
   * the model was seen ready, only when an answer is slow. `answered` settles with the answer. */
  async function watchTheModel(id, answered) {
    const current = () => busy && asking === id;
    if (modelSeenReady) await Promise.race([sleep(SLOW_MS), answered]);
    while (current()) {
      const state = await modelState();
      if (!current()) return;
      if (state === "ready") modelSeenReady = true;
      if (state !== "idle" && state !== "loading") {
        if (status.textContent === LOADING) status.textContent = FINDING;
        return;
      }
      status.textContent = LOADING;
      await Promise.race([sleep(HEALTH_POLL_MS), answered]);
    }
  }

  async function ask() {
    const topK = fields.top_k.value.trim();
    const context = fields.context.value;
    const payload = {
      question: fields.question.value,
      context,
      top_k: /^\d+$/.test(topK) ? Number(topK) : topK,
      handle_impossible_answer: fields.handle_impossible_answer.checked,
    };
    clearErrors();
    setBusy(true);
    const id = ++asking;
    let answeredNow;
    const answered = new Promise((resolve) => { answeredNow = resolve; });
    watchTheModel(id, answered);
    try {
      for (let attempt = 0; ; attempt++) {
        let response;
        try {
          response = await fetch(form.dataset.apiUrl, {
            method: "POST",
            headers: { "Content-Type": "application/json", Accept: "application/json" },
            body: JSON.stringify(payload),
          });
        } catch (error) {
          status.textContent = "";
          clearResult();
          showError("Could not reach the server. Check your connection and try again.");
          return;
        }
        if (response.status === 503 && attempt < MAX_RETRIES && (await modelState()) !== "failed") {
          const seconds = Math.min(30, Math.max(1, parseInt(response.headers.get("Retry-After"), 10) || 2));
          status.textContent = LOADING;
          await sleep(seconds * 1000);
          continue;
        }
        const body = await response.json().catch(() => null);
        status.textContent = "";
        if (response.ok && body) {
          modelSeenReady = true;
          renderResult(body, context);
          return;
        }
        clearResult();
        if (response.status === 400 && body) {
          showFieldErrors(body);
        } else if (response.status === 429) {
          const seconds = parseInt(response.headers.get("Retry-After"), 10) || 60;
          showError(el("strong", {}, "Too many questions at once."),
            ` You have asked many questions in a short time. Please wait ${seconds} second${seconds === 1 ? "" : "s"} and try again.`);
        } else if (response.status === 503) {
          showError(el("strong", {}, "The model is not available right now."),
            ` ${(body && body.detail) || ""} Please try again in a moment.`);
        } else {
          showError((body && body.detail) || `Something went wrong (error ${response.status}). Please try again.`);
        }
        return;
      }
    } finally {
      answeredNow();
      setBusy(false);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!busy) ask();
  });

  // Ctrl+Enter (or Cmd+Enter) submits from any field, the textarea included.
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  scrollToMark(); // a result rendered by the server (a plain POST)
})();
