"""Honest evaluation of a finished run, from its folder: on the test split no choice ever looked at."""

from shoulders.evaluation.evaluate import evaluate_test_split, score

__all__ = ["evaluate_test_split", "score"]
