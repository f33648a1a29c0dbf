"""Legacy tokenizer files converted by transformers as v4 converts them (each layout's ids and
offsets against v4 itself: tests/model/test_tokenization.py)."""

import json
import sys

import pytest

from qa.model.baking.tokenizer_conversion import legacy_special_tokens, reference_tokenizer
from qa.reader.errors import ModelLoadError
from tests.families import build_family, sentencepiece_model

# Each legacy layout's family, and the special tokens its tokenizer class defaults to.
DEFAULTS = [
    (
        "roberta",
        {"bos_token": "<s>", "cls_token": "<s>", "sep_token": "</s>", "unk_token": "<unk>"},
    ),
    ("albert", {"cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "<unk>"}),
    ("xlm-roberta", {"cls_token": "<s>", "sep_token": "</s>", "pad_token": "<pad>"}),
]


@pytest.mark.parametrize(("family", "expected"), DEFAULTS, ids=[row[0] for row in DEFAULTS])
def test_a_legacy_layout_gets_its_class_s_special_tokens(family, expected, tmp_path):
    folder = build_family(family, tmp_path / family, legacy=True)
    assert legacy_special_tokens(folder).items() >= expected.items()
    tokenizer = reference_tokenizer(folder)
    for token in expected.values():
        assert tokenizer.token_to_id(token) is not None, token


def test_without_transformers_the_error_says_to_bake(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as in the torch-free runtime
    with pytest.raises(ModelLoadError, match=r"bake the model \(manage.py bake_model\)"):
        reference_tokenizer(tmp_path)


def test_a_bpe_sentencepiece_model_transformers_cannot_convert_is_refused_clearly(tmp_path):
    """transformers 5.24's converter fails on SentencePiece models of the BPE type (docs/models.md):
    one clear error saying what to do, not a traceback."""
    (tmp_path / "sentencepiece.bpe.model").write_bytes(sentencepiece_model("bpe", {}))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "XLMRobertaTokenizer"})
    )
    with pytest.raises(ModelLoadError, match="cannot convert the model's SentencePiece"):
        reference_tokenizer(tmp_path)
