"""Turn one window's start/end logits into scored answer spans.

This follows the span search of transformers v4's question-answering pipeline step by step (same
masking constant, float32 softmax, outer product, top-k selection), so that qasite returns the
answers that pipeline returned on the same logits.
"""

from typing import NamedTuple

import numpy as np

# Logit given to tokens that may not be part of an answer; exp() of it underflows to exactly 0.
MASKED_LOGIT = -10000.0


class Spans(NamedTuple):
    """Token spans of one window, best first, and the window's no-answer score."""

    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    null_score: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax in the logits' own precision (float32), as the reference computes it."""
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    allowed: np.ndarray,
    *,
    top_k: int,
    max_answer_len: int,
) -> Spans:
    """Score every span of one window and return up to ``top_k`` of them.

    ``allowed`` is True for the tokens an answer may use (the context tokens and the [CLS] token
    at index 0, whose probability carries the no-answer score). A span's score is
    P(start) * P(end); spans that end before they start or are longer than ``max_answer_len``
    tokens score 0, and spans touching a token that is not allowed are dropped.
    """
    start = softmax(np.where(allowed, start_logits, MASKED_LOGIT))
    end = softmax(np.where(allowed, end_logits, MASKED_LOGIT))
    null_score = float(start[0] * end[0])
    start[0] = end[0] = 0.0
    starts, ends = _band_top_k(start, end, top_k, max_answer_len)
    if starts is None:
        starts, ends = _matrix_top_k(start, end, top_k, max_answer_len)
    keep = allowed[starts] & allowed[ends]
    starts, ends = starts[keep], ends[keep]
    return Spans(starts, ends, start[starts] * end[ends], null_score)


def _band_top_k(start, end, top_k, max_answer_len):
    """The best spans from the band of possible spans only (length x max_answer_len scores
    instead of length x length): the same spans in the same order as the full matrix whenever
    at least ``top_k`` spans score above 0, which is all but degenerate windows."""
    length = len(start)
    width = min(max_answer_len, length)
    padded_end = np.concatenate([end, np.zeros(width - 1, dtype=end.dtype)])
    band = start[:, None] * np.lib.stride_tricks.sliding_window_view(padded_end, width)
    flat = band.ravel()
    if np.count_nonzero(flat) < top_k:
        return None, None
    best = np.argpartition(-flat, top_k - 1)[:top_k] if top_k < flat.size else np.arange(flat.size)
    # Best first; among equal scores, in the order of the full matrix (by start, then end).
    starts, offsets = np.divmod(best, width)
    order = np.lexsort((offsets, starts, -flat[best]))
    return starts[order], (starts + offsets)[order]


def _matrix_top_k(start, end, top_k, max_answer_len):
    """transformers v4's search over the full length x length matrix, zero scores included."""
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = candidates.ravel()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif flat.size <= top_k:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, top_k)[:top_k]
        order = best[np.argsort(-flat[best])]
    return np.unravel_index(order, candidates.shape)
