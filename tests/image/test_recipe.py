"""The whole recipe on tiny generated photos, as a user runs it (Python API and CLI)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from processes import train_until_killed
from typer.testing import CliRunner

import shoulders
from shoulders.cli.main import app

FAST = dict(image_size=32, batch_size=8, epochs_head=40, epochs_finetune=2, patience=5, lr=1e-2)
RUN_FILES = {"config.json", "model.keras", "history.json", "metrics.json", "splits.json", "bad_files.json", "data.json"}
METRIC_KEYS = {
    "test_accuracy", "val_accuracy", "trainable_params_phase1", "trainable_params_phase2", "train_seconds",
    "phase2_start_epoch", "lr_phase1", "lr_phase2", "frozen_layers",
}


def test_two_phase_run_folder_holds_everything(colour_folder, cache_dir, tmp_path):
    run = shoulders.train(colour_folder, out=tmp_path / "run", progress=False, augment=False, **FAST)
    assert RUN_FILES <= {p.name for p in run.path.iterdir()}
    assert not (run.path / ".state").exists()
    metrics = run.metrics
    assert METRIC_KEYS <= set(metrics)
    assert metrics["test_accuracy"] >= 0.8  # three colours: far above chance (0.33)
    assert metrics["lr_phase2"] == pytest.approx(metrics["lr_phase1"] / 100)
    assert metrics["phase2_start_epoch"] == metrics["epochs_phase1"] >= 1
    assert metrics["trainable_params_phase1"] == 1280 * 3 + 3
    assert metrics["trainable_params_phase2"] > metrics["trainable_params_phase1"]
    history = json.loads((run.path / "history.json").read_text())
    phase2 = [entry for entry in history if entry["phase"] == "phase2"]
    assert phase2 and phase2[0]["epoch"] == metrics["phase2_start_epoch"]
    splits = json.loads((run.path / "splits.json").read_text())
    assert not set(splits["test"]) & (set(splits["train"]) | set(splits["val"]))
    assert run.classes == ["blue", "green", "red"]
    probabilities = run.predict([colour_folder / "red" / "red_000.png"])
    assert probabilities.shape == (1, 3) and run.classes[int(probabilities.argmax())] == "red"
    reloaded = shoulders.load_run(run.path)
    assert reloaded.metrics["test_accuracy"] == metrics["test_accuracy"]


@pytest.mark.parametrize("strategy", ["feature-extraction", "full", "scratch"])
def test_other_strategies_train_and_report(colour_folder, cache_dir, tmp_path, strategy):
    options = dict(FAST, epochs_head=3, epochs_finetune=1)
    run = shoulders.train(colour_folder, out=tmp_path / strategy, strategy=strategy, progress=False, **options)
    assert run.metrics["strategy"] == strategy
    assert 0 <= run.metrics["test_accuracy"] <= 1
    if strategy == "feature-extraction":
        assert run.metrics["lr_phase2"] is None and run.metrics["epochs_phase2"] == 0
    else:
        assert run.metrics["trainable_params_phase1"] > 100_000


def test_second_run_reuses_decoded_images_and_features(colour_folder, cache_dir, tmp_path):
    shoulders.train(colour_folder, out=tmp_path / "a", strategy="feature-extraction", augment=False, progress=False, **FAST)
    features = list((cache_dir / "features").glob("*.npy"))
    assert len(features) == 1  # train, val and test in one pass
    stamps = {path: path.stat().st_mtime_ns for path in features}
    from shoulders.image.inputs import load_data

    again = load_data(shoulders.load_run(tmp_path / "a").config, 32, progress=False)
    assert again.decoded_now == 0
    second = shoulders.train(colour_folder, out=tmp_path / "b", strategy="feature-extraction", augment=False, progress=False, **FAST)
    assert {path: path.stat().st_mtime_ns for path in features} == stamps  # read, not rewritten
    # the test score came from cached features + head: the saved model, run on the test images, agrees
    splits = json.loads((second.path / "splits.json").read_text())
    predicted = second.predict([colour_folder / name for name in splits["test"]]).argmax(axis=1)
    truth = [second.classes.index(name.split("/")[0]) for name in splits["test"]]
    assert np.mean(predicted == np.array(truth)) == pytest.approx(second.metrics["test_accuracy"])


def test_cli_train_predict_evaluate_doctor(colour_folder, cache_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-run"
    result = runner.invoke(app, ["train", str(colour_folder), "--out", str(out), "--image-size", "32", "--epochs-head", "40", "--lr", "0.01",
                                 "--epochs-finetune", "1", "--batch-size", "8", "--no-augment", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    result = runner.invoke(app, ["predict", str(out), str(colour_folder / "green" / "green_001.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["top"][0]["label"] == "green"
    result = runner.invoke(app, ["evaluate", str(out), "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output)
    assert evaluated["accuracy"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test_accuracy"])
    result = runner.invoke(app, ["evaluate", str(out), "--data", str(colour_folder), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 36  # the warning that it saw 30 of them is on stderr
    result = runner.invoke(app, ["doctor", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "problem" not in result.output


def test_cli_reports_user_errors_without_traceback(tmp_path, cache_dir):
    runner = CliRunner()
    (tmp_path / "one" / "cats").mkdir(parents=True)
    result = runner.invoke(app, ["train", str(tmp_path / "one")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["train", str(tmp_path), "--lr", "1e-3", "--lr-finetune", "1e-2"])
    assert result.exit_code == 2 and "must be below" in result.output
    result = runner.invoke(app, ["train", "--dataset", "digits", "--image-size", "8"])
    assert result.exit_code == 2 and "at least 32" in result.output


def test_an_existing_run_folder_is_never_overwritten(colour_folder, cache_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="--resume"):
        shoulders.train(colour_folder, out=out, progress=False, **FAST)
    assert (out / "precious.txt").read_text() == "keep me"


@pytest.mark.slow
def test_resume_after_a_kill_continues_from_the_last_epoch(colour_folder, cache_dir, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "shoulders.cli.main", "train", str(colour_folder), "--out", str(out),
               "--image-size", "32", "--batch-size", "4", "--epochs-head", "3", "--epochs-finetune", "12",
               "--patience", "12", "--no-augment", "--quiet"]
    done_before = train_until_killed(command, out, {**os.environ}, timeout=240)
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()
    last_phase2 = max(entry["epoch"] for entry in done_before if entry["phase"] == "phase2")

    result = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    history = json.loads((out / "history.json").read_text())
    epochs = [entry["epoch"] for entry in history]
    assert epochs == list(range(len(epochs)))  # continuous numbering, no epoch twice
    assert len(epochs) == 3 + 12
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["phase2_start_epoch"] == 3 and last_phase2 >= 4


@pytest.mark.slow
def test_ctrl_c_says_what_was_kept_and_how_to_continue(colour_folder, cache_dir, tmp_path):
    import signal
    import time

    out = tmp_path / "stopped"
    command = [sys.executable, "-m", "shoulders.cli.main", "train", str(colour_folder), "--out", str(out),
               "--image-size", "32", "--batch-size", "4", "--epochs-head", "3", "--epochs-finetune", "20",
               "--patience", "20", "--no-augment", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    epochs = out / ".state" / "epochs.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (epochs.exists() and '"phase2"' in epochs.read_text()):
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted:" in stderr and "finished epochs" in stderr
    assert f"--out {out} --resume" in stderr
