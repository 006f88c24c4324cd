"""A damaged or incomplete run folder: each message names the file, what is wrong with it and what to do."""

import json

import keras
import pytest

from shoulders.config import RunConfig
from shoulders.io import BrokenFileError
from shoulders.runs import layout
from shoulders.runs.reader import RunFileError, RunNotFoundError, load_run
from shoulders.runs.writer import ResumeError, RunFolder


@pytest.fixture
def run_folder(tmp_path):
    """A finished run folder in miniature: its JSON records and a small (non-shoulders) Keras model."""
    path = tmp_path / "run"
    path.mkdir()
    for name, value in ((layout.CONFIG, RunConfig(data=str(tmp_path)).to_dict()), (layout.DATA, {"classes": ["a", "b"]}),
                        (layout.METRICS, {"test_accuracy": 1.0}), (layout.HISTORY, [])):
        (path / name).write_text(json.dumps(value))
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]).save(path / layout.MODEL)
    return path


def test_the_miniature_loads(run_folder):
    assert load_run(run_folder).model.output_shape == (None, 2)


def test_a_truncated_model_is_named_as_damaged(run_folder):
    model = run_folder / layout.MODEL
    model.write_bytes(model.read_bytes()[:500])
    with pytest.raises(RunFileError, match=r"model.keras is damaged: not a complete .keras archive \(500 bytes.*train the run again"):
        load_run(run_folder).model


def test_a_deleted_model_is_not_called_interrupted_and_resume_agrees(run_folder):
    (run_folder / layout.MODEL).unlink()
    with pytest.raises(RunFileError, match=r"model.keras is missing from a finished run .*deleted or moved") as error:
        load_run(run_folder)
    assert "--resume" not in str(error.value)
    with pytest.raises(ResumeError, match="already finished"):  # and resume says the same: finished
        RunFolder.open(RunConfig(data="x", out=str(run_folder)), resume=True)


def test_an_interrupted_run_points_to_resume(run_folder):
    (run_folder / layout.METRICS).unlink()
    with pytest.raises(RunNotFoundError, match=r"looks interrupted. Continue it with `shoulders train --resume --out .*run`"):
        load_run(run_folder)


def test_a_broken_config_names_the_file_and_the_fix(run_folder):
    (run_folder / layout.CONFIG).write_text('{"data": "photos", "lr": ')
    with pytest.raises(BrokenFileError, match=r"run/config.json is not valid JSON \(line 1 column .*Restore it from a backup"):
        load_run(run_folder)
    (run_folder / layout.CONFIG).write_text('{"data": "photos", "lr": -1}')
    with pytest.raises(RunFileError, match=r"run/config.json does not describe a run \(--lr must be in \(0, 10\]"):
        load_run(run_folder)
    (run_folder / layout.CONFIG).write_text('{"lr": 0.1}')
    with pytest.raises(RunFileError, match=r"config.json does not describe a run"):
        load_run(run_folder)
