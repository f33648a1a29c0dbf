"""The engine's algorithm, with a real (tiny) tokenizer and model forwards that point at words."""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qa.model.tokenization import load_tokenizer
from qa.reader.answerer import MAX_BATCH_TOKENS, QuestionAnswerer
from qa.reader.errors import InvalidQuestion
from qa.reader.examples import KIT_HO
from qa.reader.options import MAX_WINDOW_TOKENS, Options
from tests.helpers import REAL_MODEL, SPECIAL_TOKENS, tiny_vocab
from tests.properties import (
    COMBINING_MARK,
    OPTIONS,
    assert_consistent_answers,
    line_ended_texts,
    texts,
)

CONTEXT = KIT_HO["context"]


class PointingForward:
    """A model that wants the answer to start at one token and end at another (by token text)."""

    def __init__(self, tokenizer, start: str | None, end: str | None, peak: float = 10.0):
        self.start_id = tokenizer.token_to_id(start) if start else None
        self.end_id = tokenizer.token_to_id(end) if end else None
        self.peak = peak
        self.batches = []

    def __call__(self, input_ids, attention_mask, token_type_ids):
        self.batches.append((input_ids.copy(), attention_mask.copy(), token_type_ids.copy()))
        start = np.zeros(input_ids.shape, dtype=np.float32)
        end = np.zeros(input_ids.shape, dtype=np.float32)
        context = token_type_ids == 1
        if self.start_id is None:
            start[:, 0] = end[:, 0] = self.peak  # "no answer": everything on [CLS]
        else:
            start[(input_ids == self.start_id) & context] = self.peak
            end[(input_ids == self.end_id) & context] = self.peak
        return start, end


@pytest.fixture(scope="module")
def tokenizer_parts(request):
    """The tiny model's tokenizer, [CLS]/[PAD] ids and length, the tokenizer set up as the engine
    sets it up (typed special tokens are text), so that tests can count tokens as it does."""
    tokenizer, special, max_length = load_tokenizer(request.getfixturevalue("modern_model_dir"))
    tokenizer.encode_special_tokens = True
    return tokenizer, special, max_length


def answerer_with(tokenizer_parts, forward) -> QuestionAnswerer:
    """The engine on a tokenizer set up as tokenizer_parts gives it, with ``forward`` for model."""
    tokenizer, special, max_length = tokenizer_parts
    return QuestionAnswerer(
        tokenizer=tokenizer, forward=forward, special_tokens=special, model_max_length=max_length
    )


def make_answerer(tokenizer_parts, start, end, **kwargs):
    forward = PointingForward(tokenizer_parts[0], start, end, **kwargs)
    return answerer_with(tokenizer_parts, forward), forward


def test_answer_is_the_pointed_span_with_exact_offsets(tokenizer_parts):
    answerer, _ = make_answerer(tokenizer_parts, "hong", "kong")
    [best] = answerer.answer("Where do I come from?", CONTEXT)
    assert (best.answer, best.start, best.end, best.no_answer) == ("Hong Kong", 28, 37, False)
    assert CONTEXT[best.start : best.end] == best.answer
    assert 0.9 < best.score <= 1.0


def test_align_to_words_widens_a_word_piece_to_the_whole_word(tokenizer_parts):
    # "Mak" is m ##a ##k in the tiny vocab: pointing at ##a gives the whole word when aligned.
    answerer, _ = make_answerer(tokenizer_parts, "##a", "##a")
    [aligned] = answerer.answer("What is my name?", CONTEXT)
    assert aligned.answer == "Mak"
    [raw] = answerer.answer("What is my name?", CONTEXT, Options(align_to_words=False))
    assert (raw.answer, raw.start, raw.end) == ("a", 12, 13)


def test_all_windows_of_a_long_context_go_through_the_model_in_one_batch(tokenizer_parts):
    context = "the city was built in the year " * 120 + CONTEXT
    answerer, forward = make_answerer(tokenizer_parts, "hong", "kong")
    [best] = answerer.answer("Where?", context, Options(max_seq_len=64, doc_stride=16))
    assert best.answer == "Hong Kong"
    assert context[best.start : best.end] == "Hong Kong"
    assert len(forward.batches) == 1
    input_ids, attention_mask, _ = forward.batches[0]
    assert input_ids.shape[0] > 10 and input_ids.shape[1] <= 64
    # Only the last window is shorter; its padding is masked out.
    assert attention_mask[:-1].all() and not attention_mask[-1].all()


def test_default_window_shape_is_384_tokens_with_128_stride(tokenizer_parts):
    context = "the year " * 400
    answerer, forward = make_answerer(tokenizer_parts, "year", "year")
    answerer.answer("When?", context)
    input_ids, _, token_type_ids = forward.batches[0]
    assert input_ids.shape[1] == 384
    first_window_context = input_ids[0][token_type_ids[0] == 1][:-1]  # without the final [SEP]
    second_window_context = input_ids[1][token_type_ids[1] == 1][:-1]
    overlap = 128
    assert (first_window_context[-overlap:] == second_window_context[:overlap]).all()


def test_same_answer_from_overlapping_windows_is_one_candidate_ranked_by_summed_score(
    tokenizer_parts,
):
    context = "a " * 20 + "hong kong " + "a " * 20
    answerer, forward = make_answerer(tokenizer_parts, "hong", "kong")
    answers = answerer.answer("Where?", context, Options(max_seq_len=40, doc_stride=30, top_k=5))
    windows_with_answer = sum(
        1 for ids in forward.batches[0][0] if (ids == answerer._tokenizer.token_to_id("hong")).any()
    )
    assert windows_with_answer > 1
    hong_kong = [answer for answer in answers if answer.answer == "hong kong"]
    assert len(hong_kong) == 1
    # About 1 from each window, summed as in transformers v4 to rank it; reported capped at 1.
    assert answers[0] is hong_kong[0] and hong_kong[0].score == 1.0
    assert all(0.0 <= answer.score <= 1.0 for answer in answers)


def test_no_answer_needs_handle_impossible_answer(tokenizer_parts):
    answerer, _ = make_answerer(tokenizer_parts, None, None)
    [best] = answerer.answer("What is my name?", CONTEXT, Options(handle_impossible_answer=True))
    assert best.no_answer and (best.answer, best.start, best.end) == ("", 0, 0)
    assert best.score > 0.99
    answers = answerer.answer("What is my name?", CONTEXT, Options(top_k=3))
    assert not any(answer.no_answer for answer in answers)


def test_null_score_is_the_lowest_over_windows(tokenizer_parts):
    null_scores = []

    def forward(input_ids, attention_mask, token_type_ids):
        """Each window is less sure than the one before that there is no answer."""
        logits = np.zeros(input_ids.shape, dtype=np.float32)
        for row in range(len(input_ids)):
            cls_logit = 10.0 - row
            logits[row, 0] = cls_logit
            context_tokens = (token_type_ids[row] == 1).sum() - 1  # all but the last [SEP]
            p_cls = np.exp(cls_logit) / (np.exp(cls_logit) + context_tokens)
            null_scores.append(p_cls**2)
        return logits, logits.copy()

    answerer = answerer_with(tokenizer_parts, forward)
    options = Options(handle_impossible_answer=True, max_seq_len=32, doc_stride=20)
    [best] = answerer.answer("Where?", "the city " * 20, options)
    assert len(null_scores) > 2
    assert best.no_answer
    assert best.score == pytest.approx(min(null_scores), rel=1e-5)


def test_top_k_answers_are_sorted_and_at_most_k(tokenizer_parts):
    answerer, _ = make_answerer(tokenizer_parts, "hong", "kong", peak=2.0)
    answers = answerer.answer("Where?", CONTEXT, Options(top_k=4))
    assert 1 < len(answers) <= 4
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)
    for answer in answers:
        assert CONTEXT[answer.start : answer.end] == answer.answer


def test_long_question_is_cut_to_max_question_len_tokens(tokenizer_parts):
    answerer, forward = make_answerer(tokenizer_parts, "hong", "kong")
    question = "what is the name of the city " * 30
    [best] = answerer.answer(question, CONTEXT, Options(max_question_len=10))
    assert best.answer == "Hong Kong"
    token_type_ids = forward.batches[0][2][0]
    assert (token_type_ids == 0).sum() == 10 + 2  # [CLS] + 10 question tokens + [SEP]


# Window shapes: (question tokens, context tokens, options, windows made or the field refused).
# "who" and "a" are one token each; a pair takes 3 more ([CLS], [SEP], [SEP]).
WINDOW_SHAPES = {
    "fits exactly, v4's doc_stride": (10, 19, Options(max_seq_len=32), 1),
    "fits, v4's doc_stride larger than the room": (20, 9, Options(max_seq_len=32), 1),
    "fits, doc_stride larger than the room": (10, 19, Options(max_seq_len=32, doc_stride=25), 1),
    "fits, doc_stride larger than the window": (10, 19, Options(max_seq_len=32, doc_stride=40), 1),
    "fits once the question is cut": (40, 19, Options(max_seq_len=32, max_question_len=10), 1),
    # Room 19, stride 16: a window every 3 tokens.
    "needs several, v4's doc_stride": (10, 40, Options(max_seq_len=32), 8),
    # Room 9: v4's 16 cannot work, half the room (4) does: a window every 5 tokens.
    "needs several, v4's doc_stride larger than the room": (20, 30, Options(max_seq_len=32), 6),
    "needs several, doc_stride larger than the room": (
        10,
        40,
        Options(max_seq_len=32, doc_stride=19),
        "doc_stride",
    ),
    "needs several, doc_stride larger than the window": (
        10,
        40,
        Options(max_seq_len=32, doc_stride=40),
        "doc_stride",
    ),
    "question fills the window": (29, 1, Options(max_seq_len=32), "question"),
    "question longer than the window": (40, 1, Options(max_seq_len=32), "question"),
    # Room 1: a window per token, 5,000 of 32 tokens, more than MAX_BATCH_TOKENS.
    "too many windows of a derived doc_stride": (28, 5000, Options(max_seq_len=32), "max_seq_len"),
    "max_seq_len over the model's": (1, 1, Options(max_seq_len=1000), "max_seq_len"),
}


@pytest.mark.parametrize("shape", WINDOW_SHAPES)
def test_window_shapes_are_refused_only_when_the_context_needs_windows_they_cannot_cut(
    tokenizer_parts, shape
):
    """A context that fits in one window is answered whatever doc_stride is (it makes no second
    window); a defaulted doc_stride that leaves no step between windows is derived anew; only a
    caller's doc_stride, or a question that leaves no room, is refused, naming that field."""
    question_tokens, context_tokens, options, expected = WINDOW_SHAPES[shape]
    answerer, forward = make_answerer(tokenizer_parts, "a", "a")
    question, context = "who " * question_tokens, "a " * context_tokens
    if isinstance(expected, int):
        answers = answerer.answer(question, context, options)
        assert_consistent_answers(context, [asdict(a) for a in answers], options.top_k)
        assert forward.batches[0][0].shape[0] == expected
    else:
        with pytest.raises(InvalidQuestion) as raised:
            answerer.answer(question, context, options)
        assert raised.value.field == expected
        assert forward.batches == []


def test_a_short_context_is_answered_in_a_window_too_small_for_v4s_doc_stride(tokenizer_parts):
    """Issue 10's input: v4's doc_stride for 18-token windows is 9, more than the 3 tokens this
    question (12 tokens here) leaves for the context; "Kit" (k ##i ##t) fits in those 3, so
    nothing needs cutting: the answer, not a 400."""
    answerer, forward = make_answerer(tokenizer_parts, "k", "##t")
    [best] = answerer.answer("What is my name, please?", "Kit", Options(max_seq_len=18))
    assert (best.answer, best.start, best.end) == ("Kit", 0, 3)
    assert forward.batches[0][0].shape == (1, 18)


def test_a_short_context_in_a_small_window_gets_v4s_answer_from_the_real_model(real_answerer):
    """Issue 10's input as it was reported (7 question tokens, 6 left of 16, doc_stride 8)."""
    [best] = real_answerer.answer("What is my name, please?", "Kit", Options(max_seq_len=16))
    assert (best.answer, best.start, best.end, best.no_answer) == ("Kit", 0, 3, False)


@pytest.mark.parametrize("context", ["\u200b\u200b", "\x00\x01", " \u200d "])
def test_context_without_readable_text_is_refused(tokenizer_parts, context):
    answerer, _ = make_answerer(tokenizer_parts, "hong", "kong")
    with pytest.raises(InvalidQuestion) as raised:
        answerer.answer("Where?", context)
    assert raised.value.field == "context"


@pytest.mark.parametrize(
    "context",
    [
        "Ich heiße Kit-Ho Mak 😀 und komme aus Hongkong.",
        "我叫麥傑豪，我來自香港。",
        "اسمي كيت هو ماك وأنا من هونغ كونغ",
        "Zalgo: k\u0301\u0302\u0303it e\u0300\u0301ho \ufeff zero\u200bwidth",
        "x" * 5000,
    ],
)
def test_offsets_index_the_original_text_for_any_unicode(tiny_answerer, context):
    for answer in tiny_answerer.answer("What is my name?", context, Options(top_k=5)):
        assert context[answer.start : answer.end] == answer.answer


@settings(max_examples=300, deadline=None)
@given(context=line_ended_texts(unique_words=True), top_k=st.integers(1, 5))
def test_line_endings_and_blank_ends_change_the_offsets_only(tiny_answerer, context, top_k):
    """The tokenizer reads CR, LF and CRLF as the blanks between words, and maps its tokens back
    to the characters of the text it was given: a context with any line endings and blank ends
    gets the answers and scores of its words on one line, at offsets into itself. (Each word
    once: v4 merges candidates of the same text, and "a\nb" is not the text "a b".)"""
    one_line = " ".join(context.split())
    options = Options(top_k=top_k)
    answers = [
        asdict(answer) for answer in tiny_answerer.answer("What is my name?", context, options)
    ]
    plain = [
        asdict(answer) for answer in tiny_answerer.answer("What is my name?", one_line, options)
    ]
    assert_consistent_answers(context, answers, top_k)
    assert [(" ".join(a["answer"].split()), a["score"]) for a in answers] == [
        (a["answer"], a["score"]) for a in plain
    ]


class SpecialTokenLover:
    """A model that puts every answer on special tokens ([CLS], [SEP], ...) wherever they are:
    one that would answer with a typed "[CLS]" if the window held one."""

    def __init__(self, tokenizer):
        added = tokenizer.get_added_tokens_decoder()
        self.special_ids = [id for id, token in added.items() if token.special]
        self.batches = []

    def __call__(self, input_ids, attention_mask, token_type_ids):
        self.batches.append(input_ids.copy())
        logits = np.where(np.isin(input_ids, self.special_ids), 50.0, 0.0).astype(np.float32)
        return logits, logits.copy()


def special_token_answerer(tokenizer_parts):
    tokenizer = tokenizer_parts[0]
    lover = SpecialTokenLover(tokenizer)
    return tokenizer, answerer_with(tokenizer_parts, lover), lover


def test_the_table_below_covers_every_special_token_of_the_tokenizers(tokenizer_parts, request):
    legacy = load_tokenizer(request.getfixturevalue("legacy_model_dir"))[0]
    tokenizers = [tokenizer_parts[0], legacy]
    if REAL_MODEL.is_dir():
        tokenizers.append(load_tokenizer(REAL_MODEL)[0])
    for tokenizer in tokenizers:
        added = tokenizer.get_added_tokens_decoder().values()
        assert {token.content for token in added if token.special} == set(SPECIAL_TOKENS)


# Where a user may type a special token: (question, context), "{}" standing for it.
TYPED_TOKEN_PLACES = {
    "question start": ("{} what is my name?", CONTEXT),
    "question end": ("Is it sunny today? {}", "Rain."),
    "question only": ("{}", CONTEXT),
    "question glued to words": ("what{}is my name?", CONTEXT),
    "context start": ("What is my name?", "{} " + CONTEXT),
    "context middle": ("What is my name?", "I'm Kit-Ho {} Mak."),
    "context end": ("What is my name?", CONTEXT + " {}"),
    "context only": ("What is my name?", "{}"),
    "both, twice": ("{} what is {} my name?", "{}{} I'm Kit-Ho Mak. {}"),
}


@pytest.mark.parametrize("place", TYPED_TOKEN_PLACES)
@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_a_special_token_typed_by_a_user_is_text(tokenizer_parts, token, place):
    """Issue 10: "Is it sunny today? [CLS]" about "Rain." gave the answer "" at 19-24, past the
    end of the context: the typed [CLS] was the [CLS] token, and v4's mask let any [CLS] answer.
    Typed, "[CLS]" is the text "[cls]" is (the tokenizer lowercases): the same ids, never a
    special token's, and the answer is a span of the context."""
    tokenizer, answerer, lover = special_token_answerer(tokenizer_parts)
    question, context = (part.replace("{}", token) for part in TYPED_TOKEN_PLACES[place])
    answers = answerer.answer(question, context, Options(top_k=5))
    assert_consistent_answers(context, [asdict(a) for a in answers], 5)
    lowercase = [part.replace("{}", token.lower()) for part in TYPED_TOKEN_PLACES[place]]
    answerer.answer(*lowercase, Options(top_k=5))
    typed, as_text = lover.batches
    assert typed.tolist() == as_text.tolist()
    # The only special tokens are the pair's own; [UNK] stands for "[" and "]" (not in the vocab).
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    assert [id for id in typed[0] if id in ids.values() and id != ids["[UNK]"]] == [
        ids["[CLS]"],
        ids["[SEP]"],
        ids["[SEP]"],
    ]


def test_only_the_context_and_the_real_cls_can_answer_whatever_the_window_holds(tokenizer_parts):
    """The decoding's own guard: a window whose question holds the [CLS] id (as a tokenizer that
    matched typed special tokens made) still answers from the context only, and the no-answer
    comes from the [CLS] at index 0 only."""
    tokenizer, answerer, lover = special_token_answerer(tokenizer_parts)
    tokenizer.encode_special_tokens = False
    try:
        answers = answerer.answer("[CLS] what [CLS] is my name? [MASK]", "Rain.", Options(top_k=5))
        impossible = answerer.answer(
            "[CLS] what [CLS] is my name?", "Rain.", Options(handle_impossible_answer=True)
        )
    finally:
        tokenizer.encode_special_tokens = True
    assert (lover.batches[0][0] == tokenizer.token_to_id("[CLS]")).sum() == 3
    assert_consistent_answers("Rain.", [asdict(a) for a in answers], 5)
    assert [(a.answer, a.no_answer) for a in impossible] == [("", True)]


def test_a_typed_special_token_gets_an_answer_from_the_context_with_the_real_model(real_answerer):
    for question, context in [
        ("Is it sunny today? [CLS]", "Rain."),
        ("What is my name? [SEP] [CLS]", "[CLS] I'm Kit-Ho Mak. [SEP]"),
    ]:
        answers = real_answerer.answer(question, context, Options(top_k=3))
        assert_consistent_answers(context, [asdict(a) for a in answers], 3)
    assert answers[0].answer == "Kit-Ho Mak"


class ScriptedForward:
    """A model whose logits are given per window position: (start, end) arrays of the window's
    length, or a callable of the batch's shape."""

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, input_ids, attention_mask, token_type_ids):
        start, end = self.logits(input_ids.shape) if callable(self.logits) else self.logits
        return np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)


def scripted_answerer(tokenizer_parts, logits):
    return answerer_with(tokenizer_parts, ScriptedForward(logits))


# "a " * 25 + "a": 51 characters, 26 one-token words; in a window of "who" they are tokens 3-28.
FIFTY_ONE = "a " * 25 + "a"


def peaks(shape, at: dict[int, float], base: float = 0.0):
    logits = np.full(shape, base, dtype=np.float32)
    for position, value in at.items():
        logits[:, position] = value
    return logits


INF, NAN = float("inf"), float("nan")
# Logits by window position for question "who", context FIFTY_ONE (30 tokens: [CLS] who [SEP]
# a*26 [SEP]): (start, end, the (answer, start, end, no_answer) expected first, or None).
DEGENERATE_LOGITS = {
    "confident start late, end early (issue 10)": ({28: 1e6}, {3: 1e6}, ("", 0, 0, True)),
    "confident on the question and [SEP]s only": ({1: 1e6, 2: 1e6}, {1: 1e6, 29: 1e6}, None),
    "confident of no answer": ({0: 1e6}, {0: 1e6}, ("", 0, 0, True)),
    "+inf start late, end early": ({28: INF}, {3: INF}, ("", 0, 0, True)),
    "+inf and consistent": ({3: INF}, {4: INF}, ("a a", 0, 3, False)),
    "nan everywhere": ({i: NAN for i in range(30)}, {i: NAN for i in range(30)}, ("", 0, 0, True)),
    "-inf everywhere": (
        {i: -INF for i in range(30)},
        {i: -INF for i in range(30)},
        ("", 0, 0, True),
    ),
    "below the mask everywhere": (
        {i: -1e5 for i in range(30)},
        {i: -1e5 for i in range(30)},
        ("", 0, 0, True),
    ),
    "all equal": ({}, {}, None),
    "ties between two spans": ({3: 1e6, 10: 1e6}, {3: 1e6, 10: 1e6}, None),
}


@pytest.mark.parametrize("handle_impossible_answer", [False, True])
@pytest.mark.parametrize("case", DEGENERATE_LOGITS)
def test_degenerate_logits_give_real_spans_or_the_no_answer(
    tokenizer_parts, case, handle_impossible_answer
):
    """v4 fills its top-k with spans scoring 0, so confident but inconsistent logits gave the
    answer "" at 50-10 of a 51-character context. Here every candidate is a span of the context
    scoring above 0, or the no-answer; when no span scores above 0 the no-answer is the answer,
    asked for or not, and top_k may give fewer candidates, never a phantom."""
    start, end, expected = DEGENERATE_LOGITS[case]
    answerer = scripted_answerer(
        tokenizer_parts, lambda shape: (peaks(shape, start), peaks(shape, end))
    )
    options = Options(top_k=5, handle_impossible_answer=handle_impossible_answer)
    answers = answerer.answer("who", FIFTY_ONE, options)
    assert_consistent_answers(FIFTY_ONE, [asdict(a) for a in answers], 5)
    best = answers[0]
    if expected is not None:
        assert (best.answer, best.start, best.end, best.no_answer) == expected


def test_a_context_shorter_than_top_k_gets_fewer_candidates_not_empty_ones(tiny_answerer):
    """Issue 10: top_k 3 about "abc" (one word) gave a second candidate "" scoring 0 at 0-0."""
    answers = tiny_answerer.answer("a?", "abc", Options(top_k=3))
    assert [(a.answer, a.start, a.end, a.no_answer) for a in answers] == [("abc", 0, 3, False)]
    options = Options(top_k=3, handle_impossible_answer=True)
    with_no_answer = tiny_answerer.answer("a?", "abc", options)
    assert sorted((a.answer, a.no_answer) for a in with_no_answer) == [("", True), ("abc", False)]


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    context=st.sampled_from([CONTEXT, FIFTY_ONE, "abc", "a", "the city " * 40]),
    options=OPTIONS,
)
def test_any_logits_of_any_magnitude_give_consistent_answers(
    tokenizer_parts, data, context, options
):
    """Whatever a model gives (huge, tiny, infinite, NaN, tied): answers that are spans of the
    context, non-empty but for the no-answer, scored in [0, 1], best first, each once."""
    floats = st.floats(width=32) | st.sampled_from([0.0, 1e6, -1e6, INF, -INF, NAN])

    def logits(shape):
        return tuple(data.draw(arrays(np.float32, shape, elements=floats)) for _ in "se")

    options = Options(**options)
    try:
        answerer = scripted_answerer(tokenizer_parts, logits)
        answers = answerer.answer("who?", context, options)
    except InvalidQuestion:
        # A window shape these options cannot cut (tested above), never one input that fits.
        assert not fits_in_one_window(tokenizer_parts[0], "who?", context, options)
        return
    assert_consistent_answers(context, [asdict(a) for a in answers], options.top_k)


RIVER = "the river was long and the city was built in the year 1200 " * 12
PARIS = "Paris is the capital of France. It was built on the river Seine long ago. " * 4
# Each request shapes the tokenizer's windows differently; one is refused half-way through.
CONCURRENT_CASES = [
    ("When was the city built?", RIVER, Options(max_seq_len=48, doc_stride=16, top_k=3)),
    ("When was the city built?", RIVER, Options(max_seq_len=128, doc_stride=64)),
    ("What is my name?", CONTEXT, Options()),
    ("Where do I come from?", CONTEXT, Options(handle_impossible_answer=True, top_k=2)),
    (
        "who was born in the city of paris in france " * 6,
        PARIS,
        Options(max_question_len=6, max_seq_len=64, doc_stride=8, top_k=5, align_to_words=False),
    ),
    ("who " * 40, CONTEXT, Options(max_seq_len=32, doc_stride=16)),  # InvalidQuestion
    ("How long is the river?", RIVER, Options(max_seq_len=256, doc_stride=100, max_answer_len=5)),
    (
        "What is the capital?",
        PARIS,
        Options(max_seq_len=96, doc_stride=32, top_k=4, handle_impossible_answer=True),
    ),
]


@pytest.fixture
def frequent_thread_switches():
    """Hand the GIL from thread to thread as often as possible, so that a race shows."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def outcome(answerer, question, context, options):
    """The answers, or the refusal, exactly as one request gets them."""
    try:
        return answerer.answer(question, context, options)
    except InvalidQuestion as error:
        return (error.field, str(error))


@pytest.mark.parametrize(
    ("answerer_fixture", "threads", "rounds"), [("tiny_answerer", 16, 40), ("real_answerer", 8, 2)]
)
def test_concurrent_requests_with_different_options_get_exactly_their_own_answers(
    request, answerer_fixture, threads, rounds, frequent_thread_switches
):
    """The tokenizer's truncation settings are shared state: requests must not see each other's.

    Without the answerer's lock this failed in 6 runs of 6 (640 requests, switching threads
    every microsecond): windows of another request's shape, or a model input of the wrong length.
    """
    answerer = request.getfixturevalue(answerer_fixture)
    alone = [outcome(answerer, *case) for case in CONCURRENT_CASES]
    assert isinstance(alone[5], tuple) and all(isinstance(got, list) for got in alone[:5])
    start = threading.Barrier(threads, timeout=30)

    def ask(thread: int) -> list:
        start.wait()
        cases = [(thread + round) % len(CONCURRENT_CASES) for round in range(rounds)]
        return [(case, outcome(answerer, *CONCURRENT_CASES[case])) for case in cases]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        together = [result for results in pool.map(ask, range(threads)) for result in results]
    assert len(together) == threads * rounds
    assert [got for case, got in together] == [alone[case] for case, got in together]


# "who" is one token and "a " * n is n tokens: each 512-token window holds 508 of the context.
@pytest.mark.parametrize(("doc_stride", "windows"), [(468, 256), (469, None)])
def test_options_that_would_make_too_many_windows_are_refused_before_any_is_made(
    tokenizer_parts, doc_stride, windows
):
    """256 windows of 512 tokens is the most one request may read: one more window is refused
    before the tokenizer makes them (20,000 characters could otherwise make 20,000 windows)."""
    assert 256 * 512 == MAX_BATCH_TOKENS
    answerer, forward = make_answerer(tokenizer_parts, "hong", "kong")
    context = "a " * (508 + 255 * 40)  # a new window every 40 tokens with doc_stride 468
    options = Options(max_seq_len=512, doc_stride=doc_stride)
    if windows:
        answerer.answer("who", context, options)
        assert forward.batches[0][0].shape == (windows, 512)
    else:
        with pytest.raises(InvalidQuestion, match=r"263 windows of 512 tokens") as raised:
            answerer.answer("who", context, options)
        assert raised.value.field == "doc_stride"
        assert forward.batches == []


def fits_in_one_window(tokenizer, question: str, context: str, options: Options) -> bool:
    """Whether the context (with some text to read) and the question, cut to max_question_len,
    fit in one window: the inputs no window shape may be refused for."""

    def count(text):
        return len(tokenizer.encode(text, add_special_tokens=False))

    question_tokens = min(count(question), options.max_question_len)
    context_tokens = count(context)
    return 0 < context_tokens <= (options.max_seq_len or 384) - question_tokens - 3


@settings(max_examples=1000, deadline=None)
@given(question=texts(500), context=texts(20_000), options=OPTIONS)
def test_any_text_with_any_options_gets_consistent_answers_or_a_refusal(
    tiny_answerer, tokenizer_parts, question, context, options
):
    """Any Unicode question and context within the limits, any options within their ranges:
    answers, or a refusal naming the field at fault, never for a context that fits in one window
    (--hypothesis-show-statistics shows how many were answered and refused)."""
    options = Options(**options)
    try:
        answers = tiny_answerer.answer(question, context, options)
    except InvalidQuestion as refusal:
        event(f"refused: {refusal.field}")
        fields = {"context", "doc_stride", "max_seq_len", "question", "max_question_len"}
        assert refusal.field in fields
        assert not fits_in_one_window(tokenizer_parts[0], question, context, options)
        return
    event("answered")
    assert_consistent_answers(context, [asdict(a) for a in answers], options.top_k)


# --- characters of several tokens (issue 10 review: a Hangul question crashed every entry point) --

# Hangul's conjoining letters, which BERT's normalizer (NFD) splits each syllable into, 2 or 3 a
# syllable, all with that one character's offsets; and a few CJK ideographs, one token each.
JAMO = [chr(code) for code in range(0x1100, 0x1200)]
IDEOGRAPHS = list("国東京中山水大小人")


@pytest.fixture(scope="module")
def hangul_tokenizer_parts(tmp_path_factory):
    """The tiny vocab with Hangul letters (alone and as word pieces) and a few ideographs, as a
    model's vocab.txt is read: Hangul tokenizes as BERT's own vocab tokenizes it."""
    directory = tmp_path_factory.mktemp("hangul-vocab")
    vocab = tiny_vocab() + JAMO + [f"##{letter}" for letter in JAMO] + IDEOGRAPHS
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer, special, _ = load_tokenizer(directory)
    return tokenizer, special, 512


KOREAN_QUESTION = "한국의 수도는 어디입니까? "
KOREAN_CONTEXT = "대한민국의 수도는 서울이다. 서울은 한강을 끼고 있다. "
# The review's inputs: (question, context, options, the field refused or None for an answer).
SPLIT_CHARACTER_CASES = {
    "question of 6 Korean sentences, 136-token windows": (
        KOREAN_QUESTION * 6,
        KOREAN_CONTEXT * 3,
        Options(max_seq_len=136),
        None,
    ),
    "max_question_len 1 keeps no syllable of 한국": (
        "한국",
        KOREAN_CONTEXT * 3,
        Options(max_question_len=1, max_seq_len=16),
        "max_question_len",
    ),
    "max_question_len 4 keeps one syllable of 한국": (
        "한국",
        KOREAN_CONTEXT * 3,
        Options(max_question_len=4, max_seq_len=16),
        None,
    ),
    # 445 context tokens: the room a 64-token question leaves in 512 (the old cut kept 66).
    "a context that just fits, doc_stride 500": (
        KOREAN_QUESTION * 6,
        "国 " * 445,
        Options(max_seq_len=512, doc_stride=500),
        None,
    ),
}


@pytest.mark.parametrize("case", SPLIT_CHARACTER_CASES)
def test_a_question_cut_inside_a_character_counts_the_tokens_the_model_reads(
    hangul_tokenizer_parts, case
):
    """The question was cut after the character of its max_question_len-th token, keeping up to
    2 more tokens of a Hangul syllable than it counted: the room left for the context was too
    large, and the tokenizer panicked (stride not below the room) or a window held 514 tokens.
    Now the cut never keeps part of a character, and the tokens kept are counted after it."""
    question, context, options, refused = SPLIT_CHARACTER_CASES[case]
    answerer, forward = make_answerer(hangul_tokenizer_parts, "##ᆯ", "##ᆯ")
    if refused:
        with pytest.raises(InvalidQuestion) as raised:
            answerer.answer(question, context, options)
        assert raised.value.field == refused and forward.batches == []
        return
    answers = answerer.answer(question, context, options)
    assert_consistent_answers(context, [asdict(a) for a in answers], 1)
    input_ids, _, token_type_ids = forward.batches[0]
    assert input_ids.shape[1] <= options.max_seq_len
    assert ((token_type_ids == 0).sum(axis=1) - 2 <= options.max_question_len).all()


def test_the_reviewers_hangul_inputs_get_answers_from_the_real_model(real_answerer):
    for question, context, options, refused in SPLIT_CHARACTER_CASES.values():
        if refused:
            continue
        answers = real_answerer.answer(question, context, options)
        assert_consistent_answers(context, [asdict(a) for a in answers], 1)


MANY_TOKEN_CHARACTER = st.sampled_from(["한", "국", "서", "울", "가", "힣"]) | st.characters(
    min_codepoint=0xAC00, max_codepoint=0xD7A3
)
SPLIT_TEXT_CHARACTER = (
    MANY_TOKEN_CHARACTER
    | st.sampled_from(IDEOGRAPHS + list("a b c 😀 👩‍👩‍👧 ? , ."))
    | COMBINING_MARK
    | st.just(" ")
)


class WindowRecorder:
    """A model that records each batch it is given and points nowhere in particular."""

    def __init__(self):
        self.shapes = []

    def __call__(self, input_ids, attention_mask, token_type_ids):
        self.shapes.append(input_ids.shape)
        logits = np.zeros(input_ids.shape, dtype=np.float32)
        return logits, logits.copy()


@settings(max_examples=500, deadline=None)
@given(
    question=st.text(SPLIT_TEXT_CHARACTER, min_size=1, max_size=120),
    context=st.text(SPLIT_TEXT_CHARACTER, min_size=1, max_size=800),
    max_question_len=st.integers(1, 80),
    max_seq_len=st.integers(16, MAX_WINDOW_TOKENS),
    doc_stride=st.none() | st.integers(1, MAX_WINDOW_TOKENS),
)
def test_characters_of_several_tokens_get_answers_in_bounded_windows_or_a_refusal(
    hangul_tokenizer_parts, question, context, max_question_len, max_seq_len, doc_stride
):
    """Hangul, ideographs, combining marks and emoji, with any question cut, window and
    doc_stride: answers within the context, from windows of at most max_seq_len tokens (as the
    model receives them), exactly as many as the plan counted; or an InvalidQuestion. Never
    another exception (the tokenizer's panic was a BaseException)."""
    recorder = WindowRecorder()
    answerer = answerer_with(hangul_tokenizer_parts, recorder)
    options = Options(
        max_question_len=max_question_len, max_seq_len=max_seq_len, doc_stride=doc_stride
    )
    try:
        windows = answerer.windows(question, context, options)
    except InvalidQuestion as refusal:
        event(f"refused: {refusal.field}")
        return
    event("answered")
    answers = answerer.answer_windows(windows)
    assert_consistent_answers(context, [asdict(a) for a in answers], 1)
    [(rows, width)] = recorder.shapes
    assert width <= max_seq_len and rows == windows.count


# Refusals' messages: (question tokens, context tokens, options, what it must say, must not say)
REFUSAL_MESSAGES = {
    "too many windows, doc_stride never set": (
        28,
        5000,
        Options(max_seq_len=32),
        "Raise max_seq_len",
        "doc_stride",
    ),
    "too many windows, doc_stride set": (
        1,
        508 + 255 * 40 + 40,
        Options(max_seq_len=512, doc_stride=468),
        "Lower doc_stride",
        None,
    ),
    "one token of room": (28, 40, Options(max_seq_len=32, doc_stride=5), "leaves 1 token of", None),
    "one token of question": (
        1,
        40,
        Options(max_seq_len=16, doc_stride=13),
        "The question takes 1 token,",
        None,
    ),
}


@pytest.mark.parametrize("case", REFUSAL_MESSAGES)
def test_a_refusal_names_only_what_the_caller_can_change_in_plain_english(tokenizer_parts, case):
    """The review: "Lower doc_stride" when only max_seq_len was given, and "leaves 1 tokens"."""
    question_tokens, context_tokens, options, says, never = REFUSAL_MESSAGES[case]
    answerer, _ = make_answerer(tokenizer_parts, "a", "a")
    with pytest.raises(InvalidQuestion) as raised:
        answerer.answer("who " * question_tokens, "a " * context_tokens, options)
    assert says in str(raised.value)
    assert never is None or never not in str(raised.value)
    assert "1 tokens" not in str(raised.value)
