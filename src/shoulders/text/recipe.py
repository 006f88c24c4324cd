"""Text runs: the image recipe's phases, guardrails and run folder, with tokens instead of pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from rich.console import Console

from shoulders import backbones
from shoulders.config import RunConfig
from shoulders.evaluation.metrics import softmax
from shoulders.run import Run
from shoulders.text.batches import HiddenBatches, TokenBatches, predict_ids, predict_in_length_order
from shoulders.text.data import TextData, load_text_data
from shoulders.text.model import build_text_classifier
from shoulders.text.tokenizer import TextTokenizer, choose_max_length
from shoulders.training.features import cached_array, feature_cache_dir
from shoulders.training.model import backbone_of, feature_model
from shoulders.training.recipe import _weights_sha, run_recipe, start_run

TOKENIZER_FILE = "tokenizer.json"
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
        key = [self.data.fingerprint, config.backbone, f"max_length={self.tokenizer.max_length}", _weights_sha(config), names]
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
    return load_text_data(
        config.data,
        text_column=column(config.text_column),
        label_column=column(config.label_column),
        test=config.test_file,
        val=config.val_file,
        max_train=config.max_train,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )


def train_text(config: RunConfig, *, resume: bool = False, progress: bool = True, console: Console | None = None) -> Run:
    """The recipe on texts: encoder frozen + head on cached features, then the top transformer layers."""
    console = console or Console(stderr=True)
    folder, config, spec, started = start_run(config, resume)
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    folder.write_data(data)
    tokenizer = spec.tokenizer()
    max_length = config.max_length or choose_max_length(_train_lengths(tokenizer, data), ceiling=128)
    tokenizer = tokenizer.with_max_length(max_length)
    tokenizer.save(folder.path / TOKENIZER_FILE)
    if not resume:
        folder.write_config(config, extra={"max_length_used": max_length})
    weights = None if config.strategy == "scratch" else config.weights
    model = build_text_classifier(
        backbones.body(config.backbone, None, weights),
        len(data.classes),
        dropout=config.dropout,
        seed=config.seed,
        inference_mode=config.strategy != "scratch",
    )
    inputs = TextInputs(data, tokenizer)
    return run_recipe(model, spec, config, inputs, folder, started, {"max_length": max_length, "weights_origin": spec.weights_origin if weights else "random"}, progress, console)


def _train_lengths(tokenizer: TextTokenizer, data: TextData) -> np.ndarray:
    texts = [data.texts[row] for row in data.splits["train"]]
    return np.array([len(ids) for ids in tokenizer.with_max_length(512).token_ids(texts)])
