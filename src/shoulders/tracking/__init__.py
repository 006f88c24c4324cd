"""Lineage in MLflow: every run folder indexed in a tracking store (SQLite beside the runs by default)."""

from shoulders.tracking.lineage import (
    PENDING_FILE,
    TRACKED_FILE,
    TrackingError,
    UnfinishedRunError,
    default_tracking_uri,
    lineage_params,
    log_run,
    log_run_or_mark_pending,
    pending_runs,
    sync_pending,
)
from shoulders.tracking.store import UnknownRunIdError, get_run, list_runs

__all__ = [
    "PENDING_FILE",
    "TRACKED_FILE",
    "TrackingError",
    "UnfinishedRunError",
    "UnknownRunIdError",
    "default_tracking_uri",
    "get_run",
    "lineage_params",
    "list_runs",
    "log_run",
    "log_run_or_mark_pending",
    "pending_runs",
    "sync_pending",
]
