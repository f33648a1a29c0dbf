"""What every answer must satisfy, and Hypothesis strategies for the inputs that must get one
(or a clear refusal): any Unicode text within the limits, and any valid options."""

from hypothesis import strategies as st

from qa.options import MAX_TOP_K, MAX_WINDOW_TOKENS
from tests.helpers import WORDS

# Every character but lone surrogates (which UTF-8 cannot carry): all categories, controls included.
ANY_CHARACTER = st.characters(exclude_categories=["Cs"])
COMBINING_MARK = st.characters(categories=["Mn", "Mc", "Me"])
WHITESPACE = st.characters(categories=["Zs", "Zl", "Zp"]) | st.sampled_from("\t\n\v\f\r\x1c\x85")
ZERO_WIDTH = st.sampled_from("\u200b\u200c\u200d\u2060\ufeff\u00ad")


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Text of up to max_size characters: arbitrary, words with marks, blank, or one long word."""
    marked_word = st.builds(
        str.__add__, st.sampled_from(WORDS), st.text(COMBINING_MARK | ZERO_WIDTH, max_size=4)
    )
    words = st.lists(
        st.sampled_from(WORDS) | marked_word | st.text(ANY_CHARACTER, min_size=1, max_size=12),
        min_size=1,
        max_size=60,
    ).map(" ".join)
    long_word = st.builds(str.__mul__, ANY_CHARACTER, st.integers(100, max_size))
    return st.one_of(
        st.text(ANY_CHARACTER, min_size=1, max_size=max_size),
        words,
        st.text(WHITESPACE | ZERO_WIDTH, min_size=1, max_size=20),
        long_word,
    ).map(lambda text: text[:max_size])


# Any combination of the API's options within their documented ranges (absent = the default).
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "top_k": st.integers(1, MAX_TOP_K),
        "doc_stride": st.integers(1, MAX_WINDOW_TOKENS),
        "max_answer_len": st.integers(1, MAX_WINDOW_TOKENS),
        "max_seq_len": st.integers(16, MAX_WINDOW_TOKENS),
        "max_question_len": st.integers(1, MAX_WINDOW_TOKENS),
        "handle_impossible_answer": st.booleans(),
        "align_to_words": st.booleans(),
    },
)


def assert_consistent_answers(context: str, answers: list[dict], top_k: int) -> None:
    """The contract of every list of candidates, whatever the model thinks of the text: one to
    top_k of them, best first, each a real span of the context (or the no-answer), none twice."""
    assert 1 <= len(answers) <= top_k
    scores = [answer["score"] for answer in answers]
    assert scores == sorted(scores, reverse=True)
    for answer in answers:
        assert 0 <= answer["start"] <= answer["end"] <= len(context)
        assert context[answer["start"] : answer["end"]] == answer["answer"]
        assert 0 <= answer["score"] <= 1
        if answer["no_answer"]:
            assert (answer["answer"], answer["start"], answer["end"]) == ("", 0, 0)
        else:
            assert answer["answer"]  # the only empty answer is the no-answer
    texts = [(answer["answer"].lower(), answer["no_answer"]) for answer in answers]
    assert len(set(texts)) == len(texts)
