"""The text task's data as the fine-tuner sees it: texts tokenized once, batched by length, pooled features
cached while the encoder is frozen, and phase 2 on cached hidden states of the frozen bottom layers."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from shoulders.backbones.tokenizer import TextTokenizer
from shoulders.config import RunConfig
from shoulders.data import DataError, SplitSettings
from shoulders.runs import layout
from shoulders.text.batches import HiddenBatches, TokenBatches, predict_ids, predict_in_length_order
from shoulders.text.data import TextData, load_text_data, read_labelled_texts
from shoulders.training.features import cached_array, feature_cache_dir
from shoulders.training.finetuner import test_reference, weights_sha
from shoulders.training.metrics import softmax
from shoulders.training.model import backbone_of, feature_model

MAX_HIDDEN_CACHE_BYTES = 4 * 2**30  # phase 2's cache of frozen-layer outputs (float32 per real token)


@dataclass
class TextInputs:
    """Texts tokenized once (the `tokenizers` library, in Rust); batches padded per length group."""

    data: TextData
    tokenizer: TextTokenizer
    ids: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = self.tokenizer.token_ids(list(self.data.texts))

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> TokenBatches:
        rows = self.data.splits[split]
        return TokenBatches([self.ids[row] for row in rows], self.data.labels[rows], self.tokenizer, batch_size, shuffle, seed)

    def features(self, model: keras.Model, config: RunConfig, splits: tuple[str, ...]) -> np.ndarray:
        """Pooled encoder outputs of ``splits`` (the encoder is deterministic in inference mode)."""
        rows = np.concatenate([self.data.splits[split] for split in splits])
        names = "\n".join(self.data.names[row] for row in rows)
        key = [self.data.fingerprint, config.backbone, f"max_length={self.tokenizer.max_length}", weights_sha(config), names]
        extractor = feature_model(model)

        def compute() -> np.ndarray:
            return predict_ids(extractor, [self.ids[row] for row in rows], self.tokenizer)

        features, _ = cached_array(key, feature_cache_dir(config.cache_dir), len(rows), compute)
        return features

    def probabilities(self, model: keras.Model, split: str, batch_size: int) -> np.ndarray:
        return softmax(predict_in_length_order(model, self.batches(split, batch_size)))

    def finetune_view(self, model: keras.Model, blocks: list[str], config: RunConfig) -> tuple[keras.Model, object]:
        """Phase 2 on the frozen bottom's outputs, computed once: the unfrozen top layers (shared with
        the classifier) train on cached hidden states instead of re-running the frozen layers every epoch."""
        encoder = backbone_of(model)
        first = _first_unfrozen_layer(blocks)
        rows = {split: self.data.splits[split] for split in ("train", "val")}
        tokens = sum(len(self.ids[row]) for split_rows in rows.values() for row in split_rows)
        if first is None or tokens * encoder.output.shape[-1] * 4 > MAX_HIDDEN_CACHE_BYTES:
            return model, self.batches  # the embeddings train too, or the cache would not fit: run it all
        bottom_name = f"transformer_layer_{first - 1}" if first > 0 else "embeddings_dropout"
        bottom = keras.Model(encoder.input, encoder.get_layer(bottom_name).output, name="frozen_bottom")
        hidden = {split: self._hidden_states(bottom, split_rows) for split, split_rows in rows.items()}
        top = top_model(model, encoder, first)

        def batches(split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> HiddenBatches:
            return HiddenBatches(hidden[split], self.data.labels[rows[split]], batch_size, shuffle, seed)

        return top, batches

    def reference(self, test_probabilities: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """The test texts with their labels and probabilities (the export reference and evaluation)."""
        def texts(rows: np.ndarray) -> np.ndarray:
            return np.array([self.data.texts[row] for row in rows], dtype=str)

        return {layout.TEST_REFERENCE: test_reference(self.data, test_probabilities, texts)}

    def _hidden_states(self, bottom: keras.Model, rows: np.ndarray) -> list[np.ndarray]:
        """Per text, the frozen bottom's output at its real tokens only (padding dropped)."""
        ids = [self.ids[row] for row in rows]
        batches = TokenBatches(ids, np.zeros(len(ids)), self.tokenizer, batch_size=64)
        states: list[np.ndarray | None] = [None] * len(ids)
        for index in range(len(batches)):
            inputs, _ = batches[index]
            output = keras.ops.convert_to_numpy(bottom.predict_on_batch(inputs))
            for position, row in enumerate(batches.batches[index]):
                states[row] = output[position, : len(ids[row])].copy()
        return states


def _first_unfrozen_layer(blocks: list[str]) -> int | None:
    """Index of the lowest unfrozen transformer layer, or None when anything below them trains too."""
    indices = [int(block.rsplit("_", 1)[1]) for block in blocks if block.startswith("transformer_layer_")]
    return min(indices) if indices and len(indices) == len(blocks) else None


def top_model(model: keras.Model, encoder: keras.Model, first: int) -> keras.Model:
    """hidden states at layer ``first`` -> the classifier's logits, through the very same layer objects."""
    hidden = keras.Input(shape=(None, encoder.output.shape[-1]), name="hidden")
    mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    x = hidden
    count = sum(1 for layer in encoder.layers if layer.name.startswith("transformer_layer_"))
    for index in range(first, count):
        x = encoder.get_layer(f"transformer_layer_{index}")(x, padding_mask=mask, training=False)
    x = model.get_layer("pool")(x, mask)
    x = model.get_layer("head_dropout")(x)
    outputs = model.get_layer("logits")(x)
    return keras.Model({"hidden": hidden, "padding_mask": mask}, outputs, name="finetuned_top")


def column(value: str | None) -> str | int | None:
    """A column option: a name, or a position for a file without a header row."""
    return int(value) if value is not None and value.strip().isdigit() else value


def load_data(config: RunConfig) -> TextData:
    """The run's texts, read with its columns and split as ``config`` says."""
    return load_text_data(
        config.data,
        text_column=column(config.text_column),
        label_column=column(config.label_column),
        test=config.test_file,
        val=config.val_file,
        max_train=config.max_train,
        split=SplitSettings(config.val_fraction, config.test_fraction, config.seed),
    )


def labelled_texts(config: RunConfig, data: str, classes: list[str], run_name: str) -> tuple[list[str], np.ndarray]:
    """Every usable row of another labelled file (``evaluate --data``), read with the run's columns,
    unsplit (one class is a fine test file), labels in the run's class order."""
    try:
        texts, names, _ = read_labelled_texts(data, text_column=column(config.text_column), label_column=column(config.label_column))
    except DataError as error:
        raise DataError(f"cannot evaluate {run_name} on {data}: {error}") from None
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise DataError(
            f"{data} has labels the run was not trained on: {', '.join(map(repr, unknown))}; the run knows "
            f"{', '.join(classes)}. Fix or drop those rows, or evaluate a run trained with those labels."
        )
    return texts, np.array([classes.index(name) for name in names], dtype=np.int64)

