"""The fast tokenizer, from tokenizer.json or a legacy vocab.txt."""

from qa.tokenization import load_tokenizer, longest_input


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
