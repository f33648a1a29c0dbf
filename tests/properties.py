"""What every answer must satisfy, and Hypothesis strategies for the inputs that must get one
(or a clear refusal): any Unicode text within the limits, and any valid options. And texts with
any line endings and blank ends, as a table and a strategy, with a stand-in service that shows
whether each reached it as it was given."""

import re

from hypothesis import strategies as st

from qa.reader.options import MAX_TOP_K, MAX_WINDOW_TOKENS
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


# Line endings and blanks as texts arrive from files, terminals, browsers and other systems.
LINE_BREAKS = ["\n", "\r\n", "\r", "\r\r\n", "\n\r"]
BLANKS = st.lists(st.sampled_from([" ", "\t", *LINE_BREAKS]), max_size=6).map("".join)


def line_ended_texts(*, unique_words: bool = False) -> st.SearchStrategy[str]:
    """Words (each once, if ``unique_words``) on lines ended by any mix of LF, CRLF and CR, with
    blanks (line breaks included) before and after: text whose offsets shift if any layer
    translates line endings or strips the ends."""
    separator = st.sampled_from([" ", *LINE_BREAKS]) | BLANKS.filter(bool)
    words = st.lists(
        st.tuples(st.sampled_from(WORDS), separator),
        min_size=1,
        max_size=40,
        unique_by=(lambda pair: pair[0]) if unique_words else None,
    )
    return st.builds(
        lambda before, pairs, after: before + "".join(w + s for w, s in pairs).rstrip() + after,
        BLANKS,
        words,
        BLANKS,
    )


def _lines(ending: str, inside: str = " ") -> str:
    return (
        f"Line one.{ending}Line two.{ending}I am Kit-Ho{inside}Mak.{ending}I come from Hong Kong."
    )


# Contexts with CR, CRLF and mixed line endings, before and inside the answer, and blanks at the
# ends, by name: (context, the answer's text in it). The answer is the only match of
# ANSWER_PATTERN in its context.
LINE_ENDING_CASES = {
    "LF": (_lines("\n") + "\n", "Kit-Ho Mak"),
    "CRLF": (_lines("\r\n") + "\r\n", "Kit-Ho Mak"),
    "CR": (_lines("\r") + "\r", "Kit-Ho Mak"),
    "mixed": ("Line one.\rLine two.\r\nI am Kit-Ho Mak.\nI come from Hong Kong.\r", "Kit-Ho Mak"),
    "CRLF inside the answer": (_lines("\r\n", "\r\n"), "Kit-Ho\r\nMak"),
    "CR inside the answer": (_lines("\r", "\r"), "Kit-Ho\rMak"),
    "mixed inside the answer": (_lines("\n", "\r\n\r"), "Kit-Ho\r\n\rMak"),
    "blank ends": ("\r\n \t\r\n  I am Kit-Ho Mak.\r\n\r\n\t ", "Kit-Ho Mak"),
    "blank lines first": ("\n\r\n\r\r\nI am Kit-Ho Mak. I come from Hong Kong.", "Kit-Ho Mak"),
}
ANSWER_PATTERN = r"Kit-Ho\s+Mak"


def answer_the_pattern(calls: list | None = None):
    """A stand-in for qa.services.answer_questions that answers each question with the first
    match of ANSWER_PATTERN in the context as it received it (recording the questions in
    ``calls``): offsets that index the text as the user gave it only if no layer between the
    user and the service changed that text."""

    def answer_questions(*, questions):
        results = []
        for question in questions:
            if calls is not None:
                calls.append(question)
            found = re.search(ANSWER_PATTERN, question["context"])
            answer = {
                "answer": found.group(),
                "score": 0.5,
                "start": found.start(),
                "end": found.end(),
                "no_answer": False,
            }
            results.append({**answer, "windows": 1, "answers": [answer]})
        return results

    return answer_questions
