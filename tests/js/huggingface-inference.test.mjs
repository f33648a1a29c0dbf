// The real @huggingface/inference client against qasite's Hugging Face endpoint.
// tests/test_huggingface.py runs each test alone against pytest-django's live server, set up as
// the test needs (model, rate limit), with QASITE_URL=http://localhost:<port>; without it, skips.
import assert from "node:assert/strict";
import { test } from "node:test";

import { InferenceClient, InferenceClientProviderApiError } from "@huggingface/inference";

const origin = process.env.QASITE_URL;

// Nothing but the live server may be reached: the hub (or anything else) is refused.
const realFetch = globalThis.fetch;
globalThis.fetch = (url, ...rest) => {
  if (!String(url).startsWith(`${origin}/`)) throw new Error(`the client tried to reach ${url}`);
  return realFetch(url, ...rest);
};
const skip = origin ? false : "QASITE_URL is not set (tests/test_huggingface.py sets it)";
const endpointUrl = `${origin}/api/hf/question-answering/`;
const hf = new InferenceClient().endpoint(endpointUrl);

const KIT_HO = { question: "What is my name?", context: "I'm Kit-Ho Mak. I come from Hong Kong." };
const MOON = {
  question: "Who was the first person on the Moon?",
  context:
    "Hong Kong is a special administrative region on the southern coast of China. It has " +
    "a population of about 7.5 million people.",
};

/** qasite's own API on the same request: what the client's answer must agree with. */
async function apiAnswer(request) {
  const response = await fetch(`${origin}/api/answer/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request),
  });
  assert.equal(response.status, 200);
  const { answer, score, start, end } = await response.json();
  return { answer, score, start, end };
}

/** Calls the client and returns the error it throws, which must be its own. */
async function thrown(args, options) {
  const error = await hf.questionAnswering(args, options).then(
    () => assert.fail("the client did not throw"),
    (error) => error,
  );
  assert.ok(error instanceof InferenceClientProviderApiError, `${error.name}: ${error.message}`);
  return error;
}

test("answers a question as qasite's API does", { skip }, async () => {
  const answer = await hf.questionAnswering({ inputs: KIT_HO });
  assert.deepEqual(answer, await apiAnswer(KIT_HO));
  assert.equal(KIT_HO.context.slice(answer.start, answer.end), answer.answer);
});

test("top_k above 1 gives the best of the candidates", { skip }, async () => {
  // The client keeps the first of the list it is sent.
  const answer = await hf.questionAnswering({ inputs: KIT_HO, parameters: { top_k: 3 } });
  assert.deepEqual(answer, await apiAnswer({ ...KIT_HO, top_k: 3 }));
});

test("no answer is an empty answer at offset zero", { skip }, async () => {
  const answer = await hf.questionAnswering({
    inputs: MOON,
    parameters: { handle_impossible_answer: true },
  });
  assert.deepEqual({ answer: answer.answer, start: answer.start, end: answer.end }, { answer: "", start: 0, end: 0 });
  assert.ok(answer.score > 0 && answer.score <= 1);
});

test("a blank field throws the client's error with our message", { skip }, async () => {
  const error = await thrown({ inputs: { ...KIT_HO, question: " " } });
  assert.equal(error.message, "Failed to perform inference: inputs.question: This field may not be blank.");
  assert.equal(error.httpResponse.status, 400);
});

test("a field over its limit throws with our message", { skip }, async () => {
  const error = await thrown({ inputs: { ...KIT_HO, context: "c".repeat(20001) } });
  assert.equal(
    error.message,
    "Failed to perform inference: inputs.context: Ensure this field has no more than 20000 characters.",
  );
  assert.equal(error.httpResponse.status, 400);
});

test("the rate limit throws with our message", { skip }, async () => {
  await hf.questionAnswering({ inputs: KIT_HO });
  const error = await thrown({ inputs: KIT_HO });
  assert.match(error.message, /^Failed to perform inference: Request was throttled\. Expected available in \d+ seconds?\.$/);
  assert.equal(error.httpResponse.status, 429);
});

test("an unavailable model throws with the reason, when told not to retry", { skip }, async () => {
  // On a 503 the client retries at once, without end, unless retry_on_error is false.
  const error = await thrown({ inputs: KIT_HO }, { retry_on_error: false });
  assert.equal(error.message, "Failed to perform inference: The model directory does not exist.");
  assert.equal(error.httpResponse.status, 503);
});
