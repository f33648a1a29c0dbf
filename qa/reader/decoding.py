"""Turn one window's start/end logits into scored answer spans.

This follows the span search of transformers v4's question-answering pipeline step by step (same
masking constant, float32 softmax, P(start)·P(end) products, top-k selection), so that qasite
returns the answers that pipeline returned on the same logits. One difference, in degenerate
windows only: v4 fills its top-k with spans that score 0 (spans of the [CLS] token, spans that end
before they start) when fewer than top-k spans score above 0; those are not answers, and are not
returned here.
"""

from typing import NamedTuple

import numpy as np

# Logit given to tokens that may not be part of an answer; exp() of it underflows to exactly 0.
MASKED_LOGIT = -10000.0


class Spans(NamedTuple):
    """Token spans of one window, best first, and the window's no-answer score.

    ``starts`` and ``ends`` (int64, ``[spans]``) are token indices in the window, ``end``
    inclusive; ``scores`` (the logits' float dtype, ``[spans]``) are P(start)·P(end), in (0, 1];
    ``null_score`` is P([CLS] starts)·P([CLS] ends).
    """

    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    null_score: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax in the logits' own precision (float32), as the reference computes it."""
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def finite(logits: np.ndarray) -> np.ndarray:
    """The logits within half the float range: +inf as its top, -inf and NaN as its bottom (a
    token whose logit is not a number is never an answer). Logits a model gives are unchanged;
    without this one infinite logit makes every probability NaN (inf - inf), and the softmax's
    subtraction could overflow."""
    bound = np.finfo(logits.dtype).max / 2
    return np.clip(np.nan_to_num(logits, nan=-bound, posinf=bound, neginf=-bound), -bound, bound)


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    allowed: np.ndarray,
    *,
    top_k: int,
    max_answer_len: int,
) -> Spans:
    """Score every span of one window and return up to ``top_k`` of those that score above 0.

    ``start_logits`` and ``end_logits`` (float32, ``[tokens]``) are the model's logits for one
    window; ``allowed`` (bool, ``[tokens]``) is True for the tokens an answer may use (the
    context tokens) and for the [CLS] token at index 0, whose probability carries the no-answer
    score and which is never part of an answer. A span's score is P(start) * P(end), soft-maxed
    over the allowed tokens as v4 does; spans that end before they start, are longer than
    ``max_answer_len`` tokens, or touch a token that is not allowed are not answers. Fewer than
    ``top_k`` spans (none, in a degenerate window) come back when fewer score above 0. Raises
    nothing: non-finite logits are clipped (``finite``).

    Source: transformers v4.57, ``pipelines/question_answering.py`` (``decode_spans``).
    """
    start = softmax(np.where(allowed, finite(start_logits), MASKED_LOGIT))
    end = softmax(np.where(allowed, finite(end_logits), MASKED_LOGIT))
    null_score = float(start[0] * end[0])
    answer_tokens = allowed.copy()
    answer_tokens[0] = False
    start = np.where(answer_tokens, start, 0.0).astype(start.dtype)
    end = np.where(answer_tokens, end, 0.0).astype(end.dtype)
    starts, ends = _band_top_k(start, end, top_k, max_answer_len)
    return Spans(starts, ends, start[starts] * end[ends], null_score)


def _band_top_k(start, end, top_k, max_answer_len):
    """The best spans that score above 0, from the band of possible spans only (length x
    max_answer_len scores instead of v4's length x length matrix): the same spans in the same
    order as v4's full-matrix search, which differs only by the spans scoring 0 that it returns
    when fewer than ``top_k`` score above 0."""
    length = len(start)
    width = min(max_answer_len, length)
    padded_end = np.concatenate([end, np.zeros(width - 1, dtype=end.dtype)])
    band = start[:, None] * np.lib.stride_tricks.sliding_window_view(padded_end, width)
    flat = band.ravel()
    best = np.flatnonzero(flat > 0)
    if best.size > top_k:
        best = best[np.argpartition(-flat[best], top_k - 1)[:top_k]]
    # Best first; among equal scores, in the order of the full matrix (by start, then end).
    starts, offsets = np.divmod(best, width)
    order = np.lexsort((offsets, starts, -flat[best]))
    return starts[order], (starts + offsets)[order]
