"""Callbacks: rich progress per epoch, and early stopping whose state survives a killed process."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shoulders.io import save_weights, write_json


class RichProgress(keras.callbacks.Callback):
    """One progress bar per epoch (batches), then a one-line summary of the epoch's metrics."""

    def __init__(self, phase: str, total_epochs: int, console: Console | None = None, enabled: bool = True) -> None:
        super().__init__()
        self.phase = phase
        self.total_epochs = total_epochs
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task = None

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if not (self.enabled and self.console.is_terminal):  # a log file gets the epoch lines only
            return
        self._progress = Progress(
            TextColumn(f"{self.phase} epoch {epoch + 1}/{self.total_epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("", total=self.params.get("steps"), loss="-")

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self._progress is not None:  # ``batch`` counts steps: several per call with steps_per_execution
            self._progress.update(self._task, completed=batch + 1, loss=f"{(logs or {}).get('loss', math.nan):.4f}")

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.enabled:
            shown = "  ".join(f"{key} {value:.4f}" for key, value in (logs or {}).items() if key != "learning_rate")
            self.console.print(f"{self.phase} epoch {epoch + 1}/{self.total_epochs}  {shown}")

    def on_train_end(self, logs=None) -> None:
        if self._progress is not None:
            self._progress.stop()


class DivergenceStop(keras.callbacks.Callback):
    """Stops ``fit`` at the first batch whose loss is not finite or has exploded (``EXPLOSION`` times the
    phase's first loss): Keras' TerminateOnNaN, which also notes where (``diverged``), so the phase can put
    its best weights back and say why it stopped."""

    EXPLOSION = 100.0

    def __init__(self, phase: str) -> None:
        super().__init__()
        self.phase = phase
        self.epoch = 0
        self.first: float | None = None
        self.diverged: dict | None = None

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or self.diverged is not None:
            return
        loss = float(loss)
        if self.first is None and math.isfinite(loss):
            self.first = max(loss, 1.0)  # a loss near 0 at the start must not make every later one "explode"
        if not math.isfinite(loss) or (self.first is not None and loss > self.EXPLOSION * self.first):
            self.diverged = {"phase": self.phase, "epoch": self.epoch + 1, "batch": batch + 1, "loss": loss}
            self.model.stop_training = True


class ResumableEarlyStopping(keras.callbacks.Callback):
    """Early stopping on ``val_loss`` with the best weights restored, its state kept on disk.

    Keras's EarlyStopping forgets its best weights and patience when the process dies; this one
    writes them after every epoch (atomically) so ``--resume`` continues the same decision.
    """

    def __init__(self, state_dir: Path, patience: int, monitor: str = "val_loss") -> None:
        super().__init__()
        self.state_dir = Path(state_dir)
        self.patience = patience
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch: int | None = None

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "early_stopping.json"

    @property
    def _weights_file(self) -> Path:
        return self.state_dir / "best.weights.h5"

    def on_train_begin(self, logs=None) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._state_file.exists():
            state = json.loads(self._state_file.read_text())
            self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"early stopping monitors {self.monitor}, which fit did not report: is validation data given?")
        if value < self.best:
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            save_weights(self.model, self._weights_file)
        else:
            self.wait += 1
        write_json(self._state_file, {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait})
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def restore_best(self) -> bool:
        """Put the best epoch's weights back; False when no epoch has finished with a finite val loss."""
        if self._weights_file.exists():
            self.model.load_weights(self._weights_file)
            return True
        return False



def validation_logs(probabilities: np.ndarray, labels: np.ndarray, logs: dict | None) -> None:
    """``val_loss`` (mean cross-entropy) and ``val_accuracy`` into ``logs``."""
    rows = np.arange(len(labels))
    if logs is not None:
        logs["val_loss"] = float(-np.log(np.maximum(probabilities[rows, labels], 1e-12)).mean())
        logs["val_accuracy"] = float((probabilities.argmax(axis=1) == labels).mean())


class ModelValidation(keras.callbacks.Callback):
    """``val_loss`` / ``val_accuracy`` from ``probabilities()`` of the validation rows (a distributed run's
    padded, gathered predictions: the same numbers on every process, so they all stop together)."""

    def __init__(self, probabilities, labels: np.ndarray) -> None:
        super().__init__()
        self.probabilities = probabilities
        self.labels = np.asarray(labels)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        validation_logs(np.asarray(self.probabilities(), dtype=np.float64), self.labels, logs)


class FeatureValidation(keras.callbacks.Callback):
    """``val_loss`` / ``val_accuracy`` of a head on cached features, computed with numpy.

    The head is dropout + dense, so at inference it is ``features @ kernel + bias``: the same numbers
    Keras's evaluate would give, without its per-epoch set-up that costs more than the epoch itself.
    Put it before the callbacks that read ``val_loss``.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, layer: str = "logits") -> None:
        super().__init__()
        self.features = np.asarray(features, dtype=np.float64)
        self.labels = np.asarray(labels)
        self.layer = layer

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        kernel, bias = self.model.get_layer(self.layer).get_weights()
        logits = self.features @ kernel + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        rows = np.arange(len(self.labels))
        if logs is not None:
            logs["val_loss"] = float(-log_probabilities[rows, self.labels].mean())
            logs["val_accuracy"] = float((logits.argmax(axis=1) == self.labels).mean())
