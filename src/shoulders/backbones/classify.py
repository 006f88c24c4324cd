"""Classify photos into the 1000 ImageNet classes with a pretrained backbone."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from shoulders.backbones.imagenet_classes import imagenet_class_names
from shoulders.backbones.models import imagenet_classifier
from shoulders.backbones.registry import get
from shoulders.data.images import load_image


def sample_image(name: str) -> np.ndarray:
    """A scikit-image sample photo (shipped in the package, offline)."""
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def classify_images(sources: Sequence[object], backbone: str = "efficientnet_lite0", top_k: int = 5) -> list[list[dict]]:
    """Top-k ImageNet classes per image: [{"index", "name", "probability"}, ...] per source."""
    spec = get(backbone)
    model = imagenet_classifier(backbone)
    batch = np.stack([load_image(source, spec.image_size, spec.crop_fraction) for source in sources])
    logits = model.predict(batch, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    names = imagenet_class_names()
    results = []
    for row in probabilities:
        top = np.argsort(-row)[:top_k]
        results.append([{"index": int(i), "name": names[i], "probability": float(row[i])} for i in top])
    return results
