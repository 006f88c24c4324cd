"""Re-evaluate a finished run: on its own test split, or on other labelled data (images or texts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from shoulders.data import DataError, load_labelled_folder
from shoulders.evaluation.metrics import classification_metrics
from shoulders.run import Run, load_run
from shoulders.training.recipe import load_data, predict_probabilities


def evaluate_run(run_path: str | os.PathLike, data: str | os.PathLike | None = None) -> dict:
    """Metrics of the run's model. Without ``data``: the run's own test split, rebuilt from its config
    (the decode cache makes this fast for images) and checked row-for-row against splits.json.

    ``data`` is a labelled folder of images for an image run; for a text run a CSV/TSV file (or a folder of
    class subfolders of .txt files) read with the run's text and label columns, every usable row scored.
    The result adds ``source`` and ``task`` to `classification_metrics`.
    """
    run = load_run(run_path)
    if run.task == "text":
        texts, labels, source = _own_test_texts(run) if data is None else _labelled_texts(run, data)
        probabilities = run.predict(texts)
    else:
        images, labels, source = _own_test_images(run) if data is None else _labelled_images(run, data)
        probabilities = predict_probabilities(run.model, images)
    result = classification_metrics(labels, probabilities, run.classes)
    return {**result, "source": source, "task": run.task}


def _own_test_images(run: Run) -> tuple[np.ndarray, np.ndarray, str]:
    prepared = load_data(run.config, run.image_size, progress=False)
    _check_same_test_split(run, prepared.split_files()["test"], list(prepared.classes))
    images, labels = prepared.subset("test")
    return images, labels, f"its test split ({run.config.data})"


def _labelled_images(run: Run, data: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, str]:
    images, labels = load_labelled_folder(Path(data), run.image_size, run.crop_fraction, run.classes)
    return images, labels, str(data)


def _own_test_texts(run: Run) -> tuple[list[str], np.ndarray, str]:
    from shoulders.text.recipe import load_data as load_text_run_data

    prepared = load_text_run_data(run.config)
    _check_same_test_split(run, prepared.split_files()["test"], list(prepared.classes))
    texts, labels = prepared.subset("test")
    # Row ids are line numbers, so an edited row keeps its id: compare the texts metrics.json recorded.
    recorded = {p["file"]: p.get("text") for p in run.metrics.get("test_predictions", [])}
    names = prepared.split_files()["test"]
    changed = [name for name, text in zip(names, texts) if recorded.get(name) not in (None, text)]
    if changed:
        raise ValueError(
            f"{len(changed)} test rows of {run.config.data} changed since the run (e.g. {changed[0]}), so its test "
            "split is not the one scored in metrics.json: evaluate on the file with --data instead."
        )
    return texts, labels, f"its test split ({run.config.data})"


def _labelled_texts(run: Run, data: str | os.PathLike) -> tuple[list[str], np.ndarray, str]:
    """Every usable row of ``data``, unsplit (one class is a fine test file), labels in the run's order."""
    from shoulders.text.data import read_labelled_texts
    from shoulders.text.recipe import column

    try:
        texts, names, _ = read_labelled_texts(
            data, text_column=column(run.config.text_column), label_column=column(run.config.label_column)
        )
    except DataError as error:
        raise DataError(f"cannot evaluate {run.name} on {data}: {error}") from None
    unknown = sorted(set(names) - set(run.classes))
    if unknown:
        raise DataError(
            f"{data} has labels the run was not trained on: {', '.join(map(repr, unknown))}; the run knows "
            f"{', '.join(run.classes)}. Fix or drop those rows, or evaluate a run trained with those labels."
        )
    return texts, np.array([run.classes.index(name) for name in names], dtype=np.int64), str(data)


def _check_same_test_split(run: Run, test_rows: list[str], classes: list[str]) -> None:
    """The rebuilt test split must be the recorded one, or the numbers would describe other data."""
    recorded = json.loads(run.path.joinpath("splits.json").read_text())
    if sorted(test_rows) != sorted(recorded["test"]) or classes != run.classes:
        raise ValueError(
            f"the data at {run.config.data} no longer gives the test split recorded in {run.path}/splits.json "
            "(rows were added, removed or changed): evaluate on it with --data instead."
        )
