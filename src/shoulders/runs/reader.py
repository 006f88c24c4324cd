"""Reads a finished run folder: `Run` (config, classes, metrics, the model on first use, prediction) and
`load_run`. Everything after training reads runs through this module, never the dataset.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from shoulders.config import RunConfig
from shoulders.errors import ShouldersError
from shoulders.io import read_json
from shoulders.runs import layout


class RunNotFoundError(ShouldersError, FileNotFoundError):
    """The folder is not a finished run (or not a comparison)."""


class RunFileError(ShouldersError, ValueError):
    """A file of a finished run folder is missing or damaged; the message names it and what to do."""


class ReferenceMissingError(ShouldersError, FileNotFoundError):
    """The run folder predates a file that later steps read (``reference/...``)."""


class PredictInputError(ShouldersError, ValueError):
    """`Run.predict` was given texts that are empty or not strings."""


class TextsNotListError(ShouldersError, TypeError):
    """`Run.predict` on a text run was given one string instead of a list of them."""


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
        _check_finished(path)
        config_values = read_json(path / layout.CONFIG)
        try:
            config = RunConfig.from_dict(config_values)
        except (TypeError, AttributeError, ShouldersError) as error:  # a missing field, a wrong type, a bad value
            raise RunFileError(
                f"{path / layout.CONFIG} does not describe a run ({error}): it was overwritten or edited by hand. "
                "Restore it from a backup or fix that field; if it cannot be restored, train the run again."
            ) from None
        return cls(
            path=path,
            config=config,
            classes=list(read_json(path / layout.DATA)["classes"]),
            metrics=read_json(path / layout.METRICS),
            history=read_json(path / layout.HISTORY),
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

    def read(self, name: str) -> Any:
        """A JSON file of the folder, by its `layout` name."""
        return read_json(self.path / name)

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """An ``.npz`` written by training (`layout.TEST_REFERENCE`, ...), loaded whole."""
        file = self.path / name
        if not file.exists():
            raise ReferenceMissingError(
                f"{file} is missing: the run was trained by an older shoulders, which did not record it. "
                "`shoulders evaluate RUN` (or export) with this version writes it from the run's data; "
                "or train the run again."
            )
        with np.load(file, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}

    @property
    def model(self) -> keras.Model:
        if self._model is None:
            import shoulders.backbones  # noqa: F401  (registers the custom layers)

            if self.task == "text":
                from shoulders.backbones.bert import keras_hub

                keras_hub()  # registers keras-hub's layers (or says how to install them)

            self._model = _load_model(self.path / layout.MODEL)
        return self._model

    def load_images(self, images: Sequence[Any]) -> np.ndarray:
        """Decode paths/bytes/arrays exactly as training did (orientation, RGB, crop, size)."""
        from shoulders.data.images import load_image

        if isinstance(images, np.ndarray) and images.ndim == 4:
            return images
        return np.stack([load_image(image, self.image_size, self.crop_fraction) for image in images])

    @property
    def tokenizer(self):
        """Text runs: the tokenizer saved with the model (same vocabulary, same length)."""
        if self._tokenizer is None:
            from shoulders.backbones.tokenizer import TextTokenizer

            self._tokenizer = TextTokenizer.from_file(self.path / layout.TOKENIZER, self.max_length or 512)
        return self._tokenizer

    def predict(self, inputs: Sequence[Any] | np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Class probabilities (N, classes): for image runs of image paths, encoded bytes or arrays of
        raw pixels; for text runs of strings."""
        if self.task == "text":
            return self._predict_texts(inputs, batch_size)
        from shoulders.training.batches import predict_probabilities

        return predict_probabilities(self.model, self.load_images(inputs), batch_size)

    def _predict_texts(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        from shoulders.text.batches import predict_ids
        from shoulders.training.metrics import softmax

        if isinstance(texts, str):
            raise TextsNotListError("predict takes a list of texts; wrap a single text in a list: run.predict([text])")
        bad = [index for index, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
        if bad:
            raise PredictInputError(f"texts must be non-empty strings; these are not: positions {bad[:10]}")
        return softmax(predict_ids(self.model, self.tokenizer.token_ids(list(texts)), self.tokenizer, batch_size))

    def classify(self, images: Sequence[Any], top_k: int = 3) -> list[list[dict]]:
        """Top-k {"label", "probability"} per image (or text)."""
        probabilities = self.predict(images)
        return [
            [{"label": self.classes[i], "probability": float(row[i])} for i in np.argsort(-row)[:top_k]]
            for row in probabilities
        ]


def _check_finished(path: Path) -> None:
    """A finished run holds config.json, model.keras and metrics.json (written last); say which is missing and why."""
    has = {name: (path / name).exists() for name in (layout.CONFIG, layout.MODEL, layout.METRICS)}
    if not path.is_dir():
        raise RunNotFoundError(f"{path} is not a folder: give a run folder (e.g. runs/NAME, as `shoulders train` printed).")
    if not has[layout.CONFIG]:
        raise RunNotFoundError(f"{path} is not a shoulders run folder (no {layout.CONFIG}): give a folder written by `shoulders train`.")
    if not has[layout.METRICS]:
        raise RunNotFoundError(
            f"{path} is not a finished run (no {layout.METRICS}, written last): it looks interrupted. Continue it with "
            f"`shoulders train --resume --out {path}`."
        )
    if not has[layout.MODEL]:
        raise RunFileError(
            f"{path / layout.MODEL} is missing from a finished run ({layout.METRICS} is there): it was deleted or moved. "
            "Put it back, or train the run again."
        )


def _load_model(file: Path) -> keras.Model:
    """The run's model (compile=False: inference needs no optimizer). A .keras file is a zip archive: one
    that is not (truncated, overwritten) is named as damaged, where Keras would say "File not found"."""
    if not zipfile.is_zipfile(file):
        raise RunFileError(
            f"{file} is damaged: not a complete .keras archive ({file.stat().st_size:,} bytes; truncated or "
            "overwritten). Copy it back from a backup, or train the run again."
        )
    return keras.saving.load_model(file, safe_mode=True, compile=False)


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def load_run(path: str | os.PathLike) -> Run:
    """Open a finished run folder."""
    return Run.load(path)


def load_comparison(folder: str | os.PathLike) -> dict:
    """A compare folder's comparison.json."""
    file = Path(folder) / layout.COMPARISON
    if not file.exists():
        raise RunNotFoundError(f"{folder} holds no {layout.COMPARISON}: give a folder written by `shoulders compare`.")
    return read_json(file)
