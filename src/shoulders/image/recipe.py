"""The image recipe: decode once, build the raw-pixel classifier, fine-tune it with the shared `FineTuner`."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from shoulders import backbones
from shoulders.config import RunConfig
from shoulders.data.memory import check_batch_fits
from shoulders.image.inputs import ImageInputs, crop_fraction, load_data
from shoulders.image.model import ClassifierOptions, build_classifier
from shoulders.training.compute import Compute
from shoulders.training.finetuner import Display, FineTuner, features_first, start_run


def image_size(config: RunConfig) -> int:
    """The square input size of the run: the option, else the backbone's own."""
    return backbones.image_shape(backbones.get(config.backbone), config.image_size)[0]


def train(config: RunConfig, resume: bool = False, display: Display | None = None, compute: Compute | None = None) -> Path:
    """Run the whole recipe on images (on ``compute``'s devices and precision); returns the finished run folder."""
    display, compute = display or Display(), compute or Compute()
    compute.check_batch(config.batch_size)
    folder, config, spec, started = start_run(config, resume)  # checks only: the folder is made on first write
    size = image_size(config)
    check_batch_fits(config.batch_size, (size, size))
    weights = None if config.strategy == "scratch" else config.weights
    keras.utils.set_random_seed(config.seed)
    with ThreadPoolExecutor(1) as pool, compute.scope():  # decoding (in C, GIL released) overlaps building the backbone
        pending = pool.submit(load_data, config, size, display.enabled)
        body = backbones.body(config.backbone, size, weights)
        # the frozen backbone's inference form, for phase 1's one pass of features, while decoding goes on
        folded = spec.inference_body(body) if features_first(config) and spec.inference_body else None
        data = pending.result()
    folder.write_data(data)
    if not resume:
        extra = {"image_size_used": size, "crop_fraction_used": crop_fraction(config), **compute.facts()}
        folder.write_config(config, extra=extra)
    options = ClassifierOptions(
        image_size=size,
        weights=weights,
        augmentation=config.augmentation if config.augment else None,
        dropout=config.dropout,
        seed=config.seed,
        frozen_statistics=config.strategy != "scratch",
    )
    with compute.scope():
        model = build_classifier(config.backbone, len(data.classes), options, backbone_body=body)
    tuner = FineTuner(model, spec, config, ImageInputs(data, spec, folded, compute), folder, display, compute)
    return tuner.run(started, {"image_size": size})


def subset_folder(config: RunConfig, size: int, target: Path) -> Path:
    """``size`` training images per class drawn (seeded) from the seed's train+val pool, and the seed's full
    test set, as links in ``target/train`` and ``target/test``: every size is scored on the same test images."""
    if target.exists():
        return target
    prepared = load_data(config, image_size(config), progress=False)
    rng = np.random.default_rng(config.seed)
    pool = np.concatenate([prepared.splits["train"], prepared.splits["val"]])
    test = prepared.splits["test"]
    for index, name in enumerate(prepared.classes):
        chosen = rng.permutation(pool[prepared.labels[pool] == index])[:size]
        for split, picked in (("train", chosen), ("test", test[prepared.labels[test] == index])):
            destination = target / split / name
            destination.mkdir(parents=True, exist_ok=True)
            for row in picked:
                relative = prepared.names[int(row)]
                os.symlink((Path(config.data) / relative).resolve(), destination / relative.replace("/", "__"))
    return target
