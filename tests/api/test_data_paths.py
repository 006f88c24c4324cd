"""A run records where its data is as an absolute path, and says what is missing when the data moved."""

import dataclasses

import pytest

from shoulders.api.backfill import DataMovedError, check_data_present
from shoulders.config import RunConfig
from shoulders.runs.reader import Run


def test_paths_typed_relative_are_saved_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = RunConfig.from_options("small", cache_dir="cache")
    assert config.data == str(tmp_path / "small") and config.cache_dir == str(tmp_path / "cache")
    text = RunConfig.from_options("reviews.csv", task="text", test_file="test.csv", val_file="val.csv")
    assert (text.test_file, text.val_file) == (str(tmp_path / "test.csv"), str(tmp_path / "val.csv"))
    assert RunConfig.from_options("digits").data == "digits"  # the embedded set is a name, not a path
    assert RunConfig.from_dict(config.to_dict()).data == config.data


def test_compare_gives_its_runs_absolute_paths(tmp_path, monkeypatch, colour_folder):
    from shoulders.api.compare import _plan

    monkeypatch.chdir(colour_folder.parent)
    plan = _plan("photos", 1, None, tmp_path / "cmp", ("two-phase",), {"cache_dir": "cache"})
    config = plan.config("two-phase", 0, "all")
    assert config.data == str(colour_folder) and config.cache_dir == str(colour_folder.parent / "cache")


def _run(tmp_path, **fields) -> Run:
    config = dataclasses.replace(RunConfig(data=str(tmp_path / "photos")), **fields)
    return Run(tmp_path / "run", config, ["a", "b"], {}, [], 32, 1.0)


def test_moved_data_names_what_is_missing_and_what_points_to_the_new_place(tmp_path):
    with pytest.raises(DataMovedError, match=r"photos is missing: .*'data' in .*config.json.*shoulders evaluate .* --data NEW_PLACE"):
        check_data_present(_run(tmp_path))
    with pytest.raises(DataMovedError, match=r"small \(a path relative to the folder it was trained from"):
        check_data_present(_run(tmp_path, data="small"))  # a folder written before paths were saved absolute
    (tmp_path / "photos").mkdir()
    check_data_present(_run(tmp_path))
