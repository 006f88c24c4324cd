"""Every export is checked against the Keras model it came from, on the run's untouched test split.

An export that loses more than its tolerance of test accuracy is refused loudly: a smaller or faster
model that is silently worse is the failure this guards against. Exports of text runs are fed the
test texts through their own copy of the tokenizer, as a user would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoulders.errors import ShouldersError
from shoulders.runs import layout

Predict = Callable[[np.ndarray], np.ndarray]  # a batch of inputs (pixels or texts) -> probabilities
FLOAT_TOLERANCE = 0.01  # accuracy drop allowed for float exports (SavedModel, TFLite none/float16)
INTEGER_TOLERANCE = 0.02  # for integer weights (TFLite dynamic, int8)
BATCH = 32


class ExportVerificationError(ShouldersError, RuntimeError):
    """An export lost more test accuracy than its tolerance; the message gives both figures."""


@dataclass(frozen=True)
class Reference:
    """The Keras model's answers on the test split, computed once for every export compared with it."""

    inputs: np.ndarray  # what a user sends: pixels (N, H, W, 3), or texts (N,) as an object array
    labels: np.ndarray
    probabilities: np.ndarray
    files: tuple[Path, ...] = ()  # the test images' own files, to check decoding inside the export
    unit: str = "images"  # what one input is, for the manifest ("images" or "texts")

    @property
    def accuracy(self) -> float:
        return _accuracy(self.probabilities, self.labels)


def batched(predict: Predict, inputs: np.ndarray, batch: int = BATCH) -> np.ndarray:
    return np.concatenate([predict(inputs[start : start + batch]) for start in range(0, len(inputs), batch)])


def compare(name: str, probabilities: np.ndarray, reference: Reference, tolerance: float) -> dict:
    """Accuracy, drop, max probability difference and top-1 agreement against the reference."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.shape != reference.probabilities.shape:
        raise ExportVerificationError(
            f"{name}: expected probabilities shaped {reference.probabilities.shape}. Received: {probabilities.shape}"
        )
    accuracy = _accuracy(probabilities, reference.labels)
    return {
        f"test_{reference.unit}": int(len(reference.labels)),
        "test_accuracy": round(accuracy, 4),
        "keras_test_accuracy": round(reference.accuracy, 4),
        "accuracy_drop": round(reference.accuracy - accuracy, 4),
        "max_probability_difference": float(np.abs(probabilities - reference.probabilities).max(initial=0.0)),
        "top1_agreement": round(float((probabilities.argmax(1) == reference.probabilities.argmax(1)).mean()), 4)
        if len(probabilities)
        else 1.0,
        "tolerance": tolerance,
        "passed": bool(reference.accuracy - accuracy <= tolerance + 1e-9),
    }


def check(name: str, result: dict) -> None:
    if not result["passed"]:
        raise ExportVerificationError(
            f"{name} failed verification: test accuracy {result['test_accuracy']:.4f} vs Keras "
            f"{result['keras_test_accuracy']:.4f} (drop {result['accuracy_drop'] * 100:.1f} pt, tolerance "
            f"{result['tolerance'] * 100:.0f} pt). The file is kept for inspection but marked failed in "
            f"{layout.MANIFEST}; do not deploy it. For int8, try --quantize dynamic or float16."
        )


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(1) == labels).mean()) if len(labels) else 1.0
