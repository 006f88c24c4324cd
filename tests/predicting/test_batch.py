"""`shoulders predict RUN INPUT... --out FILE` on the local engine, as a user runs it: folders, @lists and
files mixed; every format; a broken file is a row; --strict, --resume and refusals; text runs."""

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from shoulders.cli.main import app
from shoulders.predicting import BatchJob, Inputs, predict_to_file
from shoulders.predicting.output import PredictOutputError

runner = CliRunner()


@pytest.fixture
def photos(trained_run, tmp_path) -> Path:
    """The tiny run's own photos (3 colours) plus a zero-byte file, a non-image and a hidden file."""
    source = Path(trained_run.config.data)
    folder = tmp_path / "inbox"
    for index, file in enumerate(sorted(source.glob("*/*.png"))[::4]):
        target = folder / ("nested" if index % 2 else "") / f"{file.parent.name}-{file.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.read_bytes())
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "nested" / "notes.txt").write_text("not an image")  # not an image extension: not an input
    (folder / ".hidden.png").write_bytes((source / "red" / "red_000.png").read_bytes())
    return folder


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            return [{**row, "top_k_labels": json.loads(row["top_k_labels"])} for row in csv.DictReader(handle)]
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_a_folder_to_a_file_with_one_row_per_input(trained_run, photos, tmp_path, suffix):
    out = tmp_path / f"predictions{suffix}"
    result = runner.invoke(app, ["predict", str(trained_run.path), str(photos), str(tmp_path / "missing.png"), "--out", str(out), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    good = sorted(photos.rglob("*-*.png"))
    assert len(rows) == len(good) + 2  # + zero.jpg + missing.png; .hidden.png and notes.txt are no inputs
    by_path = {row["path"]: row for row in rows}
    for file in good:
        row = by_path[str(file)]
        assert row["label"] == file.name.split("-")[0] and not row["error"]
        assert len(row["top_k_labels"]) == 2 and row["top_k_labels"][0] == row["label"]
    assert "zero.jpg" in by_path[str(photos / "zero.jpg")]["error"]
    assert "no such file" in by_path[str(tmp_path / "missing.png")]["error"]
    assert f"{len(rows)} rows written" in result.output and "(2 failed)" in result.output
    expected = trained_run.predict([str(file) for file in good])
    assert np.allclose([float(by_path[str(file)]["probability"]) for file in good], expected.max(axis=1), atol=1e-4)  # served form: BatchNorm folded


def test_a_list_file_strict_and_resume(trained_run, photos, tmp_path):
    files = sorted(photos.rglob("*-*.png"))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(map(str, files[:3])) + "\n\n")
    out = tmp_path / "p.parquet"
    result = runner.invoke(app, ["predict", str(trained_run.path), f"@{listing}", "--out", str(out), "--strict"])
    assert result.exit_code == 0, result.output
    assert [row["path"] for row in _rows(out)] == list(map(str, files[:3]))
    again = runner.invoke(app, ["predict", str(trained_run.path), str(photos), "--out", str(out)])
    assert again.exit_code == 2 and "--resume" in again.output  # never overwritten silently
    resumed = runner.invoke(app, ["predict", str(trained_run.path), str(photos), "--out", str(out), "--resume", "--strict"])
    assert resumed.exit_code == 1, resumed.output  # zero.jpg failed
    rows = _rows(out)
    assert len(rows) == len(files) + 1 and len({row["path"] for row in rows}) == len(rows)
    assert "3 already there" in resumed.output


def test_resume_after_a_kill_keeps_every_finished_row(trained_run, photos, tmp_path):
    """A job stopped mid-way (here: an exception after the first batch) leaves its rows for --resume."""
    files = sorted(photos.rglob("*-*.png"))
    out = tmp_path / "p.parquet"
    job = BatchJob(trained_run.path, Inputs((str(photos),)), out, batch_size=2)
    calls = []

    def stop_after_one(rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise KeyboardInterrupt

    from shoulders.predicting import output

    original = output.ParquetSink.write
    output.ParquetSink.write = lambda self, rows: (original(self, rows), stop_after_one(rows))
    try:
        with pytest.raises(KeyboardInterrupt):
            predict_to_file(job, progress=False)
    finally:
        output.ParquetSink.write = original
    journal = out.with_name(out.name + ".partial.jsonl")
    assert not out.exists() and len(journal.read_text().splitlines()) == 4
    with journal.open("a") as handle:
        handle.write('{"path": "half a row')  # the kill came mid-line
    summary = predict_to_file(BatchJob(trained_run.path, Inputs((str(photos),)), out, resume=True), progress=False)
    assert summary.skipped == 4 and summary.written == len(files) + 1 - 4
    assert sorted(row["path"] for row in _rows(out)) == sorted(map(str, [*files, photos / "zero.jpg"]))
    assert not journal.exists()


def test_refusals_name_the_option(trained_run, tmp_path):
    with pytest.raises(PredictOutputError, match="--out .*\\.parquet, \\.csv, \\.jsonl"):
        predict_to_file(BatchJob(trained_run.path, Inputs((str(tmp_path),)), tmp_path / "p.xlsx"))
    with pytest.raises(PredictOutputError, match="does not exist"):
        predict_to_file(BatchJob(trained_run.path, Inputs((str(tmp_path),)), tmp_path / "no" / "p.csv"))
    result = runner.invoke(app, ["predict", str(trained_run.path), str(tmp_path), "--out", str(tmp_path / "p.csv"), "--engine", "dask"])
    assert result.exit_code == 2 and "--engine takes local, ray, spark" in result.output
    result = runner.invoke(app, ["predict", str(trained_run.path), "--text", "hello"])
    assert result.exit_code == 2 and "image run" in result.output


def test_without_out_a_broken_file_does_not_hide_the_good_ones(trained_run, photos):
    good = sorted(photos.rglob("*-*.png"))[0]
    result = runner.invoke(app, ["predict", str(trained_run.path), str(good), str(photos / "zero.jpg"), "--json"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    assert answers[0]["top"][0]["label"] == good.name.split("-")[0] and not answers[0]["error"]
    assert answers[1]["top"] == [] and "zero.jpg" in answers[1]["error"]


def test_inputs_are_a_stream(trained_run, tmp_path):
    """Inputs are walked lazily (memory that does not grow with them is measured in bench/scale.py)."""
    folder = tmp_path / "many"
    folder.mkdir()
    pixels = np.full((8, 8, 3), 200, np.uint8)
    for index in range(70):
        Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    stream = iter(Inputs((str(folder),)))
    assert next(stream).endswith("000.png")  # a generator, not a list
    summary = predict_to_file(BatchJob(trained_run.path, Inputs((str(folder),)), tmp_path / "p.jsonl", batch_size=16), progress=False)
    assert summary.written == 70 and summary.failed == 0
