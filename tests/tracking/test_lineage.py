"""Lineage in MLflow: every listed param is findable through the mlflow API, `shoulders runs` lists the run,
and an unreachable store leaves a complete run folder plus a way to sync it later."""

import json

import numpy as np
import pytest
from PIL import Image
import typer
from typer.testing import CliRunner

import shoulders
from shoulders.cli import runs_commands
from shoulders.tracking import PENDING_FILE, TRACKED_FILE, sync_pending

REQUIRED_PARAMS = {
    "base_architecture", "pretrained_weights", "weights_sha256", "image_size", "frozen_layers_count", "fine_tune_at",
    "fine_tune_start_epoch", "learning_rate_phase1", "learning_rate_phase2", "batch_size", "seed", "dataset_fingerprint",
    "class_names", "version_keras", "version_numpy",
}
RUN_FILES = {"config.json", "model.keras", "history.json", "metrics.json", "splits.json", "bad_files.json", "data.json", "report.html"}
TINY = dict(image_size=32, batch_size=8, epochs_head=3, epochs_finetune=1, patience=5, lr=1e-2, augment=False)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One run logged to a reachable SQLite store, and one whose store is unreachable."""
    root = tmp_path_factory.mktemp("tracking")
    store = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOULDERS_CACHE", str(root / "cache"))
        patch.setenv("MLFLOW_TRACKING_URI", store)
        photos = colour_photos(root / "photos")
        good = shoulders.train(photos, out=root / "runs" / "good", progress=False, **TINY)
        patch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
        offline = shoulders.train(photos, out=root / "runs" / "offline", progress=False, **TINY)
    return root, store, good, offline


def colour_photos(root, per_class=10):
    rng = np.random.default_rng(0)
    for name, colour in {"red": (200, 30, 30), "blue": (30, 40, 200)}.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def app():
    cli = typer.Typer()
    cli.callback()(lambda: None)
    runs_commands.register(cli)
    return cli


def test_mlflow_finds_the_run_with_its_lineage(tracked):
    from mlflow import MlflowClient

    _, store, good, _ = tracked
    record = json.loads((good.path / TRACKED_FILE).read_text())
    run = MlflowClient(tracking_uri=store).get_run(record["run_id"])
    assert REQUIRED_PARAMS <= set(run.data.params)
    assert run.data.params["base_architecture"] == "efficientnet_lite0"
    assert run.data.params["dataset_fingerprint"] == good.metrics["data_fingerprint"]
    assert json.loads(run.data.params["class_names"]) == good.classes
    assert run.data.params["fine_tune_start_epoch"] == str(good.metrics["phase2_start_epoch"])
    assert run.data.metrics["test_accuracy"] == pytest.approx(good.metrics["test_accuracy"])
    assert run.data.tags["shoulders.strategy"] == "two-phase"
    history = MlflowClient(tracking_uri=store).get_metric_history(record["run_id"], "loss")
    assert [m.step for m in history] == [entry["epoch"] for entry in good.history]  # step = epoch, both phases
    artifacts = {item.path for item in MlflowClient(tracking_uri=store).list_artifacts(record["run_id"])}
    assert {"metrics.json", "config.json", "report.html"} <= artifacts and "model.keras" not in artifacts
    assert record["seconds"] < 30


def test_unreachable_store_keeps_the_run_and_sync_logs_it_later(tracked):
    root, store, _, offline = tracked
    assert RUN_FILES <= {p.name for p in offline.path.iterdir()}
    pending = json.loads((offline.path / PENDING_FILE).read_text())
    assert pending["tracking_uri"] == "http://127.0.0.1:9"
    [(path, record, line)] = sync_pending(root / "runs", tracking_uri=store)
    assert path == offline.path and record is not None, line
    assert not (offline.path / PENDING_FILE).exists()


def test_runs_lists_and_shows(tracked):
    root, store, good, _ = tracked
    listed = CliRunner().invoke(app(), ["runs", "--tracking-uri", store])
    assert listed.exit_code == 0, listed.output
    run_id = json.loads((good.path / TRACKED_FILE).read_text())["run_id"]
    assert run_id in listed.output and "two-phase" in listed.output
    shown = CliRunner().invoke(app(), ["runs", "show", run_id, "--tracking-uri", store, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["params"]["seed"] == "0"
    missing = CliRunner().invoke(app(), ["runs", "show", "nope", "--tracking-uri", store])
    assert missing.exit_code == 2 and "shoulders runs" in missing.output


def test_tracking_loads_neither_keras_nor_mlflow():
    """`shoulders runs` must not wait for TensorFlow; MLflow loads only when a store is used."""
    import subprocess
    import sys

    code = "import sys, shoulders.tracking, shoulders.cli.runs_commands; print(sorted({'keras', 'tensorflow', 'mlflow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_unfinished_run_is_refused_with_a_user_error(tmp_path):
    from shoulders.errors import ShouldersError
    from shoulders.tracking import TrackingError, UnfinishedRunError, log_run

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UnfinishedRunError, match="not a finished run") as raised:
        log_run(tmp_path, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert isinstance(raised.value, ShouldersError) and isinstance(raised.value, FileNotFoundError)
    assert issubclass(TrackingError, ShouldersError) and issubclass(TrackingError, RuntimeError)
