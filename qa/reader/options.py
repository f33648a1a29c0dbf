"""The reader's options (those of transformers v4's question-answering pipeline) and their limits.

Plain Python: the web layer (forms, serializers, services) imports these without loading numpy or
the tokenizer, which a page that answers nothing never needs.
"""

from dataclasses import dataclass, fields

# The limits of the tuning options the API and the form accept: beyond these nothing useful
# happens (BERT-style models take at most 512 tokens per window).
MAX_TOP_K = 20
MAX_WINDOW_TOKENS = 512


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


OPTION_NAMES = frozenset(field.name for field in fields(Options))
