"""One batch of inputs to one batch of rows, the same code in every engine (here, in a Ray actor, in a
Spark worker): decode (images) or check (texts) each input, run the model on those that are fine, and
give every input a row; an input that fails is a row with its error, never an exception."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from shoulders.errors import ShouldersError
from shoulders.runs.reader import Run, load_run


@dataclass
class Scorer:
    """The run's model on one worker; ``worker`` (host:pid) is written in each row it scores."""

    run: Run
    top_k: int = 3
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _predict: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, run_path: str, top_k: int = 3) -> Scorer:
        return cls(load_run(run_path), top_k)

    @property
    def key(self) -> str:
        return "text" if self.run.task == "text" else "path"

    def __call__(self, keys: Sequence[str]) -> list[dict]:
        keys = [str(key) for key in keys]
        inputs, errors = self._texts(keys) if self.run.task == "text" else self._decode(keys)
        good = [index for index, error in enumerate(errors) if not error]
        probabilities = self._probabilities([inputs[index] for index in good]) if good else np.zeros((0, len(self.run.classes)))
        rows = [self._failed(key, error) for key, error in zip(keys, errors)]
        for index, row in zip(good, probabilities):
            rows[index] = self._row(keys[index], row)
        return rows

    def _probabilities(self, inputs: list) -> np.ndarray:
        """The server's ``keras`` form of the model (BatchNorm folded where it matches the saved model)."""
        if self._predict is None:
            from shoulders.serving.predictors import load_predictor

            self._predict = load_predictor(self.run, "keras")
        batch = np.array(inputs, dtype=object) if self.run.task == "text" else np.stack(inputs)
        return np.asarray(self._predict(batch))

    def _decode(self, paths: list[str]) -> tuple[list, list[str]]:
        """Pixels as training decoded them, in a thread pool (Pillow releases the GIL while decoding)."""
        from shoulders.data.images import load_image

        def one(path: str) -> tuple[np.ndarray | None, str]:
            try:
                return load_image(path, self.run.image_size, self.run.crop_fraction), ""
            except (ShouldersError, OSError, ValueError) as error:
                return None, _reason(path, error)

        if self._pool is None:
            self._pool = ThreadPoolExecutor(os.cpu_count())
        decoded = list(self._pool.map(one, paths))
        return [pixels for pixels, _ in decoded], [error for _, error in decoded]

    def _texts(self, texts: list[str]) -> tuple[list[str], list[str]]:
        return texts, ["" if text.strip() else "empty text: nothing to classify" for text in texts]

    def _row(self, key: str, probabilities: np.ndarray) -> dict:
        order = np.argsort(-probabilities)[: self.top_k]
        return {
            self.key: key, "label": self.run.classes[order[0]], "probability": float(probabilities[order[0]]),
            "top_k_labels": [self.run.classes[i] for i in order], "top_k_probabilities": [float(probabilities[i]) for i in order],
            "error": "", "worker": self.worker,
        }

    def _failed(self, key: str, error: str) -> dict:
        return {self.key: key, "label": None, "probability": None, "top_k_labels": [], "top_k_probabilities": [],
                "error": error, "worker": self.worker}


def _reason(path: str, error: BaseException) -> str:
    """The decoder's message already names the file; OS errors get their short form."""
    if isinstance(error, OSError) and error.strerror:
        return f"{path}: {error.strerror}"
    return str(error) if str(error).startswith(path) else f"{path}: {error}"
