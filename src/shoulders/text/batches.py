"""Token batches grouped by length: short texts are not padded to the longest one in the data.

SST-2's training phrases average ~13 tokens against a 99th percentile of ~60; padding every batch
to the global length would spend most of the encoder's time on padding.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from shoulders.backbones.tokenizer import LENGTH_STEP, TextTokenizer


class LengthBatches(keras.utils.PyDataset):
    """Batches of (inputs, labels) from variable-length rows. Rows are sorted by length (with a random
    tie-break each epoch when shuffling) and cut into batches, whose order is then shuffled; each batch
    is padded to its own longest row, rounded up to a multiple of 16 (a handful of shapes, so a
    handful of traces). Subclasses say how to pad."""

    def __init__(self, rows: list, labels: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0) -> None:
        super().__init__()
        if len(rows) != len(labels):
            raise ValueError(f"rows and labels differ in length: {len(rows)} vs {len(labels)}")
        self.ids, self.labels = rows, np.asarray(labels)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.lengths = np.array([len(row) for row in rows])
        self._rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.ids) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        rows = self.batches[index]
        return self.pad([self.ids[row] for row in rows]), self.labels[rows]

    def pad(self, rows: list) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def order(self) -> np.ndarray:
        """The row order of the batches, concatenated (to put predictions back in data order)."""
        return np.concatenate(self.batches) if self.batches else np.zeros(0, dtype=np.int64)

    def on_epoch_end(self) -> None:
        noise = self._rng.random(len(self.ids)) if self.shuffle else np.zeros(len(self.ids))
        sorted_rows = np.lexsort((noise, self.lengths))
        self.batches = [sorted_rows[start : start + self.batch_size] for start in range(0, len(sorted_rows), self.batch_size)]
        if self.shuffle:
            self._rng.shuffle(self.batches)
        self._shortest_and_longest_first()

    def _shortest_and_longest_first(self) -> None:
        """Keras' TensorFlow adapter infers the batch signature from the first two batches, so those
        two must show that the length varies (else a longer batch later is refused)."""
        if len(self.batches) < 2:
            return
        longest = [int(self.lengths[rows].max()) for rows in self.batches]
        first, second = int(np.argmin(longest)), int(np.argmax(longest))
        chosen = [self.batches[first], self.batches[second]] if first != second else [self.batches[first]]
        rest = [rows for index, rows in enumerate(self.batches) if index not in (first, second)]
        self.batches = chosen + rest


class TokenBatches(LengthBatches):
    """Token ids -> the classifier's inputs (token_ids, segment_ids, padding_mask)."""

    def __init__(
        self, ids: list[list[int]], labels: np.ndarray, tokenizer: TextTokenizer, batch_size: int,
        shuffle: bool = False, seed: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        super().__init__(ids, labels, batch_size, shuffle, seed)

    def pad(self, rows: list) -> dict[str, np.ndarray]:
        return self.tokenizer.pad(rows)


class HiddenBatches(LengthBatches):
    """Cached per-token hidden states (one (length, width) array per text) -> ``hidden``, ``padding_mask``."""

    def pad(self, rows: list) -> dict[str, np.ndarray]:
        longest = max(len(row) for row in rows)
        length = -(-longest // LENGTH_STEP) * LENGTH_STEP
        hidden = np.zeros((len(rows), length, rows[0].shape[-1]), dtype=np.float32)
        mask = np.zeros((len(rows), length), dtype=np.int32)
        for index, row in enumerate(rows):
            hidden[index, : len(row)] = row
            mask[index, : len(row)] = 1
        return {"hidden": hidden, "padding_mask": mask}


def predict_in_length_order(model: keras.Model, batches: LengthBatches) -> np.ndarray:
    """``model`` outputs for every row, in data order, computed batch by batch in length order."""
    outputs = [keras.ops.convert_to_numpy(model.predict_on_batch(batches[index][0])) for index in range(len(batches))]
    if not outputs:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    result = np.empty((len(batches.ids), outputs[0].shape[-1]), dtype=np.float32)
    result[batches.order] = np.concatenate(outputs)
    return result


def predict_ids(model: keras.Model, ids: list[list[int]], tokenizer: TextTokenizer, batch_size: int = 64) -> np.ndarray:
    """``model`` outputs for unlabelled token ids, in their order."""
    return predict_in_length_order(model, TokenBatches(ids, np.zeros(len(ids)), tokenizer, batch_size))
