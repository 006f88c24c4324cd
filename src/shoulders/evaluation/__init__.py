"""Honest evaluation on the test split, which no choice ever looked at; and honest comparison of strategies."""

from shoulders.evaluation.compare import compare, load_comparison
from shoulders.evaluation.metrics import classification_metrics

__all__ = ["classification_metrics", "compare", "load_comparison"]
