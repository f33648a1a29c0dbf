"""Span decoding on hand-made logits: which spans win, and with what score; v4's search as the
oracle, and logits no model should give (infinite, NaN, tied, confidently inconsistent)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qa.reader.decoding import best_spans, softmax

# Window layout used below: [CLS] q q [SEP] c c c c c [SEP]
ALLOWED = np.array([1, 0, 0, 0, 1, 1, 1, 1, 1, 0], dtype=bool)


def logits(peaks: dict[int, float], base: float = 0.0) -> np.ndarray:
    values = np.full(len(ALLOWED), base, dtype=np.float32)
    for index, value in peaks.items():
        values[index] = value
    return values


def test_softmax_is_float32_and_sums_to_one():
    probabilities = softmax(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert probabilities.dtype == np.float32
    assert probabilities.sum() == pytest.approx(1.0)


def test_best_span_is_the_peak_start_and_end():
    spans = best_spans(logits({5: 8.0}), logits({7: 8.0}), ALLOWED, top_k=1, max_answer_len=15)
    assert (spans.starts.tolist(), spans.ends.tolist()) == ([5], [7])


def test_score_is_product_of_start_and_end_probabilities_over_allowed_tokens():
    start, end = logits({5: 3.0}), logits({6: 2.0})
    spans = best_spans(start, end, ALLOWED, top_k=1, max_answer_len=15)
    masked_start = softmax(np.where(ALLOWED, start, -10000.0).astype(np.float32))
    masked_end = softmax(np.where(ALLOWED, end, -10000.0).astype(np.float32))
    assert spans.scores[0] == pytest.approx(masked_start[5] * masked_end[6], rel=1e-6)


def test_question_and_separator_tokens_never_start_or_end_an_answer():
    # The model loves the question tokens; they are masked, so the context peak wins.
    spans = best_spans(
        logits({1: 20.0, 2: 20.0, 6: 1.0}),
        logits({2: 20.0, 9: 20.0, 6: 1.0}),
        ALLOWED,
        top_k=5,
        max_answer_len=15,
    )
    used = set(spans.starts.tolist()) | set(spans.ends.tolist())
    assert used <= {0, 4, 5, 6, 7, 8}
    assert (spans.starts[0], spans.ends[0]) == (6, 6)


def test_end_before_start_is_impossible():
    spans = best_spans(logits({7: 9.0}), logits({5: 9.0}), ALLOWED, top_k=3, max_answer_len=15)
    assert all(end >= start for start, end in zip(spans.starts, spans.ends, strict=True))


def test_max_answer_len_limits_span_length():
    start, end = logits({4: 9.0}), logits({8: 9.0})
    long_allowed = best_spans(start, end, ALLOWED, top_k=1, max_answer_len=5)
    assert (long_allowed.starts[0], long_allowed.ends[0]) == (4, 8)
    short_only = best_spans(start, end, ALLOWED, top_k=3, max_answer_len=2)
    assert all(
        end - start < 2 for start, end in zip(short_only.starts, short_only.ends, strict=True)
    )


def test_top_k_is_sorted_best_first():
    spans = best_spans(
        logits({4: 3.0, 6: 2.0, 8: 1.0}),
        logits({4: 3.0, 6: 2.0, 8: 1.0}),
        ALLOWED,
        top_k=4,
        max_answer_len=15,
    )
    assert len(spans.scores) == 4
    assert spans.scores.tolist() == sorted(spans.scores.tolist(), reverse=True)
    assert (spans.starts[0], spans.ends[0]) == (4, 4)


def test_null_score_is_cls_start_times_cls_end_and_cls_never_an_answer():
    start, end = logits({0: 6.0, 5: 1.0}), logits({0: 6.0, 5: 1.0})
    spans = best_spans(start, end, ALLOWED, top_k=1, max_answer_len=15)
    masked = softmax(np.where(ALLOWED, start, -10000.0).astype(np.float32))
    assert spans.null_score == pytest.approx(float(masked[0] * masked[0]), rel=1e-6)
    assert spans.null_score > 0.9
    assert (spans.starts[0], spans.ends[0]) == (5, 5)


def test_padding_is_masked_like_any_disallowed_token():
    allowed = ALLOWED.copy()
    allowed[8] = False  # as if padding
    spans = best_spans(
        logits({8: 30.0, 5: 1.0}), logits({8: 30.0, 5: 1.0}), allowed, top_k=3, max_answer_len=15
    )
    assert 8 not in spans.starts.tolist() + spans.ends.tolist()


def test_top_k_larger_than_number_of_spans():
    allowed = np.array([1, 0, 1, 0], dtype=bool)
    start = np.array([0.0, 0.0, 5.0, 0.0], dtype=np.float32)
    spans = best_spans(start, start.copy(), allowed, top_k=50, max_answer_len=15)
    assert (spans.starts[0], spans.ends[0]) == (2, 2)


def test_top_k_equal_to_the_number_of_token_pairs():
    """[CLS] [SEP] c [SEP] has 16 pairs: top_k=16 (3 answers aligned to words) crashed numpy."""
    allowed = np.array([1, 0, 1, 0], dtype=bool)
    start = np.array([0.0, 0.0, 5.0, 0.0], dtype=np.float32)
    spans = best_spans(start, start.copy(), allowed, top_k=16, max_answer_len=15)
    assert (spans.starts[0], spans.ends[0]) == (2, 2)


def v4_spans(start_logits, end_logits, allowed, top_k, max_answer_len):
    """transformers v4's span search (QuestionAnsweringPipeline's select_starts_ends and
    decode_spans), written out as the oracle: the full length x length matrix, zero scores
    included, spans touching a masked token dropped after the top-k is taken."""
    start = softmax(np.where(allowed, start_logits, -10000.0).astype(np.float32))
    end = softmax(np.where(allowed, end_logits, -10000.0).astype(np.float32))
    start[0] = end[0] = 0.0
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = candidates.ravel()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif flat.size < top_k:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, top_k)[:top_k]
        order = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(order, candidates.shape)
    keep = allowed[starts] & allowed[ends]
    return [
        (int(s), int(e), float(candidates[s, e]))
        for s, e in zip(starts[keep], ends[keep], strict=True)
    ]


@pytest.mark.parametrize("seed", range(60))
def test_spans_are_v4s_spans_less_those_that_score_zero(seed):
    """Parity with v4's search on any window, degenerate ones included: the same spans in the
    same order with the same scores, except the spans scoring 0 that v4 fills its top-k with
    when fewer score above 0 (in short windows, or with a small max_answer_len and a large top_k,
    as the seeds below make often)."""
    rng = np.random.default_rng(seed)
    length = int(rng.integers(2, 400 if seed % 2 else 12))
    allowed = rng.random(length) < 0.8
    allowed[0] = True
    start_logits = rng.normal(0, 3, length).astype(np.float32)
    end_logits = rng.normal(0, 3, length).astype(np.float32)
    top_k, max_answer_len = int(rng.integers(1, 50)), int(rng.integers(1, 40))
    spans = best_spans(
        start_logits, end_logits, allowed, top_k=top_k, max_answer_len=max_answer_len
    )
    expected = [
        span
        for span in v4_spans(start_logits, end_logits, allowed, top_k, max_answer_len)
        if span[2] > 0
    ]
    got = [
        (int(s), int(e), float(score))
        for s, e, score in zip(spans.starts, spans.ends, spans.scores, strict=True)
    ]
    assert got == expected


def assert_valid_spans(spans, allowed, top_k, max_answer_len):
    """What every window's spans satisfy, whatever the logits."""
    assert len(spans.starts) == len(spans.ends) == len(spans.scores) <= top_k
    pairs = list(zip(spans.starts.tolist(), spans.ends.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs)
    for start, end in pairs:
        assert 1 <= start <= end < start + max_answer_len
        assert allowed[start] and allowed[end]
    scores = spans.scores.tolist()
    assert all(0 < score <= 1 for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert 0 <= spans.null_score <= 1


# Hand-made logits for [CLS] q q [SEP] c c c c c [SEP]: (start, end, the spans expected).
INF, NAN = float("inf"), float("nan")
EXTREME_LOGITS = {
    "confident start late, end early": (logits({8: 1e6}), logits({4: 1e6}), []),
    "confident and consistent": (logits({5: 1e6}), logits({7: 1e6}), [(5, 7)]),
    "+inf start and end": (logits({6: INF}), logits({6: INF}), [(6, 6)]),
    "+inf start late, end early": (logits({8: INF}), logits({4: INF}), []),
    "-inf on all but one token": (logits({6: 0.0}, -INF), logits({6: 0.0}, -INF), [(6, 6)]),
    "all -inf": (logits({}, -INF), logits({}, -INF), []),
    "nan beside the peak": (logits({5: NAN, 6: 1e6}), logits({5: NAN, 6: 1e6}), [(6, 6)]),
    "all nan": (logits({}, NAN), logits({}, NAN), []),
    "all below the mask": (logits({}, -1e5), logits({}, -1e5), []),
    "certain of no answer": (logits({0: 1e6}), logits({0: 1e6}), []),
    "masked tokens certain": (logits({1: 1e6, 9: 1e6}), logits({2: 1e6, 9: 1e6}), "any"),
    "all equal": (logits({}, 1.0), logits({}, 1.0), "any"),
    "ties between two peaks": (
        logits({5: 1e6, 7: 1e6}),
        logits({5: 1e6, 7: 1e6}),
        [(5, 5), (5, 7), (7, 7)],
    ),
}


@pytest.mark.parametrize("case", EXTREME_LOGITS)
def test_extreme_logits_give_valid_spans_or_none(case):
    """Confident, infinite, undefined, tied or masked logits: every span returned is a real span
    of the context with a score above 0; none at all when no span scores above 0."""
    start, end, expected = EXTREME_LOGITS[case]
    spans = best_spans(start, end, ALLOWED, top_k=5, max_answer_len=15)
    assert_valid_spans(spans, ALLOWED, 5, 15)
    if expected != "any":
        assert list(zip(spans.starts.tolist(), spans.ends.tolist(), strict=True)) == expected


def test_one_allowed_token_is_the_only_span():
    allowed = np.array([1, 0, 0, 1, 0], dtype=bool)
    spans = best_spans(logits({})[:5], logits({})[:5], allowed, top_k=20, max_answer_len=15)
    assert (spans.starts.tolist(), spans.ends.tolist()) == ([3], [3])
    assert spans.scores[0] == pytest.approx(0.25)  # half of each softmax goes to [CLS]


@settings(max_examples=500, deadline=None)
@given(
    data=st.data(),
    length=st.integers(1, 40),
    top_k=st.integers(1, 20),
    max_answer_len=st.integers(1, 20),
)
def test_any_logits_of_any_magnitude_give_valid_spans(data, length, top_k, max_answer_len):
    window_logits = arrays(np.float32, length, elements=st.floats(width=32))
    allowed = data.draw(arrays(np.bool_, length))
    allowed[0] = True
    spans = best_spans(
        data.draw(window_logits),
        data.draw(window_logits),
        allowed,
        top_k=top_k,
        max_answer_len=max_answer_len,
    )
    assert_valid_spans(spans, allowed, top_k, max_answer_len)
