"""Score a finished run from its folder alone: on the test split it recorded, or on inputs a caller loaded.

The run folder is the contract: ``reference/test.npz`` holds the test inputs (pixels or texts) and labels
as training saw them, so evaluating needs neither the dataset nor its loader.
"""

from __future__ import annotations

import numpy as np

from shoulders.runs import layout
from shoulders.runs.reader import Run
from shoulders.training.metrics import classification_metrics


def evaluate_test_split(run: Run) -> dict:
    """The run's model on its own recorded test split (the numbers of metrics.json, recomputed)."""
    reference = run.arrays(layout.TEST_REFERENCE)
    recorded, total = len(reference["labels"]), run.metrics["test"]["count"]
    part = "" if recorded == total else f", the first {recorded} of {total} rows, as recorded"
    return score(run, reference["inputs"], reference["labels"], f"its test split ({run.config.data}{part})")


def score(run: Run, inputs: np.ndarray | list[str], labels: np.ndarray, source: str) -> dict:
    """`classification_metrics` of the run's predictions on ``inputs``, with ``source`` and ``task`` added."""
    inputs = list(inputs) if run.task == "text" else inputs
    result = classification_metrics(labels, run.predict(inputs), run.classes)
    return {**result, "source": source, "task": run.task}
