"""`evaluate_run`: a finished run on its own test split (from its folder) or on other labelled data."""

from __future__ import annotations

import os

from shoulders.api.backfill import open_run
from shoulders.evaluation.evaluate import evaluate_test_split, score


def evaluate_run(run_path: str | os.PathLike, data: str | os.PathLike | None = None) -> dict:
    """Metrics of the run's model. Without ``data``: the test split recorded in the run folder.

    ``data`` is a labelled folder of images for an image run; for a text run a CSV/TSV file (or a folder of
    class subfolders of .txt files) read with the run's text and label columns, every usable row scored.
    The result adds ``source`` and ``task`` to `classification_metrics`.
    """
    run = open_run(run_path)
    if data is None:
        return evaluate_test_split(run)
    if run.task == "text":
        from shoulders.text.inputs import labelled_texts

        inputs, labels = labelled_texts(run.config, str(data), run.classes, run.name)
    else:
        from shoulders.image.inputs import labelled_images

        inputs, labels = labelled_images(data, run.image_size, run.crop_fraction, run.classes)
    return score(run, inputs, labels, str(data))
