"""The run folder: what came out of a run, as plain files; and `Run`, the object that reads it.

Layout (like a preset folder, readable without this package):
    config.json     everything needed to reproduce the run, package versions included
    model.keras     the trained model (loads with safe_mode=True), raw pixels in, logits out
    history.json    one entry per epoch, both phases, with the phase name
    metrics.json    test metrics (the headline), val accuracy, params, LRs, timings
    splits.json     which file went to train / val / test
    bad_files.json  files skipped, with the reason
    data.json       class counts, duplicates found, how the split was made
    .state/         resume state while the run is in progress (removed when it finishes)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np

from shoulders.config import RunConfig
from shoulders.io import read_json, save_model, write_json

VERSIONED_PACKAGES = ("shoulders", "keras", "tensorflow-cpu", "tensorflow", "numpy", "pillow", "scikit-learn")


class RunNotFoundError(FileNotFoundError):
    pass


def new_run_path(backbone: str, root: str | os.PathLike = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{stamp}-{backbone}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{stamp}-{backbone}-{suffix}"
    return path


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class RunFolder:
    """Writes a run folder; every file is written atomically."""

    path: Path

    @classmethod
    def create(cls, path: Path) -> RunFolder:
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(
                f"{path} already holds files: choose another --out, or pass --resume to continue an interrupted run there."
            )
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def state_path(self) -> Path:
        state = self.path / ".state"
        state.mkdir(exist_ok=True)
        return state

    def write_config(self, config: RunConfig, extra: dict[str, Any]) -> None:
        write_json(self.path / "config.json", {**config.to_dict(), **extra, "versions": package_versions()})

    def read_config(self) -> dict:
        return read_json(self.path / "config.json")

    def write_data(self, data) -> None:
        write_json(self.path / "splits.json", data.split_files())
        write_json(self.path / "bad_files.json", [{"path": bad.path, "reason": bad.reason} for bad in data.bad_files])
        write_json(
            self.path / "data.json",
            {
                **data.summary(),
                "classes": list(data.classes),
                "fingerprint": data.fingerprint,
                "duplicates": [
                    {"kind": dup.kind, "kept": dup.kept, "dropped": list(dup.dropped)} for dup in data.duplicates
                ],
            },
        )

    def state(self) -> dict:
        file = self.state_path / "progress.json"
        return read_json(file) if file.exists() else {}

    def update_state(self, **values: Any) -> None:
        write_json(self.state_path / "progress.json", {**self.state(), **values})

    def epoch_logger(self, phase: str) -> keras.callbacks.Callback:
        return _EpochLog(self.state_path / "epochs.jsonl", phase)

    def _epochs(self) -> list[dict]:
        file = self.state_path / "epochs.jsonl"
        if not file.exists():
            return []
        entries: dict[tuple[str, int], dict] = {}
        for line in file.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                entries[(entry["phase"], entry["epoch"])] = entry  # a re-run epoch (after resume) replaces the old
        return sorted(entries.values(), key=lambda entry: entry["epoch"])

    def phase_history(self, phase: str) -> list[dict]:
        return [entry for entry in self._epochs() if entry["phase"] == phase]

    def last_epoch(self, phase: str, default: int) -> int:
        """Epoch count at the end of ``phase`` (Keras numbering continues across phases)."""
        return max((entry["epoch"] + 1 for entry in self.phase_history(phase)), default=default)

    def finish(self, model: keras.Model, history: list[dict], metrics: dict) -> None:
        """Write the final files (model first, metrics last: metrics.json marks a finished run)."""
        save_model(model, self.path / "model.keras")
        write_json(self.path / "history.json", history)
        write_json(self.path / "metrics.json", metrics)
        shutil.rmtree(self.path / ".state", ignore_errors=True)


class _EpochLog(keras.callbacks.Callback):
    """Appends one JSON line per finished epoch, so history survives a killed process."""

    def __init__(self, file: Path, phase: str) -> None:
        super().__init__()
        self.file, self.phase = file, phase

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        entry = {"phase": self.phase, "epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        with open(self.file, "a") as handle:
            handle.write(json.dumps(entry) + "\n")  # closed at once: survives a killed process


@dataclass
class Run:
    """A finished run: its folder, config, classes and metrics; the model loads on first use."""

    path: Path
    config: RunConfig
    classes: list[str]
    metrics: dict
    history: list[dict]
    image_size: int | None  # image runs
    crop_fraction: float | None
    max_length: int | None = None  # text runs: tokens per text
    _model: keras.Model | None = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Run:
        path = Path(path)
        if not (path / "metrics.json").exists() or not (path / "model.keras").exists():
            hint = " It looks interrupted: continue it with --resume --out." if (path / "config.json").exists() else ""
            raise RunNotFoundError(f"{path} is not a finished shoulders run (no model.keras/metrics.json).{hint}")
        config_values = read_json(path / "config.json")
        data = read_json(path / "data.json")
        return cls(
            path=path,
            config=RunConfig.from_dict(config_values),
            classes=list(data["classes"]),
            metrics=read_json(path / "metrics.json"),
            history=read_json(path / "history.json"),
            image_size=_optional(config_values.get("image_size_used"), int),
            crop_fraction=_optional(config_values.get("crop_fraction_used"), float),
            max_length=_optional(config_values.get("max_length_used"), int),
        )

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def model(self) -> keras.Model:
        if self._model is None:
            import shoulders.backbones  # noqa: F401  (registers the custom layers)

            if self.task == "text":
                from shoulders.text import layers  # noqa: F401  (registers MaskedMeanPooling)
                from shoulders.text.encoders import keras_hub

                keras_hub()  # registers keras-hub's layers (or says how to install them)

            # compile=False: inference needs no optimizer (and skips restoring its state)
            self._model = keras.saving.load_model(self.path / "model.keras", safe_mode=True, compile=False)
        return self._model

    def load_images(self, images: Sequence[Any]) -> np.ndarray:
        """Decode paths/bytes/arrays exactly as training did (orientation, RGB, crop, size)."""
        from shoulders.data import load_image

        if isinstance(images, np.ndarray) and images.ndim == 4:
            return images
        return np.stack([load_image(image, self.image_size, self.crop_fraction) for image in images])

    @property
    def tokenizer(self):
        """Text runs: the tokenizer saved with the model (same vocabulary, same length)."""
        if self._tokenizer is None:
            from shoulders.text.tokenizer import TextTokenizer

            self._tokenizer = TextTokenizer.from_file(self.path / "tokenizer.json", self.max_length or 512)
        return self._tokenizer

    def predict(self, inputs: Sequence[Any] | np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Class probabilities (N, classes): for image runs of image paths, encoded bytes or arrays of
        raw pixels; for text runs of strings."""
        if self.task == "text":
            return self._predict_texts(inputs, batch_size)
        from shoulders.training.recipe import predict_probabilities

        return predict_probabilities(self.model, self.load_images(inputs), batch_size)

    def _predict_texts(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        from shoulders.evaluation.metrics import softmax
        from shoulders.text.batches import predict_ids

        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text in a list: run.predict([text])")
        bad = [index for index, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
        if bad:
            raise ValueError(f"texts must be non-empty strings; these are not: positions {bad[:10]}")
        return softmax(predict_ids(self.model, self.tokenizer.token_ids(list(texts)), self.tokenizer, batch_size))

    def classify(self, images: Sequence[Any], top_k: int = 3) -> list[list[dict]]:
        """Top-k {"label", "probability"} per image (or text)."""
        probabilities = self.predict(images)
        return [
            [{"label": self.classes[i], "probability": float(row[i])} for i in np.argsort(-row)[:top_k]]
            for row in probabilities
        ]


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def load_run(path: str | os.PathLike) -> Run:
    """Open a finished run folder."""
    return Run.load(path)
