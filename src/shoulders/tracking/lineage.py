"""Lineage in MLflow: each finished run folder becomes one MLflow run (params, per-epoch metrics, test
metrics, tags, and as artifacts the run's small records: `ARTIFACTS`). The folder itself is referenced by
the tag ``shoulders.run_folder``, never copied: the model, reference/ and exports stay where they are.

The run folder is the record; MLflow is an index over it. So logging never blocks or loses a run: a
failure leaves ``tracking_pending.json`` in the folder and ``shoulders runs --sync`` logs it later.

Default store: ``sqlite:///<runs folder>/mlflow.db``, the runs folder being the one that holds the run
folder (``runs/`` by default; for a run inside a compare folder, the compare folder's parent, so one store
indexes everything under ``runs/``), with its artifacts in ``<runs folder>/mlartifacts/``;
``MLFLOW_TRACKING_URI`` or an explicit URI (``--tracking-uri``) points elsewhere. We use `MlflowClient` rather than the fluent API: it runs no context
providers (no git lookup, no notebook detection), which keeps logging to a fraction of a second.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from shoulders.errors import ShouldersError
from shoulders.io import read_json, write_json
from shoulders.runs import layout

EXPERIMENT = "shoulders"
PENDING_FILE = layout.TRACKING_PENDING
TRACKED_FILE = layout.TRACKING
STORE_FILE = "mlflow.db"
MARKERS = (PENDING_FILE, TRACKED_FILE)
# What a run logs as artifacts: its records and page, kilobytes, not its model or reference arrays (megabytes
# each, already in the run folder the run_folder tag names).
ARTIFACTS = (layout.CONFIG, layout.METRICS, layout.HISTORY, layout.DATA, layout.BAD_FILES, layout.REPORT)
MAX_ARTIFACT_BYTES = 5_000_000
PARAM_LIMIT = 6000  # MLflow's longest param value
SQLITE = "sqlite:///"
# An unreachable server must fail in seconds, not after minutes of retries with backoff.
QUICK_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "GIT_PYTHON_REFRESH": "quiet"}


class TrackingError(ShouldersError, RuntimeError):
    """The tracking store could not be written; the run folder is intact and can be synced later."""


class UnfinishedRunError(ShouldersError, FileNotFoundError):
    """Only a finished run folder (one with metrics.json) can be logged."""


def quick_mlflow() -> None:
    """Make MLflow fail fast on an unreachable store (a user's own settings win); call before using it."""
    for key, value in QUICK_ENV.items():
        os.environ.setdefault(key, value)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other store)."""
    return Path(uri.removeprefix(SQLITE)) if uri.startswith(SQLITE) else None


def store_root(run_path: str | os.PathLike) -> Path:
    """Where the default store lives: the run's parent, or the compare folder's parent for a compared run."""
    parent = Path(run_path).resolve().parent
    return parent.parent if (parent / layout.COMPARISON).exists() else parent


def default_tracking_uri(run_path: str | os.PathLike | None = None, root: str | os.PathLike = "runs") -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite file beside the runs."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = store_root(run_path) if run_path is not None else Path(root).resolve()
    return f"{SQLITE}{folder / STORE_FILE}"


def compare_group(run_path: str | os.PathLike) -> str | None:
    """The compare folder's name for a run trained by `shoulders compare`, else None."""
    parent = Path(run_path).resolve().parent
    return parent.name if (parent / layout.COMPARISON).exists() else None


def lineage_params(run_path: str | os.PathLike) -> dict[str, str]:
    """Everything that shaped the run, as MLflow params (strings): backbone, weights, input size, LRs, data, versions.

    Image and text runs share every param but their inputs: image_size, crop_fraction and augmentation
    for images; max_length, the columns and the split files for texts.
    """
    path = Path(run_path)
    config, metrics, data = (read_json(path / name) for name in (layout.CONFIG, layout.METRICS, layout.DATA))
    unfrozen = metrics.get("unfrozen_blocks") or []
    task = config.get("task", "image")
    params: dict[str, Any] = {
        "task": task,
        "base_architecture": config["backbone"],
        "pretrained_weights": pretrained_weights(config, metrics),
        "weights_sha256": metrics.get("weights_sha256") or "none",
        **(_text_params(config) if task == "text" else _image_params(config)),
        "strategy": config["strategy"],
        "frozen_layers_count": metrics.get("frozen_layers"),
        "fine_tune_at": unfrozen[0] if unfrozen else "none (backbone never unfrozen)",
        "unfrozen_blocks": len(unfrozen),
        "fine_tune_start_epoch": metrics.get("phase2_start_epoch"),
        "learning_rate_phase1": metrics.get("lr_phase1"),
        "learning_rate_phase2": metrics.get("lr_phase2"),
        "batch_size": config["batch_size"],
        "epochs_head": config["epochs_head"],
        "epochs_finetune": config["epochs_finetune"],
        "patience": config["patience"],
        "dropout": config["dropout"],
        "seed": config["seed"],
        "dataset_fingerprint": data.get("fingerprint"),
        "dataset_source": config["data"],
        "class_names": json.dumps(list(data["classes"])),
        "num_classes": len(data["classes"]),
        "split_note": data.get("split_note", ""),
    }
    params.update({f"version_{name}": version for name, version in config.get("versions", {}).items()})
    return {key: _text(value) for key, value in params.items()}


def _image_params(config: dict) -> dict[str, Any]:
    return {
        "image_size": config.get("image_size_used"),
        "crop_fraction": config.get("crop_fraction_used"),
        "augmentation": json.dumps(config.get("augmentation")),
    }


def _text_params(config: dict) -> dict[str, Any]:
    """A text run's inputs: the encoder, the token length used and where its rows came from."""
    return {
        "text_encoder": config["backbone"],
        "max_length": config.get("max_length_used") or config.get("max_length"),
        "text_column": config.get("text_column") or "auto",
        "label_column": config.get("label_column") or "auto",
        "test_file": config.get("test_file"),
        "val_file": config.get("val_file"),
        "max_train": config.get("max_train") or "all",
    }


def pretrained_weights(config: dict, metrics: dict, origin: str | None = None) -> str:
    """What the backbone started from, in words. A text encoder's default weights are its own pretrained
    ones (config.json says "imagenet", the shared default), so they are named by ``origin`` (the registry's
    weights_origin, when the caller has it) or by the encoder."""
    weights = config.get("weights")
    if config["strategy"] == "scratch" or weights is None:
        return "none (random init)"
    if config.get("task") == "text" and weights in ("imagenet", "pretrained"):
        return metrics.get("weights_origin") or origin or f"{config['backbone']}'s pretrained weights"
    return str(weights)


def _text(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= PARAM_LIMIT else text[: PARAM_LIMIT - 20] + "... (truncated)"


def _metric_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def log_run(run_path: str | os.PathLike, tracking_uri: str | None = None, experiment: str = EXPERIMENT) -> dict:
    """Log one finished run folder; returns ``{"run_id", "tracking_uri", "seconds"}`` (also saved as tracking.json).

    Raises `TrackingError` (with what to do) when the store cannot be reached or written.
    """
    quick_mlflow()
    path = Path(run_path)
    if not (path / layout.METRICS).exists():
        raise UnfinishedRunError(f"{path} is not a finished run (no {layout.METRICS}): only finished runs are logged.")
    uri = tracking_uri or default_tracking_uri(path)
    started = time.perf_counter()
    try:
        run_id = _log(path, uri, experiment)
    except Exception as error:
        raise TrackingError(f"could not log {path} to {uri}: {type(error).__name__}: {error}") from error
    record = {"run_id": run_id, "tracking_uri": uri, "experiment": experiment, "seconds": round(time.perf_counter() - started, 3)}
    write_json(path / TRACKED_FILE, record)
    (path / PENDING_FILE).unlink(missing_ok=True)
    return record


def _log(path: Path, uri: str, experiment: str) -> str:
    """One MLflow run for the folder: tags, params, per-epoch and final metrics, its records as artifacts."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    database = sqlite_file(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    metrics = read_json(path / layout.METRICS)
    experiment_id = _experiment_id(client, database, experiment)
    run_id = client.create_run(experiment_id, tags=_tags(path, metrics), run_name=path.name).info.run_id
    params = [Param(key, value) for key, value in lineage_params(path).items()]
    logged = _metrics(read_json(path / layout.HISTORY), metrics)
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    for start in range(0, len(logged), 1000):
        client.log_batch(run_id, metrics=logged[start : start + 1000])
    for name in ARTIFACTS:
        item = path / name
        if item.is_file() and item.stat().st_size <= MAX_ARTIFACT_BYTES:
            client.log_artifact(run_id, str(item))
    client.set_terminated(run_id)
    return run_id


def _experiment_id(client, database: Path | None, experiment: str) -> str:
    """The experiment's id, created on first use; a SQLite store (``database``) keeps its artifacts beside
    the database, not in whatever folder we happen to run from."""
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    artifacts = (database.parent / "mlartifacts").resolve().as_uri() if database is not None else None
    return client.create_experiment(experiment, artifact_location=artifacts)


def _tags(path: Path, metrics: dict) -> dict[str, str]:
    tags = {
        "shoulders.task": metrics.get("task", "image"),
        "shoulders.strategy": metrics["strategy"],
        "shoulders.backbone": metrics["backbone"],
        "shoulders.run_folder": str(path.resolve()),
        "shoulders.data_fingerprint": metrics.get("data_fingerprint", ""),
    }
    group = compare_group(path)
    if group:
        tags["shoulders.compare_group"] = group
    return tags


def _metrics(history: list[dict], metrics: dict) -> list:
    """Every numeric value of every epoch (step = epoch, both phases), then the final figures at step 0."""
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    logged = [
        Metric(_metric_name(key), float(value), stamp, int(entry["epoch"]))
        for entry in history
        for key, value in entry.items()
        if key not in ("phase", "epoch") and isinstance(value, (int, float))
    ]
    return logged + [Metric(_metric_name(key), float(value), stamp, 0) for key, value in _final_metrics(metrics).items()]


def _final_metrics(metrics: dict) -> dict[str, float]:
    test = metrics["test"]
    values = {
        "test_accuracy": metrics["test_accuracy"],
        "test_macro_f1": metrics["test_macro_f1"],
        "val_accuracy": metrics["val_accuracy"],
        "test_expected_calibration_error": test.get("expected_calibration_error"),
        "train_seconds": metrics.get("train_seconds"),
        "trainable_params_phase1": metrics.get("trainable_params_phase1"),
        "trainable_params_phase2": metrics.get("trainable_params_phase2"),
        "total_params": metrics.get("total_params"),
    }
    for name, row in test.get("per_class", {}).items():
        values[f"test_f1_{name}"] = row["f1"]
    return {key: value for key, value in values.items() if isinstance(value, (int, float)) and value == value}


def log_run_or_mark_pending(run_path: str | os.PathLike, tracking_uri: str | None = None) -> tuple[dict | None, str]:
    """Log the run; on failure write tracking_pending.json. Returns (record or None, a line for the user)."""
    path = Path(run_path)
    uri = tracking_uri or default_tracking_uri(path)
    try:
        record = log_run(path, uri)
    except TrackingError as error:
        root = store_root(path)
        write_json(path / PENDING_FILE, {"tracking_uri": uri, "error": str(error), "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return None, (
            f"lineage not logged ({error}). The run folder is complete; log it later with "
            f"`shoulders runs --sync --root {root}` (add --tracking-uri URI to choose the store)."
        )
    return record, f"lineage logged to {uri} (MLflow run {record['run_id']}, {record['seconds']:.2f} s)"


def pending_runs(root: str | os.PathLike) -> list[Path]:
    return sorted(marker.parent for marker in Path(root).rglob(PENDING_FILE))


def sync_pending(root: str | os.PathLike, tracking_uri: str | None = None) -> list[tuple[Path, dict | None, str]]:
    """Log every run under ``root`` that holds tracking_pending.json (to ``tracking_uri``, else the URI it failed on)."""
    results = []
    for path in pending_runs(root):
        uri = tracking_uri or read_json(path / PENDING_FILE).get("tracking_uri")
        results.append((path, *log_run_or_mark_pending(path, uri)))
    return results
