"""How good a classifier is (used by ``python -m bot classifier eval`` and the tests):
out-of-fold probabilities from cross-validation, accuracy, macro-F1, and how many reports a
threshold sends on automatically and how many of those are right."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.domain.routing.classify.model import Docs, TextModel, check_params, tokenize_all


def cross_validate_proba(
    texts: Sequence[str],
    labels: Sequence[str],
    folds: int = 5,
    *,
    seed: int = 0,
    **params: Any,
) -> list[dict[str, float]]:
    """Out-of-fold label probabilities from stratified K-fold CV (a model trained per fold)."""
    import warnings

    from sklearn.model_selection import StratifiedKFold

    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    p = check_params(params)
    docs = tokenize_all(texts, p)  # tokenise once; vocabulary and idf are fitted per fold
    y = np.array([str(x) for x in labels])
    out: list[dict[str, float]] = [{} for _ in texts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes rarer than the folds
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y))
    for train_rows, test_rows in splits:
        model = TextModel._fit(
            Docs([docs.grams[i] for i in train_rows], [docs.words[i] for i in train_rows]),
            [str(y[i]) for i in train_rows],
            p,
        )
        test = Docs([docs.grams[i] for i in test_rows], [docs.words[i] for i in test_rows])
        for i, probs in zip(test_rows, model._predict_docs(test), strict=True):
            out[int(i)] = probs
    return out


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    n: int
    accuracy: float
    macro_f1: float
    per_label: tuple[LabelScore, ...]
    threshold: float
    coverage: float  # share with top probability ≥ threshold (dispatched automatically)
    covered_accuracy: float  # accuracy on that share (nan when nothing is covered)
    sweep: tuple[tuple[float, float, float], ...]  # (threshold, coverage, covered accuracy)
    majority_label: str
    majority_accuracy: float
    majority_macro_f1: float


def _macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, list[LabelScore]]:
    labels = sorted(set(truth) | set(predicted))
    per_label = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        n_pred = sum(p == label for p in predicted)
        n_true = sum(t == label for t in truth)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label.append(LabelScore(label, precision, recall, f1, n_true))
    return sum(s.f1 for s in per_label) / len(per_label), per_label


def _coverage(
    truth: Sequence[str], predicted: Sequence[str], confidence: Sequence[float], threshold: float
) -> tuple[float, float]:
    covered = [
        t == p for t, p, c in zip(truth, predicted, confidence, strict=True) if c >= threshold
    ]
    coverage = len(covered) / len(truth)
    return coverage, (sum(covered) / len(covered) if covered else math.nan)


def evaluate(
    truth: Sequence[str], probas: Sequence[Mapping[str, float]], threshold: float = 0.6
) -> Evaluation:
    """Accuracy, macro-F1, per-label scores and coverage/accuracy at thresholds 0.3..0.9."""
    if not truth or len(truth) != len(probas):
        raise ValueError("need as many (non-zero) probability rows as true labels")
    predicted = [max(p, key=lambda k: p[k]) if p else "" for p in probas]
    confidence = [max(p.values()) if p else 0.0 for p in probas]
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    macro_f1, per_label = _macro_f1(truth, predicted)
    coverage, covered_accuracy = _coverage(truth, predicted, confidence, threshold)
    sweep = tuple((t / 10, *_coverage(truth, predicted, confidence, t / 10)) for t in range(3, 10))
    majority, count = Counter(truth).most_common(1)[0]
    majority_f1, _ = _macro_f1(truth, [majority] * len(truth))
    return Evaluation(
        n=len(truth),
        accuracy=accuracy,
        macro_f1=macro_f1,
        per_label=tuple(s for s in per_label if s.label),
        threshold=threshold,
        coverage=coverage,
        covered_accuracy=covered_accuracy,
        sweep=sweep,
        majority_label=majority,
        majority_accuracy=count / len(truth),
        majority_macro_f1=majority_f1,
    )
