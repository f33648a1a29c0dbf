"""SQuAD v1.1: its JSON file read as questions, and the official evaluation (answer
normalisation, exact match and F1: qa/reader/answer_metrics.py)."""

import json
from pathlib import Path

from qa.reader.answer_metrics import best_over_truths, exact_match, f1, normalize_answer

__all__ = ["best_over_truths", "exact_match", "f1", "load_questions", "normalize_answer"]


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
