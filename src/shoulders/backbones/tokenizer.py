"""A text encoder's own WordPiece tokenizer, with the `tokenizers` library: the same ids on every Keras backend.

keras-hub's own BERT tokenizer runs on tensorflow-text, which exists only beside TensorFlow; the
Rust `tokenizers` library reads the encoder's own tokenizer.json (or vocab.txt) and has no backend.
It sits beside the encoders (`shoulders.backbones.bert`) because what a text model was trained on is
its tokens: the text recipe, export and serving all tokenize with it. Needs the text extra.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from shoulders.io import write_text

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
LENGTH_STEP = 16  # batches pad to a multiple of this: few distinct shapes, few traces


class TextTokenizer:
    """Texts -> ``token_ids``, ``segment_ids``, ``padding_mask`` arrays (int32), truncated to ``max_length``."""

    def __init__(self, tokenizer: Tokenizer, max_length: int = 512) -> None:
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()
        self.max_length = int(max_length)
        self._tokenizer.enable_truncation(self.max_length)
        self.pad_id = tokenizer.token_to_id("[PAD]") or 0

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, max_length: int = 512) -> TextTokenizer:
        """A Hugging Face model folder: tokenizer.json if present, else vocab.txt (+ tokenizer_config.json)."""
        folder = Path(folder)
        if (folder / "tokenizer.json").exists():
            return cls(Tokenizer.from_file(str(folder / "tokenizer.json")), max_length)
        return cls.from_vocabulary(folder / "vocab.txt", _lowercase(folder), max_length)

    @classmethod
    def from_vocabulary(cls, vocabulary: str | os.PathLike | dict, lowercase: bool, max_length: int = 512) -> TextTokenizer:
        wordpiece = BertWordPieceTokenizer(str(vocabulary) if not isinstance(vocabulary, dict) else vocabulary, lowercase=lowercase)
        return cls(Tokenizer.from_str(wordpiece.to_str()), max_length)

    @classmethod
    def from_file(cls, path: str | os.PathLike, max_length: int) -> TextTokenizer:
        """The tokenizer a run saved next to its model."""
        return cls(Tokenizer.from_file(str(path)), max_length)

    def with_max_length(self, max_length: int) -> TextTokenizer:
        return TextTokenizer(Tokenizer.from_str(self._tokenizer.to_str()), max_length)

    def save(self, path: str | os.PathLike) -> None:
        write_text(path, self._tokenizer.to_str())

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Unpadded ids per text ([CLS] ... [SEP]), truncated to ``max_length``."""
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def pad(self, ids: list[list[int]], length: int | None = None) -> dict[str, np.ndarray]:
        """The model's inputs for already tokenized texts, padded to ``length`` (default: the longest,
        rounded up to a multiple of 16, at most ``max_length``)."""
        longest = max((len(row) for row in ids), default=1)
        if length is None:
            length = min(self.max_length, -(-longest // LENGTH_STEP) * LENGTH_STEP)
        token_ids = np.full((len(ids), length), self.pad_id, dtype=np.int32)
        padding_mask = np.zeros((len(ids), length), dtype=np.int32)
        for row, values in enumerate(ids):
            values = values[:length]
            token_ids[row, : len(values)] = values
            padding_mask[row, : len(values)] = 1
        return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask}

    def __call__(self, texts: list[str], length: int | None = None) -> dict[str, np.ndarray]:
        return self.pad(self.token_ids(texts), length)


def choose_max_length(lengths: np.ndarray, ceiling: int = 128) -> int:
    """A token length that fits 99% of the training texts whole, in steps of 16, at most ``ceiling``:
    attention and memory grow with length, and the rare long tail is truncated, not padded for."""
    if len(lengths) == 0:
        return LENGTH_STEP
    covered = int(np.percentile(lengths, 99))
    return int(min(ceiling, max(LENGTH_STEP, -(-covered // LENGTH_STEP) * LENGTH_STEP)))


def _lowercase(folder: Path) -> bool:
    config = folder / "tokenizer_config.json"
    if config.exists():
        return bool(json.loads(config.read_text()).get("do_lower_case", True))
    return True
