"""The inputs a model's ONNX graph or TorchScript trace is made from and checked on before it is
trusted: a question and contexts through the model's own tokenizer, cut into windows and batched
exactly as the reader does (so with the tokenizer's own special tokens, token types and overflow
windows), at several window lengths up to the longest window qasite runs (the model's limit, at
most the options' MAX_WINDOW_TOKENS). Never random ids: a model may check its input's layout
(Longformer asserts three separators).
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.model.inputs import model_inputs
from qa.model.tokenization import load_tokenizer, longest_input, tokenizer_config
from qa.reader.answerer import QuestionAnswerer
from qa.reader.errors import ModelLoadError
from qa.reader.examples import KIT_HO
from qa.reader.options import MAX_WINDOW_TOKENS, Options

# Accents, CJK, an emoji and punctuation, as users send them.
CONTEXT = (
    KIT_HO["context"] + " Kít-Hó Mák vient de Hông Kông. 我叫麦杰浩，我来自香港。 Zoë's café 🙂!"
)
# Window lengths (max_seq_len) probed, then the longest qasite runs (LONGEST), and how many
# times longer than its window the context is: several windows whose last is partly padding
# (the first, which graphs are traced with), one short window, and at the model's limit two
# windows, the second partly padding.
WINDOWS = [(57, 3), (384, 0)]
LONGEST = 1.5

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Probes:
    """``batches``: (input_ids, attention_mask, token_type_ids), int64 [windows, tokens], the
    first the one a graph is traced with; ``token_types``: whether the model is fed
    token_type_ids (qa.model.inputs); ``longest``: the longest window qasite runs the model
    on, in tokens: what the model takes, at most MAX_WINDOW_TOKENS (the API's bound on
    max_seq_len)."""

    batches: list[Batch]
    token_types: bool
    longest: int


def _no_model(*batch):
    raise AssertionError("probes run no model")


def probes(directory: Path, config: dict) -> Probes:
    """The probes for the model in ``directory`` (whose config.json is ``config``).

    Raises ModelLoadError if the tokenizer cannot be loaded, or gives token type ids the model
    has no embedding for (a type id of type_vocab_size or more).
    """
    tokenizer, special_tokens, declared = load_tokenizer(directory)
    inputs = model_inputs(tokenizer_config(directory), config)
    longest = min(longest_input(declared, config), MAX_WINDOW_TOKENS)
    answerer = QuestionAnswerer(
        tokenizer=tokenizer,
        forward=_no_model,
        special_tokens=special_tokens,
        model_max_length=longest,
    )
    per_context = len(tokenizer.encode(CONTEXT, add_special_tokens=False))
    batches = []
    for max_seq_len, times in [*WINDOWS, (longest, LONGEST)]:
        max_seq_len = min(max_seq_len, longest)
        context = " ".join([CONTEXT] * max(1, math.ceil(times * max_seq_len / per_context)))
        windows = answerer.windows(KIT_HO["question"], context, Options(max_seq_len=max_seq_len))
        batches.append(answerer.batch(windows))
    type_count = config.get("type_vocab_size", 0)
    most = max(int(batch[2].max()) for batch in batches)
    if inputs.token_types and type_count and most >= type_count:
        raise ModelLoadError(
            f"The tokenizer gives token type ids up to {most}, but the model has "
            f"{type_count} token type(s): they do not belong together."
        )
    return Probes(batches, inputs.token_types, longest)
