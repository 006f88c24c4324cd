"""Reading the lineage back: the runs an MLflow store knows, newest first, and one run in full."""

from __future__ import annotations

from typing import Any

from shoulders.errors import ShouldersError
from shoulders.tracking.lineage import EXPERIMENT, quick_mlflow


class UnknownRunIdError(ShouldersError, LookupError):
    """No run with that id in the tracking store; `shoulders runs` lists the ids it has."""


def _client(tracking_uri: str):
    quick_mlflow()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def list_runs(tracking_uri: str, experiment: str = EXPERIMENT, max_results: int = 200) -> list[dict[str, Any]]:
    """One row per logged run: id, date, task, backbone, strategy, test accuracy, data fingerprint, compare group."""
    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], max_results=max_results, order_by=["attributes.start_time DESC"])
    return [_row(run) for run in runs]


def _row(run) -> dict[str, Any]:
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    return {
        "id": run.info.run_id,
        "name": run.info.run_name,
        "start_time": run.info.start_time,
        "task": params.get("task", tags.get("shoulders.task", "image")),
        "backbone": params.get("base_architecture", ""),
        "strategy": params.get("strategy", tags.get("shoulders.strategy", "")),
        "test_accuracy": metrics.get("test_accuracy"),
        "dataset_fingerprint": params.get("dataset_fingerprint", ""),
        "compare_group": tags.get("shoulders.compare_group", ""),
        "run_folder": tags.get("shoulders.run_folder", ""),
    }


def get_run(tracking_uri: str, run_id: str) -> dict[str, Any]:
    """Params, final metrics and tags of one run; a clear error for an unknown id."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise UnknownRunIdError(f"no run {run_id!r} in {tracking_uri}: list the ids with `shoulders runs`.") from error
    return {
        **_row(run),
        "status": run.info.status,
        "artifact_uri": run.info.artifact_uri,
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "tags": {k: v for k, v in sorted(run.data.tags.items()) if not k.startswith("mlflow.")},
    }
