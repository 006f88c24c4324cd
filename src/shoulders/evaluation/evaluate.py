"""Re-evaluate a finished run: on its own test split, or on another labelled folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shoulders.data import load_labelled_folder
from shoulders.evaluation.metrics import classification_metrics
from shoulders.run import load_run
from shoulders.training.recipe import load_data, predict_probabilities


def evaluate_run(run_path: str | os.PathLike, data: str | os.PathLike | None = None) -> dict:
    """Metrics of the run's model. Without ``data``: the run's own test split, rebuilt from its config
    (the decode cache makes this fast) and checked file-for-file against splits.json."""
    run = load_run(run_path)
    if data is None:
        prepared = load_data(run.config, run.image_size, progress=False)
        recorded = json.loads(run.path.joinpath("splits.json").read_text())
        if sorted(prepared.split_files()["test"]) != sorted(recorded["test"]):
            raise ValueError(
                f"the data at {run.config.data} no longer gives the test split recorded in {run.path}/splits.json "
                "(files were added, removed or changed): evaluate on it with --data instead."
            )
        images, labels = prepared.subset("test")
        source = f"its test split ({run.config.data})"
    else:
        images, labels = load_labelled_folder(Path(data), run.image_size, run.crop_fraction, run.classes)
        source = str(data)
    result = classification_metrics(labels, predict_probabilities(run.model, images), run.classes)
    return {**result, "source": source}
