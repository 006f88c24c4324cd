"""shoulders: transfer learning that cannot be done wrong.

The promised surface is small::

    import shoulders
    run = shoulders.train("photos/", backbone="efficientnet_lite0")   # -> Run
    run.metrics["test_accuracy"], run.predict(["new.jpg"])
    run = shoulders.load_run("runs/20261123-120000-efficientnet_lite0")
    shoulders.backbones.names()

Everything else is importable but not promised.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# TensorFlow's C++ start-up chatter would bury our output; a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shoulders import backend  # noqa: E402  (before anything imports Keras: the accelerator's backend)

backend.choose()

if TYPE_CHECKING:
    from shoulders import backbones
    from shoulders.runs.reader import Run

__version__ = "0.1.0"
__all__ = ["backbones", "compare", "load_run", "train"]


def train(
    data: str | os.PathLike, *, backbone: str | None = None, out: str | os.PathLike | None = None, resume: bool = False,
    progress: bool = True, tracking_uri: str | None = None, **options: Any,
) -> Run:
    """Fine-tune ``backbone`` on ``data`` by the two-phase recipe; see `RunConfig` for options.

    ``data``: a folder of images (or "digits"); with ``task="text"``, a CSV/TSV file or a folder of
    ``.txt`` files. ``backbone`` defaults to efficientnet_lite0 for images, minilm_l6 for text.
    ``augment=False`` turns augmentation off; ``augmentation`` takes an `Augmentation` or a dict.
    ``tracking_uri``: the MLflow store of the run's lineage (default: $MLFLOW_TRACKING_URI, else
    ``sqlite:///<folder holding the run folder>/mlflow.db``).

    Returns the finished `Run`; its folder holds the model, metrics, history and splits.
    """
    from shoulders.api.train import train as train_run
    from shoulders.config import RunConfig

    config = RunConfig.from_options(str(data), backbone=backbone, out=str(out) if out else None, **options)
    return train_run(config, resume=resume, progress=progress, tracking_uri=tracking_uri)


def compare(data: str | os.PathLike, *, progress: bool = True, **options: Any) -> dict:
    """Feature extraction vs two-phase vs from scratch on the same splits; see `shoulders.api.compare`
    (``tracking_uri`` included)."""
    from shoulders.api.compare import compare as compare_strategies
    from shoulders.training.finetuner import Display

    return compare_strategies(data, display=Display(enabled=progress), **options)


def load_run(path: str | os.PathLike) -> Run:
    """Open a finished run folder: ``.model``, ``.classes``, ``.metrics``, ``.predict(images)``."""
    from shoulders.runs.reader import load_run as load_run_folder

    return load_run_folder(path)


def __getattr__(name: str) -> Any:
    if name == "backbones":  # imported on first use: `shoulders --help` need not load TensorFlow
        import importlib

        return importlib.import_module("shoulders.backbones")
    raise AttributeError(f"module 'shoulders' has no attribute {name!r}")
