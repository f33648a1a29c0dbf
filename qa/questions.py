"""What the engine takes and gives: its options, its answers, and its refusal of a question it
cannot answer as asked.

Plain Python, apart from the engine: the web layer imports these without loading numpy or the
tokenizer, which a page that answers nothing never needs.
"""

from dataclasses import dataclass


class InvalidQuestion(ValueError):
    """The question, context or options cannot be answered as given; the message says why.

    ``field`` names the input at fault; ``index`` is set by callers that answer batches.
    """

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field
        self.index = 0


@dataclass(frozen=True)
class Options:
    """The knobs of v4's pipeline, with its defaults. ``None`` means "derive it as v4 does"."""

    top_k: int = 1
    doc_stride: int | None = None
    max_answer_len: int = 15
    max_seq_len: int | None = None
    max_question_len: int = 64
    handle_impossible_answer: bool = False
    align_to_words: bool = True


@dataclass
class Answer:
    """One candidate: ``context[start:end] == answer``. ``no_answer`` marks SQuAD v2's null answer."""

    answer: str
    score: float
    start: int
    end: int
    no_answer: bool = False
