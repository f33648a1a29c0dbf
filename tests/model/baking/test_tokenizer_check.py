"""The bake-time check of a baked tokenizer.json against transformers' tokenizer of the source."""

import json
import shutil

import pytest

from qa.model.baking.bake import save_for_serving
from qa.model.baking.tokenizer_check import disagreement
from tests.families import build_family


@pytest.fixture(scope="module")
def roberta(tmp_path_factory):
    """A tiny RoBERTa in its legacy layout (vocab.json + merges.txt) and baked."""
    root = tmp_path_factory.mktemp("check")
    source = build_family("roberta", root / "source", legacy=True)
    save_for_serving(source, root / "baked", name="tiny/roberta", revision=None)
    return source, root / "baked"


def test_a_faithful_tokenizer_passes(roberta):
    source, baked = roberta
    assert disagreement(source, baked) is None


@pytest.mark.parametrize(
    "breaks",
    [
        pytest.param(lambda t: t.update(normalizer={"type": "Lowercase"}), id="lowercases"),
        pytest.param(lambda t: t["model"].update(merges=t["model"]["merges"][:40]), id="merges"),
        pytest.param(
            lambda t: t["model"]["vocab"].update({"Ġis": t["model"]["vocab"]["Ġm"]}),
            id="another id",
        ),
    ],
)
def test_a_tokenizer_json_that_tokenizes_otherwise_is_described(roberta, breaks, tmp_path):
    """(A tokenizer.json whose add_prefix_space or trim_offsets disagree with the settings is
    not one: qasite applies the settings over it, as v4 does.)"""
    source, baked = roberta
    broken = shutil.copytree(baked, tmp_path / "broken")
    tokenizer = json.loads((broken / "tokenizer.json").read_text())
    breaks(tokenizer)
    (broken / "tokenizer.json").write_text(json.dumps(tokenizer))
    why = disagreement(source, broken)
    assert why is not None and "the baked tokenizer gives tokens" in why
