"""The example questions: every preset asks what the page and the checks expect."""

import re

from qa.reader.examples import EXAMPLES, KIT_HO, KIT_HO_ANSWER
from qa.reader.options import OPTION_NAMES


def test_kit_ho_s_answer_is_in_its_context():
    assert KIT_HO_ANSWER in KIT_HO["context"]
    assert EXAMPLES["kit-ho"]["question"] == KIT_HO["question"]


def test_each_preset_is_a_question_a_context_and_known_options_under_a_url_slug():
    for slug, example in EXAMPLES.items():
        assert re.fullmatch(r"[a-z0-9-]+", slug), slug
        assert example["title"] and example["question"].endswith("?")
        assert len(example["context"]) > len(example["question"])
        assert set(example) - {"title", "question", "context"} <= OPTION_NAMES, slug
