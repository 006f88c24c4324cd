"""The run folder is the contract: once training is over, evaluate, export, report and predict read the
folder alone. The photos are moved away before any of them runs; an older folder (no reference/) is
completed once from its data."""

import shutil

import numpy as np
import pytest
from tiny_runs import make_colour_folder

import shoulders
from shoulders.api.backfill import DataMovedError, open_run
from shoulders.api.evaluate import evaluate_run
from shoulders.export import export_run
from shoulders.reporting import write_run_report
from shoulders.runs import layout
from shoulders.runs.reader import ReferenceMissingError

TINY = dict(image_size=32, batch_size=8, epochs_head=30, epochs_finetune=1, patience=5, lr=1e-2, augment=False)


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory):
    """A finished image run whose photos are gone from where it was trained."""
    root = tmp_path_factory.mktemp("contract")
    photos = make_colour_folder(root / "photos")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOULDERS_CACHE", str(root / "cache"))
        patch.setenv("SHOULDERS_TRACKING", "off")
        run = shoulders.train(photos, out=root / "run", progress=False, **TINY)
    photos.rename(root / "moved-away")
    shutil.rmtree(root / "cache")
    return run


def test_training_records_what_later_steps_need(moved_run):
    reference = moved_run.arrays(layout.TEST_REFERENCE)
    test_names = moved_run.read(layout.SPLITS)["test"]
    assert reference["names"].tolist() == test_names
    assert reference["inputs"].dtype == np.uint8 and reference["inputs"].shape == (len(test_names), 32, 32, 3)
    np.testing.assert_allclose(reference["probabilities"].max(1), [p["confidence"] for p in moved_run.metrics["test_predictions"]], atol=1e-5)
    assert 0 < len(moved_run.arrays(layout.CALIBRATION)["inputs"]) <= layout.CALIBRATION_SAMPLE
    errors = [p for p in moved_run.metrics["test_predictions"] if p["true"] != p["predicted"]]
    assert len(moved_run.arrays(layout.ERROR_THUMBNAILS)["names"]) == min(len(errors), layout.THUMBNAIL_COUNT)


def test_evaluate_export_and_report_without_the_data(moved_run):
    result = evaluate_run(moved_run.path)
    assert result["accuracy"] == pytest.approx(moved_run.metrics["test_accuracy"])
    assert result["confusion_matrix"] == moved_run.metrics["test"]["confusion_matrix"]
    entry = export_run(moved_run, "tflite", "int8")  # calibrated on the recorded training sample
    assert entry["verification"]["pixels"]["test_images"] == moved_run.metrics["test"]["count"]
    text = write_run_report(moved_run.path).read_text()
    assert "Worst test errors" in text and "Images unavailable" not in text


def test_an_older_folder_is_completed_once_then_read_alone(moved_run, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(moved_run.path, older, ignore=shutil.ignore_patterns(layout.REFERENCE, layout.EXPORTS))
    with pytest.raises(ReferenceMissingError, match="older shoulders"):
        shoulders.load_run(older).arrays(layout.TEST_REFERENCE)
    with pytest.raises(DataMovedError, match="is missing: .* set 'data' in config.json"):  # its photos are gone
        open_run(older)
    moved = moved_run.path.parent / "moved-away"
    moved.rename(moved_run.path.parent / "photos")
    try:
        run = open_run(older)
        assert run.arrays(layout.TEST_REFERENCE)["names"].tolist() == moved_run.read(layout.SPLITS)["test"]
    finally:
        (moved_run.path.parent / "photos").rename(moved)
    assert evaluate_run(older)["accuracy"] == pytest.approx(moved_run.metrics["test_accuracy"])


def test_a_capped_reference_says_how_much_it_scores(moved_run, tmp_path):
    """A large test split is recorded up to a limit; evaluating the folder says it scored that part."""
    from shoulders.runs.writer import RunFolder

    capped = tmp_path / "capped"
    shutil.copytree(moved_run.path, capped, ignore=shutil.ignore_patterns(layout.EXPORTS))
    stored = moved_run.arrays(layout.TEST_REFERENCE)
    RunFolder(capped).write_arrays(layout.TEST_REFERENCE, {key: value[:2] for key, value in stored.items()})
    result = evaluate_run(capped)
    assert result["count"] == 2
    assert result["source"].endswith(f"the first 2 of {moved_run.metrics['test']['count']} rows, as recorded)")
