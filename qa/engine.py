"""Extractive question answering: question + context in, scored spans of the context out.

A re-implementation of transformers v4's ``QuestionAnsweringPipeline`` algorithm (transformers 5
dropped it) over a fast tokenizer and any callable that maps a batch of token windows to start/end
logits. It knows nothing of Django, HTTP or torch, which keeps it testable with hand-made logits.
"""

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding, Tokenizer

from qa.decoding import best_spans
from qa.questions import Answer, InvalidQuestion, Options

# Window size used when the caller gives none (capped by what the model can take).
DEFAULT_MAX_SEQ_LEN = 384
# Overlap between windows when the caller gives none (capped at half a window).
DEFAULT_DOC_STRIDE = 128
# How many more spans than asked for are decoded when aligning to words, since alignment merges some.
ALIGNMENT_HEADROOM = 10
# Most tokens one request may put through the model (windows x max_seq_len). A doc_stride just under
# the room a window leaves for the context starts a new window every token or two: 20,000 characters
# could make 20,000 windows of 512 tokens, gigabytes of memory and seconds before the model even
# runs. The default options need at most about 122,000 for 20,000 characters of 3 tokens each
# (Hangul, which BERT's tokenizer splits into letters); English of that length needs 30,000.
MAX_BATCH_TOKENS = 131_072

# (input_ids, attention_mask, token_type_ids), each int64 [windows, tokens] -> (start, end) logits.
Forward = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class SpecialTokens:
    cls_id: int
    pad_id: int


class QuestionAnswerer:
    """Answers questions with one tokenizer and one model forward function.

    Safe to share between threads: the tokenizer's truncation settings are per call state, so
    setting them and encoding happen under one lock.
    """

    def __init__(
        self,
        *,
        tokenizer: Tokenizer,
        forward: Forward,
        special_tokens: SpecialTokens,
        model_max_length: int,
    ):
        self._tokenizer = tokenizer
        self._forward = forward
        self._special = special_tokens
        self.model_max_length = model_max_length
        self._pair_specials = tokenizer.num_special_tokens_to_add(is_pair=True)
        self._lock = threading.Lock()
        tokenizer.no_padding()
        tokenizer.no_truncation()

    def answer(self, question: str, context: str, options: Options = Options()) -> list[Answer]:
        """The ``top_k`` best answers, best first."""
        max_seq_len, doc_stride = self._window_shape(options)
        windows = self._encode(question, context, options, max_seq_len, doc_stride)
        start_logits, end_logits = self._forward(*self._batch(windows))
        return self._collect_answers(context, windows, start_logits, end_logits, options)

    def _window_shape(self, options: Options) -> tuple[int, int]:
        max_seq_len = options.max_seq_len or min(self.model_max_length, DEFAULT_MAX_SEQ_LEN)
        if max_seq_len > self.model_max_length:
            raise InvalidQuestion(
                f"max_seq_len may be at most {self.model_max_length} for this model.",
                field="max_seq_len",
            )
        doc_stride = options.doc_stride or min(max_seq_len // 2, DEFAULT_DOC_STRIDE)
        if doc_stride > max_seq_len:
            raise InvalidQuestion(
                f"doc_stride ({doc_stride}) may not be larger than max_seq_len ({max_seq_len}).",
                field="doc_stride",
            )
        return max_seq_len, doc_stride

    def _encode(
        self, question: str, context: str, options: Options, max_seq_len: int, doc_stride: int
    ) -> list[Encoding]:
        """Tokenize into overlapping windows of question + part of the context."""
        with self._lock:
            self._tokenizer.no_truncation()
            question_tokens = self._tokenizer.encode(question, add_special_tokens=False)
            if len(question_tokens) > options.max_question_len:
                question = question[: question_tokens.offsets[options.max_question_len - 1][1]]
                question_length = options.max_question_len
            else:
                question_length = len(question_tokens)
            context_room = max_seq_len - question_length - self._pair_specials
            if doc_stride >= context_room:
                raise InvalidQuestion(
                    f"The question takes {question_length} tokens, which leaves {context_room} "
                    f"tokens of each {max_seq_len}-token window for the context: doc_stride "
                    f"({doc_stride}) must be smaller than that. Shorten the question, lower "
                    "doc_stride or raise max_seq_len.",
                    field="doc_stride",
                )
            self._refuse_too_many_windows(context, context_room, doc_stride, max_seq_len)
            self._tokenizer.enable_truncation(
                max_seq_len, stride=doc_stride, strategy="only_second"
            )
            first = self._tokenizer.encode(question, context)
        windows = [first, *first.overflowing]
        if not any(sequence_id == 1 for sequence_id in first.sequence_ids):
            raise InvalidQuestion(
                "The context contains no text the model can read.", field="context"
            )
        return windows

    def _refuse_too_many_windows(
        self, context: str, context_room: int, doc_stride: int, max_seq_len: int
    ) -> None:
        """Refuse options that would cut the context into more than MAX_BATCH_TOKENS of windows,
        before the tokenizer makes them. A token holds at least one byte of UTF-8, so the byte
        count bounds the context's tokens; only when that bound is too high are they counted."""

        def windows(context_tokens: int) -> int:
            step = context_room - doc_stride
            return 1 + max(0, math.ceil((context_tokens - context_room) / step))

        if windows(len(context.encode())) * max_seq_len <= MAX_BATCH_TOKENS:
            return
        count = windows(len(self._tokenizer.encode(context, add_special_tokens=False)))
        if count * max_seq_len > MAX_BATCH_TOKENS:
            raise InvalidQuestion(
                f"These options cut the context into {count} windows of {max_seq_len} tokens; "
                f"at most {MAX_BATCH_TOKENS} tokens can be read in one request. Lower doc_stride, "
                "raise max_seq_len or shorten the context.",
                field="doc_stride",
            )

    def _batch(self, windows: list[Encoding]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All windows as one right-padded batch, so the model runs once per request."""
        width = max(len(window.ids) for window in windows)
        shape = (len(windows), width)
        input_ids = np.full(shape, self._special.pad_id, dtype=np.int64)
        attention_mask = np.zeros(shape, dtype=np.int64)
        token_type_ids = np.zeros(shape, dtype=np.int64)
        for row, window in enumerate(windows):
            length = len(window.ids)
            input_ids[row, :length] = window.ids
            attention_mask[row, :length] = window.attention_mask
            token_type_ids[row, :length] = window.type_ids
        return input_ids, attention_mask, token_type_ids

    def _collect_answers(
        self,
        context: str,
        windows: list[Encoding],
        start_logits: np.ndarray,
        end_logits: np.ndarray,
        options: Options,
    ) -> list[Answer]:
        decode_k = (
            options.top_k * 2 + ALIGNMENT_HEADROOM if options.align_to_words else options.top_k
        )
        answers: dict[str, Answer] = {}
        null_score = None
        for row, window in enumerate(windows):
            length = len(window.ids)
            ids = np.asarray(window.ids)
            allowed = (np.asarray(window.sequence_ids, dtype=object) == 1) | (
                ids == self._special.cls_id
            )
            allowed &= np.asarray(window.attention_mask, dtype=bool)
            spans = best_spans(
                start_logits[row, :length],
                end_logits[row, :length],
                allowed,
                top_k=decode_k,
                max_answer_len=options.max_answer_len,
            )
            null_score = spans.null_score if null_score is None else min(null_score, spans.null_score)
            for start, end, score in zip(spans.starts, spans.ends, spans.scores):
                char_start, char_end = _char_span(window, int(start), int(end), options.align_to_words)
                text = context[char_start:char_end]
                # Like v4, the same text found twice (in overlapping windows, or as different token
                # spans of the same words) is one answer whose score is the sum of both.
                same = answers.get(text.lower())
                if same is not None:
                    same.score += float(score)
                else:
                    answers[text.lower()] = Answer(text, float(score), char_start, char_end)
        candidates = list(answers.values())
        if options.handle_impossible_answer:
            candidates.append(Answer("", null_score, 0, 0, no_answer=True))
        candidates.sort(key=lambda answer: answer.score, reverse=True)
        best = candidates[: options.top_k]
        # Summed scores can pass 1 on long contexts. Ranking keeps v4's sums; the score reported is
        # capped, so it always reads as a probability (the order is unchanged).
        for answer in best:
            answer.score = min(answer.score, 1.0)
        return best


def _char_span(window: Encoding, start: int, end: int, align_to_words: bool) -> tuple[int, int]:
    """Character offsets in the context of a token span, widened to whole words if asked."""
    if align_to_words:
        try:
            return (
                window.word_to_chars(window.token_to_word(start), sequence_index=1)[0],
                window.word_to_chars(window.token_to_word(end), sequence_index=1)[1],
            )
        except TypeError:
            # A token outside any word (the [CLS] token): keep to token offsets, as v4 does.
            pass
    return window.offsets[start][0], window.offsets[end][1]
