"""SQuAD's official answer comparison: answer normalisation, exact match and F1 of a predicted
answer against a true one (the SQuAD v1.1 evaluation script's definitions). Used by the benchmark
(bench/squad.py) and by the quality gate of quantized bakes (qa/model/baking/quantization.py)."""

import re
import string
from collections import Counter

PUNCTUATION = set(string.punctuation)


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
