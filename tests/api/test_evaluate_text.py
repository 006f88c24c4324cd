"""`shoulders evaluate` on a text run: its own test split (rebuilt from config.json, checked against
splits.json), or a whole other table read with the run's columns."""

import json
import shutil
from pathlib import Path

import pytest
from reviews import make_review_table

from shoulders.data import DataError
from shoulders.api.evaluate import evaluate_run


def test_own_test_split_reproduces_the_run_metrics(tiny_text_run):
    result = evaluate_run(tiny_text_run.path)
    test = tiny_text_run.metrics["test"]
    assert result["task"] == "text" and result["source"].startswith("its test split")
    assert result["count"] == test["count"] == len(json.loads((tiny_text_run.path / "splits.json").read_text())["test"])
    assert result["confusion_matrix"] == test["confusion_matrix"]
    assert result["accuracy"] == pytest.approx(tiny_text_run.metrics["test_accuracy"])
    assert result["expected_calibration_error"] == pytest.approx(test["expected_calibration_error"], abs=1e-4)


def test_another_table_is_evaluated_whole(tiny_text_run, tmp_path):
    table = make_review_table(tmp_path / "new.csv", per_class=10, seed=7, sep=",")  # another format, same columns
    result = evaluate_run(tiny_text_run.path, table)
    assert result["source"] == str(table)
    assert result["count"] == 20  # every row, not one split of it
    assert sum(map(sum, result["confusion_matrix"])) == 20
    assert list(result["per_class"]) == tiny_text_run.classes
    assert result["accuracy"] > 0.5


def test_labels_the_run_never_saw_are_refused(tiny_text_run, tmp_path):
    table = make_review_table(tmp_path / "new.tsv", per_class=8, seed=3)
    lines = table.read_text().splitlines()
    lines += [f"so-so film number {index}\tneutral" for index in range(8)]
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="not trained on: 'neutral'.*negative, positive"):
        evaluate_run(tiny_text_run.path, table)


def run_on(tiny_text_run, folder, table):
    """A copy of the run folder (model linked) whose config points at ``table``, as an older shoulders
    wrote it: without reference/, so evaluating rebuilds the test split from the data."""
    shutil.copytree(tiny_text_run.path, folder, ignore=shutil.ignore_patterns("model.keras", "reference"))
    (folder / "model.keras").symlink_to(tiny_text_run.path / "model.keras")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "data": str(table)}))
    return folder


def test_changed_data_is_refused_for_the_own_split(tiny_text_run, tmp_path):
    other = make_review_table(tmp_path / "other.tsv", per_class=30, seed=9)
    with pytest.raises(ValueError, match="no longer gives the test split.*--data"):
        evaluate_run(run_on(tiny_text_run, tmp_path / "moved", other))

    edited = tmp_path / "edited" / "reviews.tsv"  # same name, same rows, one test text reworded
    edited.parent.mkdir()
    lines = Path(tiny_text_run.config.data).read_text(encoding="utf-8").splitlines()
    line = int(json.loads((tiny_text_run.path / "splits.json").read_text())["test"][0].split(":")[1])
    text, label = lines[line - 1].split("\t")
    lines[line - 1] = f"{text} (reworded)\t{label}"
    edited.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="1 test rows .* changed since the run"):
        evaluate_run(run_on(tiny_text_run, tmp_path / "edited_run", edited))


def test_own_split_needs_only_the_run_folder(tiny_text_run, tmp_path):
    """The run folder is the contract: with its data gone, the recorded test split still evaluates."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_text_run.path, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "data": str(tmp_path / "gone.tsv")}))
    result = evaluate_run(copy)
    assert result["accuracy"] == pytest.approx(tiny_text_run.metrics["test_accuracy"])


def test_an_older_run_folder_gets_its_reference_written(tiny_text_run, tmp_path):
    """A folder without reference/ (an older shoulders) is completed once from its data, then read alone."""
    older = run_on(tiny_text_run, tmp_path / "older", tiny_text_run.config.data)
    assert not (older / "reference").exists()
    assert evaluate_run(older)["accuracy"] == pytest.approx(tiny_text_run.metrics["test_accuracy"])
    assert (older / "reference" / "test.npz").exists()


def test_evaluate_on_a_one_class_file(tiny_text_run, tmp_path):
    """A test file may hold one class and two rows: scoring is not training."""
    from shoulders.api.evaluate import evaluate_run

    table = tmp_path / "only_positive.tsv"
    table.write_text("text\tlabel\nwhat a wonderful film\tpositive\nbrilliant and warm\tpositive\n", encoding="utf-8")
    result = evaluate_run(tiny_text_run.path, table)
    assert result["count"] == 2 and result["task"] == "text"
