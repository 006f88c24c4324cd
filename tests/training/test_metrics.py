"""The test accuracy comes with its 95% Wilson interval: honest for a handful of test images."""

import numpy as np
import pytest

from shoulders.training.metrics import classification_metrics, wilson_interval


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(3, 3)[1] == 1.0 and wilson_interval(3, 3)[0] == pytest.approx(0.4385, abs=1e-4)


def test_three_right_out_of_three_is_not_certainty():
    probabilities = np.eye(3)
    result = classification_metrics(np.array([0, 1, 2]), probabilities, ["a", "b", "c"])
    assert result["accuracy"] == 1.0
    low, high = result["accuracy_ci95"]
    assert high == 1.0 and low < 0.5  # "1.0000 on 3 images" says little, and the interval shows it
