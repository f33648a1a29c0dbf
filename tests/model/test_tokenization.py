"""The fast tokenizer: tokenizer.json, or a legacy layout (vocab.txt, vocab.json + merges.txt,
SentencePiece) as v4 builds it, with the settings v4 honours."""

import json

from qa.model.baking.tokenizer_check import PROBES
from qa.model.tokenization import load_tokenizer, longest_input
from tests.families import LEGACY_LAYOUTS, run_v4


def test_tokenizer_really_tokenizes_in_both_layouts(tiny_model_dir):
    tokenizer, special, _ = load_tokenizer(tiny_model_dir)
    encoding = tokenizer.encode("Where is Hong Kong?", "The city of Paris.")
    assert encoding.tokens == [
        "[CLS]",
        "where",
        "is",
        "hong",
        "kong",
        "?",
        "[SEP]",
        "the",
        "city",
        "of",
        "paris",
        ".",
        "[SEP]",
    ]
    assert encoding.type_ids == [0] * 7 + [1] * 6
    assert special.cls_id == tokenizer.token_to_id("[CLS]")
    assert special.pad_id == tokenizer.token_to_id("[PAD]")


def test_legacy_and_modern_layouts_tokenize_identically(legacy_model_dir, modern_model_dir):
    text = "Ünïcode Straße, naïve café! 東京 1234 hong-kong"
    legacy, _, _ = load_tokenizer(legacy_model_dir)
    modern, _, _ = load_tokenizer(modern_model_dir)
    assert legacy.encode(text).tokens == modern.encode(text).tokens
    assert legacy.encode(text).offsets == modern.encode(text).offsets


def test_real_model_tokenizer_matches_its_vocabulary(real_model_dir):
    tokenizer, _, max_length = load_tokenizer(real_model_dir)
    assert tokenizer.encode("What is my name?", add_special_tokens=False).tokens == [
        "what",
        "is",
        "my",
        "name",
        "?",
    ]
    assert max_length == 512


def test_the_longest_input_is_the_lower_of_tokenizer_and_positions():
    assert longest_input(512, {"max_position_embeddings": 256}) == 256
    assert longest_input(None, {"max_position_embeddings": 512}) == 512
    assert longest_input(128, {}) == 128
    assert longest_input(None, {}) == 384


# Text v4's BERT tokenizers normalize differently by their settings: accents, case, CJK, emoji,
# a long word, control characters.
SETTINGS_PROBES = [
    "I'm Kít-Hó Mák. I come from Hông Kông.",
    "Straße, naïve café, ÆRØ and Zoë",
    "我叫麦杰浩。東京は日本の首都です。",
    "emoji 🙂 and a supercalifragilisticexpialidocious word\u0007\u00ad",
]
BERT_SETTINGS = [
    {},
    {"do_lower_case": False},
    {"strip_accents": False},
    {"do_lower_case": False, "strip_accents": True},
    {"tokenize_chinese_chars": False},
]
V4_TOKENS = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from transformers import AutoTokenizer
job = json.load(sys.stdin)
print(json.dumps({d: [AutoTokenizer.from_pretrained(d).tokenize(t) for t in job["texts"]]
                  for d in job["dirs"]}))
"""


def bert_folder(directory, settings: dict, *, layout: str):
    """A BERT tokenizer folder with ``settings`` in its tokenizer_config.json: ``vocab.txt`` alone
    (legacy) or a tokenizer.json that lowercases (as saved by a lowercasing tokenizer)."""
    from tokenizers.implementations import BertWordPieceTokenizer

    from tests.helpers import tiny_vocab

    directory.mkdir(parents=True)
    letters = sorted(set("".join(SETTINGS_PROBES)) - set(" "))
    vocab = list(dict.fromkeys(tiny_vocab() + letters + [c.lower() for c in letters]))
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "BertTokenizer", **settings}
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    if layout == "modern":
        tokenizer = BertWordPieceTokenizer(str(directory / "vocab.txt"), lowercase=True)
        tokenizer.save(str(directory / "tokenizer.json"))
    return directory


def test_bert_settings_are_honoured_as_v4_honours_them(reference_python, tmp_path):
    """do_lower_case, strip_accents and tokenize_chinese_chars set the normalizer, in a vocab.txt
    folder and over a tokenizer.json alike, as v4's BERT-family tokenizers set it."""
    folders = [
        bert_folder(tmp_path / f"{layout}-{index}", settings, layout=layout)
        for index, settings in enumerate(BERT_SETTINGS)
        for layout in ("legacy", "modern")
    ]
    job = {"dirs": [str(folder) for folder in folders], "texts": SETTINGS_PROBES}
    expected = run_v4(reference_python, V4_TOKENS, job, timeout=300)
    for folder in folders:
        tokenizer, _, _ = load_tokenizer(folder)
        got = [tokenizer.encode(text, add_special_tokens=False).tokens for text in SETTINGS_PROBES]
        assert got == expected[str(folder)], folder.name


V4_PAIRS = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from transformers import AutoTokenizer
job = json.load(sys.stdin)
out = {}
for directory in job["dirs"]:
    tokenizer = AutoTokenizer.from_pretrained(directory, split_special_tokens=True)
    encodings = [tokenizer(q, c, return_offsets_mapping=True) for q, c in job["pairs"]]
    out[directory] = [[e["input_ids"], [list(o) for o in e["offset_mapping"]]] for e in encodings]
print(json.dumps(out))
"""
# Every legacy layout (tests/families.py), and RoBERTa's prefix-space settings over both layouts.
LAYOUTS = [(name, True, {}) for name in LEGACY_LAYOUTS.values()] + [
    ("roberta", legacy, settings)
    for legacy in (True, False)
    for settings in (
        {"add_prefix_space": True},
        {"trim_offsets": False},
        {"add_prefix_space": True, "trim_offsets": False},
        {"add_prefix_space": False, "trim_offsets": True},
    )
]


def test_every_layout_and_setting_tokenizes_as_v4(reference_python, tmp_path):
    """Legacy files converted by transformers' own converters, and add_prefix_space /
    trim_offsets honoured as v4's RoBERTa tokenizer honours them: the same ids and offsets as
    v4's fast tokenizer on the bake check's probes (question and context together)."""

    from tests.families import build_family

    folders = [
        build_family(name, tmp_path / f"t{index}", legacy=legacy, tokenizer_args=settings)
        for index, (name, legacy, settings) in enumerate(LAYOUTS)
    ]
    job = {"dirs": [str(folder) for folder in folders], "pairs": PROBES}
    expected = run_v4(reference_python, V4_PAIRS, job, timeout=300)
    for folder, layout in zip(folders, LAYOUTS, strict=True):
        tokenizer, _, _ = load_tokenizer(folder)
        tokenizer.encode_special_tokens = True  # as qa.reader.answerer encodes
        got = []
        for question, context in PROBES:
            encoding = tokenizer.encode(question, context)
            got.append([encoding.ids, [list(offset) for offset in encoding.offsets]])
        assert got == expected[str(folder)], layout
