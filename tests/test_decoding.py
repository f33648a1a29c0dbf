"""Span decoding on hand-made logits: which spans win, and with what score."""

import numpy as np
import pytest

from qa.decoding import best_spans, softmax

# Window layout used below: [CLS] q q [SEP] c c c c c [SEP]
ALLOWED = np.array([1, 0, 0, 0, 1, 1, 1, 1, 1, 0], dtype=bool)


def logits(peaks: dict[int, float]) -> np.ndarray:
    values = np.zeros(len(ALLOWED), dtype=np.float32)
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
    assert all(end >= start for start, end in zip(spans.starts, spans.ends))


def test_max_answer_len_limits_span_length():
    start, end = logits({4: 9.0}), logits({8: 9.0})
    long_allowed = best_spans(start, end, ALLOWED, top_k=1, max_answer_len=5)
    assert (long_allowed.starts[0], long_allowed.ends[0]) == (4, 8)
    short_only = best_spans(start, end, ALLOWED, top_k=3, max_answer_len=2)
    assert all(end - start < 2 for start, end in zip(short_only.starts, short_only.ends))


def test_top_k_is_sorted_best_first():
    spans = best_spans(
        logits({4: 3.0, 6: 2.0, 8: 1.0}), logits({4: 3.0, 6: 2.0, 8: 1.0}), ALLOWED,
        top_k=4, max_answer_len=15,
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
    spans = best_spans(logits({8: 30.0, 5: 1.0}), logits({8: 30.0, 5: 1.0}), allowed,
                       top_k=3, max_answer_len=15)
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


@pytest.mark.parametrize("seed", range(40))
def test_band_search_finds_what_the_full_matrix_search_finds(seed):
    """The fast search over possible spans only must agree with v4's full-matrix search."""
    from qa.decoding import _band_top_k, _matrix_top_k

    rng = np.random.default_rng(seed)
    length = int(rng.integers(2, 400))
    allowed = rng.random(length) < 0.8
    allowed[0] = True
    start = softmax(np.where(allowed, rng.normal(0, 3, length), -10000.0).astype(np.float32))
    end = softmax(np.where(allowed, rng.normal(0, 3, length), -10000.0).astype(np.float32))
    start[0] = end[0] = 0.0
    top_k, max_answer_len = int(rng.integers(1, 50)), int(rng.integers(1, 40))
    band_starts, band_ends = _band_top_k(start, end, top_k, max_answer_len)
    if band_starts is None:  # degenerate window: the full matrix search is used
        return
    matrix_starts, matrix_ends = _matrix_top_k(start, end, top_k, max_answer_len)
    assert band_starts.tolist() == list(matrix_starts) and band_ends.tolist() == list(matrix_ends)
