"""The inputs graphs are made and checked on: the model's own tokenizer, QA-shaped, up to its
longest window."""

import json
import shutil

import pytest

from qa.model.files import read_config
from qa.model.probes import probes
from qa.reader.errors import ModelLoadError


def test_probes_are_windows_of_a_question_and_context_up_to_the_longest(tiny_model_dir):
    checked = probes(tiny_model_dir, read_config(tiny_model_dir))
    assert checked.token_types and checked.longest == 512
    widths = [batch[0].shape[1] for batch in checked.batches]
    assert widths[0] == 57 and max(widths) == 512
    first_ids, first_mask, first_types = checked.batches[0]
    assert len(first_ids) > 2 and first_mask[-1].sum() < 57  # several windows, the last padded
    for ids, mask, types in checked.batches:
        assert (ids[:, 0] == 2).all()  # [CLS] opens every window
        assert set(types[mask == 1].tolist()) == {0, 1}  # the question's and the context's
        assert (ids[mask == 0] == 0).all() and (types[mask == 0] == 0).all()  # [PAD]


def test_token_types_the_model_has_no_embedding_for_are_refused(modern_model_dir, tmp_path):
    model = shutil.copytree(modern_model_dir, tmp_path / "model")
    config = {**read_config(model), "type_vocab_size": 1}
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="token type ids up to 1, but the model has 1"):
        probes(model, config)


def test_a_tokenizer_without_token_types_gives_probes_that_feed_none(modern_model_dir, tmp_path):
    """RoBERTa's and XLM-R's case: one token type in the model, and the tokenizer's types (XLM-R's
    overflow windows give the context type 1, huggingface/tokenizers#1908) never fed to it."""
    model = shutil.copytree(modern_model_dir, tmp_path / "model")
    settings = json.loads((model / "tokenizer_config.json").read_text())
    settings["model_input_names"] = ["input_ids", "attention_mask"]
    (model / "tokenizer_config.json").write_text(json.dumps(settings))
    config = {**read_config(model), "type_vocab_size": 1}
    assert not probes(model, config).token_types
