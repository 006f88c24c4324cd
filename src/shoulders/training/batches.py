"""Batches from uint8 arrays (or memmaps of the decode cache) for any Keras backend."""

from __future__ import annotations

import math

import keras
import numpy as np

from shoulders.training.compute import Compute, predict_batch
from shoulders.training.metrics import softmax


class ArrayBatches(keras.utils.PyDataset):
    """Shuffled (optionally) batches of ``(x[rows], y[rows])``, reading only one batch at a time.

    Pixels stay uint8 until the model casts them: 4x less memory traffic than float32 arrays.
    With a ``compute`` over several devices, every batch is whole (the last one topped up with the
    epoch's first rows, so it splits evenly) and each process reads only its share of it.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0, compute: Compute | None = None) -> None:
        super().__init__()
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        self.x, self.y = x, np.asarray(y)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.compute = compute or Compute()
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(x))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        if self.compute.distributed and len(rows) < self.batch_size:
            rows = np.concatenate([rows, np.resize(self._order, self.batch_size - len(rows))])
        rows = self.compute.shard(self._in_device_order(rows))
        return np.asarray(self.x[rows]), self.y[rows]

    def _in_device_order(self, rows: np.ndarray) -> np.ndarray:
        """Rows sorted (for memmap locality) within each device's share of the batch, so the global batch
        is the same array whether its devices sit in one process or in several (augmentation and dropout
        draw their randomness per row position)."""
        if not self.compute.distributed:
            return np.sort(rows)
        return np.concatenate([np.sort(share) for share in np.split(rows, self.compute.total_devices)])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Class probabilities of uint8 ``images`` (an array or memmap), one batch in memory at a time."""
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    if keras.distribution.distribution() is not None:  # validation while a distributed run trains
        batches = [predict_batch(model, np.asarray(images[start : start + batch_size])) for start in range(0, len(images), batch_size)]
        return softmax(np.concatenate(batches).astype(np.float32))
    logits = model.predict(ArrayBatches(images, np.zeros(len(images)), batch_size), verbose=0)
    return softmax(np.asarray(logits))
