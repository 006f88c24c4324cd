"""Honest evaluation on the test split, which no choice ever looked at."""

from shoulders.evaluation.metrics import classification_metrics

__all__ = ["classification_metrics"]
