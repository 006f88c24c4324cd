"""The image task's data as the fine-tuner sees it: decoded once into a uint8 cache, loaded by the run's
crop policy, batched for ``fit``, featurised once while the backbone is frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from shoulders import backbones
from shoulders.config import RunConfig
from shoulders.data import PreparedData, SplitSettings, load_digits, load_labelled_folder, prepare
from shoulders.data.images import THUMBNAIL_SIZE, thumbnail
from shoulders.runs import layout
from shoulders.training.batches import ArrayBatches, predict_probabilities
from shoulders.training.compute import Compute
from shoulders.engines.ray_data import RayPool
from shoulders.training.features import cached_array, cached_features, extract_features_on_ray, feature_cache_dir
from shoulders.training.finetuner import test_reference, weights_sha
from shoulders.training.model import fast_feature_model

def crop_fraction(config: RunConfig) -> float:
    """The centre crop used for every image of the run: the option, else the backbone's own."""
    return config.crop_fraction if config.crop_fraction is not None else backbones.get(config.backbone).crop_fraction


def load_data(config: RunConfig, image_size: int, progress: bool = True) -> PreparedData:
    """The run's images, decoded (or read from the decode cache) and split as ``config`` says."""
    split = SplitSettings(config.val_fraction, config.test_fraction, config.seed)
    if config.data == "digits":
        return load_digits(image_size, split=split, cache_dir=config.cache_dir)
    return prepare(config.data, image_size, crop_fraction=crop_fraction(config), split=split, cache_dir=config.cache_dir, progress=progress)


def labelled_images(folder: str | Path, image_size: int, crop: float, classes: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Another labelled folder (``evaluate --data``), decoded as the run's own images were, and each image's
    content sha256."""
    return load_labelled_folder(Path(folder), image_size, crop, classes)


@dataclass
class ImageInputs:
    data: PreparedData
    spec: backbones.BackboneSpec
    inference_body: keras.Model | None = None  # the frozen body's inference form, if already built
    compute: Compute = field(default_factory=Compute)  # several devices: whole batches, each process its share

    def features(self, model: keras.Model, config: RunConfig, splits: tuple[str, ...]) -> np.ndarray:
        extractor = fast_feature_model(model, self.spec, self.inference_body)  # BatchNorm folded: same function, ~2x faster
        rows = np.concatenate([self.data.splits[split] for split in splits])
        names = "\n".join(self.data.names[row] for row in rows)
        key = [self.data.fingerprint, config.backbone, str(model.input_shape), weights_sha(config), names]
        if self.compute.precision != "float32":
            key.append(self.compute.precision)  # bfloat16 features are not float32's
        images = self.data.images[rows]
        if config.engine == "ray":  # the same features, computed by a Ray actor pool (one extractor per actor)
            compute = lambda: extract_features_on_ray(extractor, images, RayPool(config.ray_address))  # noqa: E731
            return cached_array(key, feature_cache_dir(config.cache_dir), len(images), compute)[0]
        features, _ = cached_features(extractor, images, key, feature_cache_dir(config.cache_dir))
        return features

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> ArrayBatches:
        x, y = self.data.subset(split)
        return ArrayBatches(x, y, batch_size, shuffle=shuffle, seed=seed, compute=self.compute if shuffle else None)

    def probabilities(self, model: keras.Model, split: str, batch_size: int) -> np.ndarray:
        return predict_probabilities(model, self.data.subset(split)[0], batch_size)

    def finetune_view(self, model: keras.Model, blocks: list[str], config: RunConfig) -> tuple[keras.Model, object]:
        return model, self.batches  # the frozen stem's outputs change with augmentation: nothing to cache

    def reference(self, test_probabilities: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """The test images (export reference, evaluation), a calibration sample, the worst errors' thumbnails."""
        data = self.data
        train_rows = data.splits["train"]
        step = max(1, len(train_rows) // layout.CALIBRATION_SAMPLE)
        calibration = np.asarray(data.images[train_rows[::step][: layout.CALIBRATION_SAMPLE]])
        return {
            layout.TEST_REFERENCE: test_reference(data, test_probabilities, lambda rows: np.asarray(data.images[rows])),
            layout.CALIBRATION: {"inputs": calibration},
            layout.ERROR_THUMBNAILS: self._thumbnails(test_probabilities),
        }

    def _thumbnails(self, test_probabilities: np.ndarray) -> dict[str, np.ndarray]:
        """The most confident test errors (as the report ranks them), shrunk to thumbnails."""
        data = self.data
        rows = data.splits["test"]
        wrong = np.flatnonzero(test_probabilities.argmax(axis=1) != data.labels[rows])
        worst = wrong[np.argsort(-test_probabilities[wrong].max(axis=1), kind="stable")][: layout.THUMBNAIL_COUNT]
        images = np.stack([thumbnail(data.images[rows[index]]) for index in worst]) if len(worst) else np.zeros((0, THUMBNAIL_SIZE, THUMBNAIL_SIZE, 3), np.uint8)
        return {"names": np.array([data.names[rows[index]] for index in worst], dtype=str), "images": images}

