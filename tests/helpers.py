"""Helpers shared by test modules (fixtures live in conftest.py): where the real model is, the
tiny model's words, what the runtime tree keeps and drops, invoking the Lambda handler in
process, and a model forward that scores "no answer" best."""

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# The team's real trained model and SQuAD sample, beside the repository (tests skip without).
SHARED = REPO.parent / "shared"
REAL_MODEL = SHARED / "models" / "qa-minilm-squad"
SQUAD_SAMPLE = SHARED / "data" / "squad-v1.1-dev-sample.json"


def runtime_tree(kind: str) -> list[str]:
    """The entries of one kind in docker/runtime-tree.txt, in order: "serve" (the baked files
    the tree's model/ holds), "bake" (the baked files it leaves out) or "drop" (globs deleted
    from the tree)."""
    lines = (REPO / "docker" / "runtime-tree.txt").read_text().splitlines()
    return [line.split()[1] for line in lines if line.split()[:1] == [kind]]


# The tiny random model's special tokens, and the whole words of its vocabulary.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "what is my name i come from hong kong and the a of in to was who where when how many "
    "it he she they born city year paris france capital river long built"
).split()


class LambdaContext:
    """The part of Lambda's context object the handler reads."""

    aws_request_id = "6f1e5c3a-0d5b-4a77-9c2e-1b3d5f7a9c11"


def invoke(event: dict) -> dict:
    """The Lambda handler's response to ``event``, in this process (Django's test settings)."""
    from qasite import lambda_handler

    return lambda_handler.handler(event, LambdaContext())


def no_answer_best(input_ids, attention_mask, token_type_ids):
    """A model forward (qa.engine.Forward) whose start and end logits favour [CLS] in every
    window: "no answer" scores best, and every span far less."""
    logits = np.zeros(input_ids.shape, dtype=np.float32)
    logits[:, 0] = 10.0
    return logits, logits


LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
PUNCTUATION = list(".,?!'-:;\"()")


def tiny_vocab() -> list[str]:
    """Whole words, then every letter alone and as a word piece: any lowercase text tokenizes."""
    pieces = list(LETTERS) + [f"##{letter}" for letter in LETTERS]
    return SPECIAL_TOKENS + PUNCTUATION + pieces + [w for w in WORDS if w not in pieces]


def rust_panic() -> BaseException:
    """A real ``pyo3_runtime.PanicException`` (a BaseException), as tokenizers raises one: a
    stride no smaller than the room truncation leaves for the second sequence."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    tokenizer = Tokenizer(WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.enable_truncation(4, stride=3, strategy="only_second")
    try:
        tokenizer.encode("a a", "a a a a")
    except BaseException as panic:  # noqa: B036 (what is caught is the point)
        return panic
    raise AssertionError("tokenizers no longer panics here")
