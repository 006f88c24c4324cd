"""Train one run: the task's recipe, then its report and lineage, then the finished `Run`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from shoulders.config import RunConfig
from shoulders.reporting.publish import publish_run
from shoulders.runs.reader import Run, load_run
from shoulders.training.finetuner import Display

Recipe = Callable[[RunConfig, bool, Display], Path]


def recipe(task: str) -> Recipe:
    """The task's ``train(config, resume, display) -> run folder``."""
    if task == "text":
        from shoulders.text.recipe import train as train_texts

        return train_texts
    from shoulders.image.recipe import train as train_images

    return train_images


def train(config: RunConfig, *, resume: bool = False, progress: bool = True, console: Console | None = None) -> Run:
    """Run the whole recipe for ``config`` and return the finished `Run` (its folder is complete on return:
    model, metrics, history, splits, reference files, report.html, and a lineage row or a pending marker)."""
    display = Display(console or Console(stderr=True), progress)
    path = recipe(config.task)(config, resume, display)
    publish_run(path, display.console)  # report.html + MLflow lineage; failures are reported, never fatal
    return load_run(path)
