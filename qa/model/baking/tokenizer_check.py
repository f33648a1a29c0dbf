"""The bake-time check of a baked ``tokenizer.json``: on a fixed set of questions and contexts,
qasite's tokenization of the baked folder must give the ids and offsets of the fast tokenizer v4
builds from the source folder, as transformers installed makes it
(qa.model.baking.tokenizer_conversion.reference_tokenizer: transformers' fast tokenizer, or for
a SentencePiece layout its converter of the slow one, as v4 converts it).
tests/model/test_tokenization.py checks each layout against v4 itself.

Special tokens typed as text ("[CLS]", "<s>") are characters for qasite (qa.reader.answerer), so
both sides split them (as transformers' ``split_special_tokens``).
"""

from pathlib import Path

from qa.model.baking.tokenizer_conversion import reference_tokenizer
from qa.model.tokenization import load_tokenizer

# Question and context pairs where tokenizer settings and conversions differ: accents and case,
# CJK and Hangul, emoji (with modifiers and flags), long words, special tokens typed as text,
# spacing and invisible characters.
PROBES = [
    ("What is my name?", "I'm Kít-Hó Mák. I come from Hông Kông."),
    (
        "Qu'est-ce qu'une FAÇADE naïve ?",
        "Straße, naïve café, ÆRØ, Zoë and São Paulo: crème brûlée.",
    ),
    ("我来自哪里？", "我叫麦杰浩。我来自香港。東京は日本の首都です。서울은 한국의 수도입니다."),
    (
        "Who likes 🙂?",
        "Emoji 🙂👍🏽 and 🇫🇷 flags; supercalifragilisticexpialidocious, "
        "antidisestablishmentarianism and Donaudampfschifffahrtsgesellschaft.",
    ),
    (
        "Is [CLS] or <s> a token?",
        "Typed: [CLS] [SEP] [PAD] [UNK] [MASK] <s> </s> <pad> <unk> <mask> <cls> <sep>.",
    ),
    (
        "  Spaces\tand\nlines  ",
        "Double  spaces,\ttabs and\nnew lines; soft\u00adhyphen, zero\u200bwidth, 1,234.56 and 3½.",
    ),
]


def disagreement(source: Path, baked: Path) -> str | None:
    """The first probe on which the tokenizer baked into ``baked`` (loaded as qasite loads it)
    and transformers' fast tokenizer of ``source`` give other ids or offsets, described; None
    when they agree on every probe.

    Raises ModelLoadError if either tokenizer cannot be loaded.
    """
    ours, _, _ = load_tokenizer(baked)
    theirs = reference_tokenizer(source)
    for tokenizer in (ours, theirs):
        tokenizer.encode_special_tokens = True  # as qa.reader.answerer encodes
    for question, context in PROBES:
        got, wanted = ours.encode(question, context), theirs.encode(question, context)
        if (got.ids, got.offsets) != (wanted.ids, wanted.offsets):
            return (
                f"on {question!r} / {context!r} the baked tokenizer gives tokens {got.tokens} "
                f"with offsets {got.offsets}, transformers' gives {wanted.tokens} with offsets "
                f"{wanted.offsets}"
            )
    return None
