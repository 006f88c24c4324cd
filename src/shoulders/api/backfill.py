"""`open_run`: a finished run whose folder holds every file later steps read.

Runs trained before the run folder recorded ``reference/`` (test inputs, calibration sample, error
thumbnails) get those files written once, from the data they were trained on, after checking that the
data still gives the recorded test split. Later steps then read the folder alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shoulders.errors import ShouldersError
from shoulders.runs import layout
from shoulders.runs.reader import Run, load_run
from shoulders.runs.writer import RunFolder


class DataChangedError(ShouldersError, ValueError):
    """The run's data no longer gives the test split its folder recorded."""


class DataMovedError(ShouldersError, FileNotFoundError):
    """The data an older run folder needs once (to write reference/) is no longer where config.json says."""


def check_data_present(run: Run) -> None:
    """The run's data (and its split files) are where config.json recorded them; else say what is
    missing, where it is recorded, and what points to the new place."""
    config = run.config
    recorded = {"data": config.data, "test_file": config.test_file, "val_file": config.val_file}
    for key, value in recorded.items():
        if value is None or value == "digits" or Path(value).exists():
            continue
        relative = "" if Path(value).is_absolute() else f" (a path relative to the folder it was trained from, not {Path.cwd()})"
        raise DataMovedError(
            f"{value}{relative} is missing: {run.path} was trained on it ({key!r} in {run.path / layout.CONFIG}) by an older "
            f"shoulders, which did not record {layout.REFERENCE}/, so it is read once to write those files. Put it back, or "
            f"set {key!r} in {layout.CONFIG} to its new place; to score the run on data elsewhere: "
            f"shoulders evaluate {run.path} --data NEW_PLACE."
        )


def open_run(path: str | os.PathLike) -> Run:
    """`load_run`, with the reference files of an older run folder written first."""
    run = load_run(path)
    if not run.has(layout.TEST_REFERENCE):
        check_data_present(run)
        arrays = _text_reference(run) if run.task == "text" else _image_reference(run)
        for name, values in arrays.items():
            RunFolder(run.path).write_arrays(name, values)
    return run


def _image_reference(run: Run) -> dict[str, dict[str, np.ndarray]]:
    from shoulders import backbones
    from shoulders.image.inputs import ImageInputs, load_data

    data = load_data(run.config, run.image_size, progress=False)
    _check_same_test_split(run, data.split_files()["test"], list(data.classes))
    probabilities = run.predict(np.asarray(data.subset("test")[0]))
    return ImageInputs(data, backbones.get(run.config.backbone)).reference(probabilities)


def _text_reference(run: Run) -> dict[str, dict[str, np.ndarray]]:
    from shoulders.text.inputs import TextInputs, load_data

    data = load_data(run.config)
    _check_same_test_split(run, data.split_files()["test"], list(data.classes))
    texts, _ = data.subset("test")
    # Row ids are line numbers, so an edited row keeps its id: compare the texts metrics.json recorded.
    recorded = {p["file"]: p.get("text") for p in run.metrics.get("test_predictions", [])}
    names = data.split_files()["test"]
    changed = [name for name, text in zip(names, texts) if recorded.get(name) not in (None, text)]
    if changed:
        raise DataChangedError(
            f"{len(changed)} test rows of {run.config.data} changed since the run (e.g. {changed[0]}), so its test "
            "split is not the one scored in metrics.json: evaluate on the file with --data instead."
        )
    return TextInputs(data, run.tokenizer).reference(run.predict(list(texts)))


def _check_same_test_split(run: Run, test_rows: list[str], classes: list[str]) -> None:
    """The rebuilt test split must be the recorded one, or the numbers would describe other data."""
    recorded = run.read(layout.SPLITS)
    if sorted(test_rows) != sorted(recorded["test"]) or classes != run.classes:
        raise DataChangedError(
            f"the data at {run.config.data} no longer gives the test split recorded in {run.path}/{layout.SPLITS} "
            "(rows were added, removed or changed): evaluate on it with --data instead."
        )
