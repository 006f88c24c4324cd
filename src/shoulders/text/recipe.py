"""The text recipe: tokenize once, build the encoder classifier, fine-tune it with the shared `FineTuner`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from shoulders import backbones
from shoulders.backbones.tokenizer import TextTokenizer, choose_max_length
from shoulders.config import RunConfig
from shoulders.runs import layout
from shoulders.text.data import TextData
from shoulders.text.inputs import TextInputs, load_data
from shoulders.text.model import build_text_classifier
from shoulders.training.compute import Compute
from shoulders.training.finetuner import Display, FineTuner, start_run


def train(config: RunConfig, resume: bool = False, display: Display | None = None, compute: Compute | None = None) -> Path:
    """The recipe on texts: encoder frozen + head on cached features, then the top transformer layers;
    returns the finished run folder."""
    display, compute = display or Display(), compute or Compute()
    folder, config, spec, started = start_run(config, resume)
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    folder.write_data(data)
    tokenizer = spec.tokenizer()
    max_length = config.max_length or choose_max_length(_train_lengths(tokenizer, data), ceiling=128)
    tokenizer = tokenizer.with_max_length(max_length)
    tokenizer.save(folder.path / layout.TOKENIZER)
    if not resume:
        folder.write_config(config, extra={"max_length_used": max_length, **compute.facts()})
    weights = None if config.strategy == "scratch" else config.weights
    model = build_text_classifier(
        backbones.body(config.backbone, None, weights),
        len(data.classes),
        dropout=config.dropout,
        seed=config.seed,
        inference_mode=config.strategy != "scratch",
    )
    facts = {"max_length": max_length, "weights_origin": spec.weights_origin if weights else "random"}
    return FineTuner(model, spec, config, TextInputs(data, tokenizer), folder, display, compute).run(started, facts)


def class_count(config: RunConfig) -> int:
    """How many classes the run's data has (a compare size of ``n`` per class is ``n x classes`` rows)."""
    return len(load_data(config).classes)


def _train_lengths(tokenizer: TextTokenizer, data: TextData) -> np.ndarray:
    texts = [data.texts[row] for row in data.splits["train"]]
    return np.array([len(ids) for ids in tokenizer.with_max_length(512).token_ids(texts)])
