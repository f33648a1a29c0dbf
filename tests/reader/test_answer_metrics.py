"""SQuAD's answer comparison, as the v1.1 evaluation script defines it: a table of its cases and
the properties that follow from the definitions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.reader.answer_metrics import best_over_truths, exact_match, f1, normalize_answer

CASES = [
    # prediction, truth, exact match, F1
    ("Kit-Ho Mak", "Kit-Ho Mak", 1.0, 1.0),
    ("the Eiffel Tower", "Eiffel  tower.", 1.0, 1.0),  # articles, case, punctuation, spaces
    ("Kit-Ho", "KitHo", 1.0, 1.0),  # punctuation is dropped, not turned into a space
    ("in March 1889", "March 1889", 0.0, 0.8),  # 2 of 3 predicted, 2 of 2 true: 2·(2/3·1)/(2/3+1)
    ("oxygen", "carbon dioxide", 0.0, 0.0),
    ("a the an", "the", 1.0, 0.0),  # both empty after normalising: a match, but no token in common
    ("New York New York", "New York", 0.0, 2 / 3),  # tokens count with their multiplicity
]


@pytest.mark.parametrize(("prediction", "truth", "em", "expected_f1"), CASES)
def test_squad_s_cases(prediction, truth, em, expected_f1):
    assert exact_match(prediction, truth) == em
    assert f1(prediction, truth) == pytest.approx(expected_f1)


def test_the_best_truth_counts():
    truths = ["March 1889", "1889"]
    assert best_over_truths(exact_match, "1889", truths) == 1.0
    assert best_over_truths(f1, "in 1889", truths) == pytest.approx(2 / 3)


words = st.lists(
    st.sampled_from(["Tower", "the", "a", "Paris", "1889", "Kit-Ho", "Mak.", "green", "plants"]),
    max_size=6,
).map(" ".join)


@given(words, words)
def test_f1_is_symmetric_and_bounded(prediction, truth):
    assert f1(prediction, truth) == pytest.approx(f1(truth, prediction))
    assert 0.0 <= f1(prediction, truth) <= 1.0


@given(words)
def test_an_answer_matches_itself_however_it_is_written(text):
    variant = f"  {text.upper()}!! "
    assert exact_match(variant, text) == 1.0
    assert normalize_answer(variant) == normalize_answer(text)
    if normalize_answer(text):
        assert f1(variant, text) == 1.0
