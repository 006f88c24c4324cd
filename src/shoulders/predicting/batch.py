"""`shoulders predict RUN INPUT... --out FILE`: every input scored and written as it comes, on this process
(``local``), a Ray cluster (``ray``) or Spark (``spark``); one row per input, failures included."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shoulders.engines import require
from shoulders.engines.ray_data import RayPool
from shoulders.engines.spark_udf import SparkJob
from shoulders.predicting.inputs import Inputs, for_run
from shoulders.predicting.output import chunks, open_sink
from shoulders.predicting.scoring import Scorer
from shoulders.runs.reader import Run, load_run


@dataclass(frozen=True)
class Cluster:
    """Where ``ray`` and ``spark`` run: a Ray address (None: RAY_ADDRESS, else a local cluster), a Spark
    master, and how many workers (None: the engine's own default)."""

    ray_address: str | None = None
    spark_master: str = "local[*]"
    workers: int | None = None


@dataclass(frozen=True)
class BatchJob:
    run_path: Path
    inputs: Inputs
    out: Path
    engine: str = "local"
    top_k: int = 3
    batch_size: int = 32
    resume: bool = False
    cluster: Cluster = field(default_factory=Cluster)


@dataclass(frozen=True)
class BatchSummary:
    out: Path
    written: int  # rows this job wrote
    failed: int  # of which with an error
    skipped: int  # inputs already in --out (--resume)
    seconds: float


def predict_to_file(job: BatchJob, progress: bool = True) -> BatchSummary:
    """Score ``job.inputs`` with the run in ``job.run_path`` into ``job.out``; never raises for a bad input."""
    require(job.engine)
    run = load_run(job.run_path)
    inputs = for_run(job.inputs, run.task)
    sink = open_sink(job.out, inputs.key, job.resume)
    todo = sum(1 for key in inputs if key not in sink.done)
    keys = (key for key in inputs if key not in sink.done)
    started, written, failed = time.perf_counter(), 0, 0
    try:
        with _bar(progress) as bar:
            task = bar.add_task("Predicting", total=todo, rate="")
            for rows in _rows(job, run, keys):
                sink.write(rows)
                written += len(rows)
                failed += sum(1 for row in rows if row["error"])
                bar.update(task, advance=len(rows), rate=f"{written / (time.perf_counter() - started):.1f}/s")
    except BaseException:
        sink.abort()  # what was written stays for --resume
        raise
    sink.close()
    return BatchSummary(job.out, written, failed, len(sink.done), time.perf_counter() - started)


def _rows(job: BatchJob, run: Run, keys: Iterator[str]) -> Iterator[list[dict]]:
    if job.engine == "local":
        scorer = Scorer(run, min(job.top_k, len(run.classes)))
        for chunk in chunks(keys, job.batch_size):
            yield scorer(chunk)
        return
    items = list(enumerate(keys))  # keys only (paths or texts): the cluster engines ship them from the driver
    if not items:
        return
    factory = _ScorerFactory(str(run.path.resolve()), min(job.top_k, len(run.classes)))
    if job.engine == "ray":
        yield from _ray_rows(items, factory, RayPool(job.cluster.ray_address, job.cluster.workers, job.batch_size))
    else:
        from shoulders.engines import spark_udf

        rows = spark_udf.score(items, factory, SparkJob(job.cluster.spark_master, job.cluster.workers, job.batch_size))
        yield from chunks(rows, job.batch_size)


@dataclass(frozen=True)
class _ScorerFactory:
    """Pickled to the workers: each opens the run folder itself (which workers must be able to read)."""

    run_path: str
    top_k: int

    def __call__(self) -> Scorer:
        return Scorer.open(self.run_path, self.top_k)


def _ray_rows(items: list[tuple[int, str]], factory: _ScorerFactory, pool: RayPool) -> Iterator[list[dict]]:
    from shoulders.engines import ray_data

    ray_data.connect(pool.address)
    dataset = ray_data.from_items([{"key": key} for _, key in items], pool)
    for frame in ray_data.map_batches(dataset, _RayBatch(factory), pool):
        yield [_plain(row) for row in frame.to_dict("records")]


def _plain(row: dict) -> dict:
    """A row as the Scorer made it, from pandas' types (numpy lists, NaN for a missing probability)."""
    probability = row["probability"]
    return {
        **row, "label": row["label"] if isinstance(row["label"], str) else None,
        "probability": None if probability is None or probability != probability else float(probability),
        "top_k_labels": [str(label) for label in row["top_k_labels"]],
        "top_k_probabilities": [float(p) for p in row["top_k_probabilities"]],
    }


@dataclass(frozen=True)
class _RayBatch:
    """A Ray actor's work: a pandas batch of keys to a pandas batch of rows."""

    factory: _ScorerFactory

    def __call__(self):
        import pandas as pd

        scorer = self.factory()
        return lambda batch: pd.DataFrame(scorer(list(batch["key"])))


def _bar(enabled: bool) -> Progress:
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    return Progress(*columns, console=console, disable=not (enabled and console.is_terminal), transient=True)
