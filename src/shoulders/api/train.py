"""Train one run: where it computes, the task's recipe, then its report and lineage, then the finished `Run`."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from shoulders.config import RunConfig
from shoulders.reporting.publish import publish_run
from shoulders.runs.reader import Run, load_run
from shoulders.runs.writer import RunFolder
from shoulders.training import compute as compute_lib
from shoulders.training.compute import Cluster, Compute, ComputeError
from shoulders.training.finetuner import Display

Recipe = Callable[[RunConfig, bool, Display, Compute], Path]


def recipe(task: str) -> Recipe:
    """The task's ``train(config, resume, display, compute) -> run folder``."""
    if task == "text":
        from shoulders.text.recipe import train as train_texts

        return train_texts
    from shoulders.image.recipe import train as train_images

    return train_images


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
    cluster: Cluster | None = None,
    tracking_uri: str | None = None,
) -> Run | None:
    """Run the whole recipe for ``config`` and return the finished `Run` (its folder is complete on return:
    model, metrics, history, splits, reference files, report.html, and a lineage row or a pending marker).

    ``cluster`` (or JAX's JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) makes this process
    one of a job's: only process 0 writes the run folder and returns its `Run`; the others train alongside,
    check that their weights equal process 0's, and return None. ``tracking_uri``: the MLflow store of the
    lineage row (default: $MLFLOW_TRACKING_URI, else the SQLite file in the folder holding the run folder).
    """
    display = Display(console or Console(stderr=True), progress)
    cluster = (cluster or Cluster()).or_env()
    if resume:
        if cluster.multi:
            raise ComputeError("--resume continues a run of one process: a job of several processes starts again")
        config = RunFolder.open(config, resume=True)[1]  # the saved options, hardware included
    compute = compute_lib.start(config.precision, config.devices, cluster, config.task, config.cache_dir)
    config = dataclasses.replace(config, precision=compute.precision, devices=compute.devices)
    display.console.print(compute.describe())
    if not compute.writer:
        return _train_alongside(config, display, compute)
    path = recipe(config.task)(config, resume, display, compute)
    publish_run(path, display.console, tracking_uri)  # report.html + MLflow lineage; failures are reported, never fatal
    return load_run(path)


def _train_alongside(config: RunConfig, display: Display, compute: Compute) -> None:
    """A process other than 0: the same training, into a scratch folder that is removed after."""
    with tempfile.TemporaryDirectory(prefix=f"shoulders-process{compute.process_id}-") as scratch:
        quiet = Display(display.console, enabled=False)
        recipe(config.task)(dataclasses.replace(config, out=str(Path(scratch) / "run")), False, quiet, compute)
    display.console.print(f"process {compute.process_id}: trained alongside process 0, same weights; process 0 wrote the run folder")
    return None
