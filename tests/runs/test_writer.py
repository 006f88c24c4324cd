"""Where a run folder may go: never inside its data, never onto a file, and not made until the checks pass."""

import pytest
from PIL import Image

import shoulders
from shoulders.data import DataError
from shoulders.runs.writer import OutFolderError, RunFolder


def test_out_inside_the_data_is_refused_before_anything_is_made(colour_folder, cache_dir):
    with pytest.raises(OutFolderError, match=r"--out .*run1 is inside the data folder .*photos: .*outside"):
        shoulders.train(colour_folder, out=colour_folder / "run1", progress=False)
    assert sorted(p.name for p in colour_folder.iterdir()) == ["blue", "green", "red"]


def test_the_default_runs_folder_inside_the_data_is_refused(colour_folder, cache_dir, monkeypatch):
    monkeypatch.chdir(colour_folder)  # cd photos && shoulders train .
    with pytest.raises(OutFolderError, match=r"\(the default, as --out was not given\) is inside the data folder"):
        shoulders.train(".", progress=False)
    assert not (colour_folder / "runs").exists()


def test_out_naming_a_file_is_a_clear_error(tmp_path, colour_folder):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    with pytest.raises(OutFolderError, match=r"--out .*notes.txt is a file, not a folder"):
        RunFolder.create(file, str(colour_folder))
    with pytest.raises(OutFolderError, match=r"--out .*notes.txt/run is inside .*notes.txt, which is a file"):
        RunFolder.create(file / "run", str(colour_folder))


def test_cache_dir_naming_a_file_is_a_clear_error(tmp_path, colour_folder):
    file = tmp_path / "cache"
    file.write_text("x")
    with pytest.raises(OutFolderError, match="--cache-dir"):
        shoulders.train(colour_folder, out=tmp_path / "run", cache_dir=str(file), progress=False)


def test_a_run_refused_by_its_data_leaves_no_folder(tmp_path, cache_dir):
    for name, count, green in (("cats", 3, 0), ("dogs", 1, 200)):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for index in range(count):
            Image.new("RGB", (8, 8), (index * 40, green, 10)).save(tmp_path / "photos" / name / f"{index}.png")
    out = tmp_path / "run"
    with pytest.raises(DataError, match="'dogs' has only 1 usable image"):
        shoulders.train(tmp_path / "photos", out=out, image_size=32, progress=False)
    assert not out.exists()


def test_resume_refuses_new_options_and_names_them(tmp_path):
    """An interrupted run resumed with other options would mix two runs: refused, each change named."""
    import dataclasses
    import json

    from shoulders.config import RunConfig
    from shoulders.runs.writer import ResumeError

    photos = tmp_path / "photos"
    photos.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    saved = RunConfig.from_options(photos, out=str(run), lr=1e-3, image_size=64)
    (run / "config.json").write_text(json.dumps(saved.to_dict()))
    with pytest.raises(ResumeError, match=r"--image-size 96 \(the run's: 64\); --lr 0.01 \(the run's: 0.001\)"):
        RunFolder.open(RunConfig.from_options(photos, out=str(run), lr=1e-2, image_size=96), resume=True)
    with pytest.raises(ResumeError, match=r"--augment/--no-augment off \(the run's: on\)"):
        RunFolder.open(RunConfig.from_options(photos, out=str(run), augment=False), resume=True)
    with pytest.raises(ResumeError, match="DATA .*elsewhere"):
        RunFolder.open(RunConfig.from_options(tmp_path / "elsewhere", out=str(run)), resume=True)
    same = RunFolder.open(RunConfig.from_options(photos, out=str(run), cache_dir=str(tmp_path / "c")), resume=True)[1]
    assert same.cache_dir == str((tmp_path / "c").resolve()) or same.cache_dir == str(tmp_path / "c")  # taken anew
    assert dataclasses.replace(same, cache_dir=saved.cache_dir) == saved  # the defaults are no change: the saved options go on
