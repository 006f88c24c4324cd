"""The summary (terminal and report.html) gives the test accuracy with its 95% interval."""

from shoulders.reporting.summary import accuracy_interval


def test_the_interval_is_shown_when_recorded_and_left_out_for_older_runs():
    assert accuracy_interval({"test_accuracy_ci95": [0.4385, 1.0], "test": {}}) == "95% CI 0.4385-1.0000, "
    assert accuracy_interval({"test": {"accuracy_ci95": [0.1, 0.2]}}) == "95% CI 0.1000-0.2000, "
    assert accuracy_interval({"test": {}}) == ""  # metrics.json of a run from before it was recorded
