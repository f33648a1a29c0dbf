"""SQuAD v1.1: its JSON file read as questions, and the official evaluation (answer
normalisation, exact match and F1)."""

import json
import re
import string
from collections import Counter
from pathlib import Path

PUNCTUATION = set(string.punctuation)


def load_questions(path: Path) -> list[dict]:
    """Every question of a SQuAD v1.1 JSON file, in file order: dicts with ``question`` and
    ``context`` (str) and ``answers`` (the gold answer texts, list of str). Raises OSError if the
    file cannot be read, ValueError (json.JSONDecodeError) or KeyError if it is not SQuAD JSON."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        {
            "question": qa["question"],
            "context": paragraph["context"],
            "answers": [answer["text"] for answer in qa["answers"]],
        }
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse white space."""
    text = "".join(char for char in text.lower() if char not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    predicted, true = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = sum((Counter(predicted) & Counter(true)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(true)
    return 2 * precision * recall / (precision + recall)


def best_over_truths(metric, prediction: str, truths: list[str]) -> float:
    return max(metric(prediction, truth) for truth in truths)
