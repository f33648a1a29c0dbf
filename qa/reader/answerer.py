"""The reader: extractive question answering, question + context in, scored spans of the context
out. It cuts the context into overlapping windows (max_seq_len, doc_stride), runs the model's
Forward on them, and decodes each window's spans (qa.reader.decoding).

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

from qa.reader.decoding import best_spans
from qa.reader.errors import InvalidQuestion
from qa.reader.options import Options

# Window size used when the caller gives none (capped by what the model can take).
DEFAULT_MAX_SEQ_LEN = 384
# Overlap between windows when the caller gives none (capped at half a window).
DEFAULT_DOC_STRIDE = 128
# How many more spans than asked for are decoded when aligning to words (alignment merges some).
ALIGNMENT_HEADROOM = 10
# Most tokens one request, and one call summed over its requests (qa.services), may put through the
# model (windows x max_seq_len). A doc_stride just under
# the room a window leaves for the context starts a new window every token or two: 20,000 characters
# could make 20,000 windows of 512 tokens, gigabytes of memory and seconds before the model even
# runs. The default options need at most about 122,000 for 20,000 characters of 3 tokens each
# (Hangul, which BERT's tokenizer splits into letters); English of that length needs 30,000.
MAX_BATCH_TOKENS = 131_072

# v4's defaults (Options is frozen: one instance serves every call that passes none).
DEFAULT_OPTIONS = Options()

# (input_ids, attention_mask, token_type_ids), each int64 [windows, tokens] -> (start, end) logits.
Forward = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Answer:
    """One candidate: ``context[start:end] == answer``; ``no_answer`` marks SQuAD v2's null
    answer. Offsets are in characters of the context."""

    answer: str
    score: float
    start: int
    end: int
    no_answer: bool = False


@dataclass(frozen=True)
class Windows:
    """How one question and context are cut into windows (QuestionAnswerer.windows): the
    question as the model reads it (cut to max_question_len tokens), and the window shape."""

    question: str
    context: str
    options: Options
    max_seq_len: int
    doc_stride: int
    count: int

    @property
    def tokens(self) -> int:
        """The work the model does on them: windows x max_seq_len tokens."""
        return self.count * self.max_seq_len


@dataclass(frozen=True)
class SpecialTokens:
    cls_id: int
    pad_id: int


class QuestionAnswerer:
    """Answers questions with one tokenizer and one model forward function.

    Safe to share between threads: the tokenizer's truncation settings are per call state, so
    setting them and encoding happen under one lock. ``engine`` names what computes ``forward``
    (qa/model/backends: "onnx" or "torch"), for health; None for logits made another way.
    """

    def __init__(
        self,
        *,
        tokenizer: Tokenizer,
        forward: Forward,
        special_tokens: SpecialTokens,
        model_max_length: int,
        engine: str | None = None,
    ):
        self._tokenizer = tokenizer
        self._forward = forward
        self.engine = engine
        self._special = special_tokens
        self.model_max_length = model_max_length
        self._pair_specials = tokenizer.num_special_tokens_to_add(is_pair=True)
        self._lock = threading.Lock()
        tokenizer.no_padding()
        tokenizer.no_truncation()
        # Text a user types is text: "[CLS]" in a question is the characters [, c, l, s, ], never
        # the [CLS] token (tokenizers otherwise matches special tokens in the raw text, and
        # transformers v4 did). Text without special tokens is tokenized as before.
        tokenizer.encode_special_tokens = True

    def answer(
        self, question: str, context: str, options: Options = DEFAULT_OPTIONS
    ) -> list[Answer]:
        """The ``top_k`` best answers, best first: at least one, at most ``top_k``.

        Raises InvalidQuestion (with the field at fault) when the options cannot work for this
        question and context.
        """
        return self.answer_windows(self.windows(question, context, options))

    def windows(self, question: str, context: str, options: Options = DEFAULT_OPTIONS) -> "Windows":
        """How the question and context will be cut into windows, settled without making them
        or running the model: what a caller needs to bound the work of several requests
        together (``Windows.tokens``) before any runs.

        Raises InvalidQuestion (with the field at fault) when the options cannot work for this
        question and context, or would need more than MAX_BATCH_TOKENS.
        """
        max_seq_len = options.max_seq_len or min(self.model_max_length, DEFAULT_MAX_SEQ_LEN)
        if max_seq_len > self.model_max_length:
            raise InvalidQuestion(
                f"max_seq_len may be at most {self.model_max_length} for this model.",
                field="max_seq_len",
            )
        with self._lock:
            self._tokenizer.no_truncation()
            question = self._cut_question(question, options.max_question_len)
            # Counted as the model will read them, after the cut (a cut may not fall between
            # the tokens of one character).
            question_length = len(self._tokenizer.encode(question, add_special_tokens=False))
            context_length = len(self._tokenizer.encode(context, add_special_tokens=False))
        if not context_length:
            raise InvalidQuestion(
                "The context contains no text the model can read.", field="context"
            )
        context_room = max_seq_len - question_length - self._pair_specials
        doc_stride = self._doc_stride(
            context_length, options, max_seq_len, question_length, context_room
        )
        step = context_room - doc_stride
        count = 1 + max(0, math.ceil((context_length - context_room) / step))
        if count * max_seq_len > MAX_BATCH_TOKENS:
            raise InvalidQuestion(
                f"These options cut the context into {count} windows of {max_seq_len} tokens; "
                f"at most {MAX_BATCH_TOKENS} tokens can be read in one request. "
                + (
                    "Lower doc_stride, raise max_seq_len or shorten the context."
                    if options.doc_stride
                    else "Raise max_seq_len, shorten the question or the context."
                ),
                # The caller's doc_stride, or else the window it derives from.
                field="doc_stride" if options.doc_stride else "max_seq_len",
            )
        return Windows(question, context, options, max_seq_len, doc_stride, count)

    def answer_windows(self, windows: "Windows") -> list[Answer]:
        """The answers (as ``answer`` gives them) of a question and context already cut by
        ``windows``: makes the windows, at most ``windows.max_seq_len`` tokens each, and runs
        the model once on them all."""
        encoded = self._encode(windows)
        start_logits, end_logits = self._forward(*self._batch(encoded))
        return self._collect_answers(
            windows.context, encoded, start_logits, end_logits, windows.options
        )

    def batch(self, windows: "Windows") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the model reads for ``windows``: input_ids, attention_mask and token_type_ids,
        int64 [windows, tokens], right-padded (qa/model/probes.py checks graphs on these)."""
        return self._batch(self._encode(windows))

    def _cut_question(self, question: str, max_question_len: int) -> str:
        """The question cut to at most max_question_len tokens, at a character boundary.

        A character can be several tokens (BERT's tokenizer splits a Hangul syllable into its
        2 or 3 letters, all with that one character's offsets): the cut goes before the
        character of the first token dropped, so none of its tokens is kept. Call with
        truncation off.
        """
        tokens = self._tokenizer.encode(question, add_special_tokens=False)
        if len(tokens) <= max_question_len:
            return question
        cut = tokens.offsets[max_question_len][0]
        if cut == 0:
            raise InvalidQuestion(
                "The question's first character alone takes more than "
                f"{_tokens(max_question_len)} (max_question_len): raise max_question_len.",
                field="max_question_len",
            )
        return question[:cut]

    def _encode(self, windows: "Windows") -> list[Encoding]:
        """Tokenize into overlapping windows of question + part of the context. Truncation is
        always on, so no window can hold more than max_seq_len tokens."""
        with self._lock:
            self._tokenizer.enable_truncation(
                windows.max_seq_len, stride=windows.doc_stride, strategy="only_second"
            )
            first = self._tokenizer.encode(windows.question, windows.context)
            self._tokenizer.no_truncation()
        return [first, *first.overflowing]

    def _doc_stride(
        self,
        context_length: int,
        options: Options,
        max_seq_len: int,
        question_length: int,
        context_room: int,
    ) -> int:
        """The overlap between windows, in tokens (0 when the context fits in one window).

        v4's default, min(max_seq_len / 2, 128), unless the question leaves too little room for
        it: then half the room when the caller left doc_stride to us. A window shape is refused
        only when the context needs more than one window and it cannot cut them.
        """
        doc_stride = options.doc_stride or min(max_seq_len // 2, DEFAULT_DOC_STRIDE)
        if doc_stride < context_room:
            return doc_stride  # v4's windows; a context that fits makes one window of them too
        if context_length <= context_room:
            return 0
        if context_room < 1:
            raise InvalidQuestion(
                f"The question takes {_tokens(question_length)}, which leaves no room for the "
                f"context in a {max_seq_len}-token window. Shorten the question, lower "
                "max_question_len or raise max_seq_len.",
                field="question",
            )
        if options.doc_stride:
            raise InvalidQuestion(
                f"The question takes {_tokens(question_length)}, which leaves "
                f"{_tokens(context_room)} of each {max_seq_len}-token window for the context: "
                f"doc_stride ({doc_stride}) must be smaller than that. Shorten the question, "
                "lower doc_stride or raise max_seq_len.",
                field="doc_stride",
            )
        return context_room // 2

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

    def _answer_tokens(self, window: Encoding) -> np.ndarray:
        """True for the tokens of one window an answer may use: the context's (sequence 1), and
        the [CLS] token the tokenizer put at index 0, whose probability is the no-answer score.

        v4 allows every token with the [CLS] id, so a "[CLS]" typed in the question could be an
        answer; here only index 0 is, whatever the text holds.
        """
        allowed = np.asarray(window.sequence_ids, dtype=object) == 1
        allowed[0] = window.ids[0] == self._special.cls_id and window.sequence_ids[0] is None
        return allowed

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
            spans = best_spans(
                start_logits[row, :length],
                end_logits[row, :length],
                self._answer_tokens(window),
                top_k=decode_k,
                max_answer_len=options.max_answer_len,
            )
            null_score = (
                spans.null_score if null_score is None else min(null_score, spans.null_score)
            )
            for start, end, score in zip(spans.starts, spans.ends, spans.scores, strict=True):
                char_start, char_end = _char_span(
                    window, int(start), int(end), options.align_to_words
                )
                text = context[char_start:char_end]
                # Like v4, the same text found twice (in overlapping windows, or as different token
                # spans of the same words) is one answer whose score is the sum of both.
                same = answers.get(text.lower())
                if same is not None:
                    same.score += float(score)
                else:
                    answers[text.lower()] = Answer(text, float(score), char_start, char_end)
        candidates = list(answers.values())
        # When no span scores above 0 (a degenerate window: the model is sure the answer starts
        # after it ends), the no-answer is the only honest candidate, asked for or not.
        if options.handle_impossible_answer or not candidates:
            candidates.append(Answer("", null_score, 0, 0, no_answer=True))
        candidates.sort(key=lambda answer: answer.score, reverse=True)
        best = candidates[: options.top_k]
        # Summed scores can pass 1 on long contexts. Ranking keeps v4's sums; the score reported is
        # capped, so it always reads as a probability (the order is unchanged).
        for answer in best:
            answer.score = min(answer.score, 1.0)
        return best


def _tokens(count: int) -> str:
    return f"{count} token" if count == 1 else f"{count} tokens"


def _char_span(window: Encoding, start: int, end: int, align_to_words: bool) -> tuple[int, int]:
    """Character offsets in the context of a span of context tokens, widened to whole words if
    asked (every context token belongs to a word of the context)."""
    if align_to_words:
        return (
            window.word_to_chars(window.token_to_word(start), sequence_index=1)[0],
            window.word_to_chars(window.token_to_word(end), sequence_index=1)[1],
        )
    return window.offsets[start][0], window.offsets[end][1]
