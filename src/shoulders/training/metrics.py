"""Accuracy, per-class precision/recall/F1, macro F1, confusion matrix, calibration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]) -> dict:
    """Metrics a team needs to trust a classifier, JSON-ready."""
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    indices = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=indices, zero_division=0
    )
    correct = int((predicted == labels).sum())
    return {
        "accuracy": correct / len(labels) if len(labels) else float("nan"),
        "accuracy_ci95": list(wilson_interval(correct, len(labels))),
        "macro_f1": float(np.mean(f1)),
        "count": int(len(labels)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(labels, predicted, labels=indices).tolist(),
        "expected_calibration_error": expected_calibration_error(labels, probabilities),
    }


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion: honest for few trials and for 0 or 100% (where the
    normal approximation gives an interval of width 0). Wilson (1927), JASA 22(158). (nan, nan) for 0 trials."""
    if trials == 0:
        return float("nan"), float("nan")
    share, z2 = successes / trials, z * z
    centre = (share + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * np.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Mean |confidence - accuracy| over confidence bins, weighted by bin size (0 is perfectly calibrated)."""
    if len(labels) == 0:
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
