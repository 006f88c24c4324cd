"""The embedded offline dataset: scikit-learn's 8x8 handwritten digits as small RGB photos.

Grayscale is repeated to 3 channels and upscaled bilinearly, as the Fashion-MNIST tutorial
(seed 001) does with ``tf.image.resize``, since ImageNet backbones need colour images of some size.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from PIL import Image

from shoulders.data.cache import cached_images
from shoulders.data.dataset import IMAGE_WORDING, PreparedData
from shoulders.data.images import Size, height_and_width
from shoulders.data.splits import SplitSettings, split_rows, split_shares


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # values 0..16 -> 0..255
    return pixels, bunch.target.astype(np.int64)


def load_digits(
    image_size: Size, *, split: SplitSettings | None = None, cache_dir: str | os.PathLike | None = None
) -> PreparedData:
    """1,797 digits, classes "0".."9", split 70/15/15 stratified by seed (or as ``split`` says), cached at
    ``image_size``."""
    size = height_and_width(image_size)  # validated
    split = split or SplitSettings()
    pixels, labels = _digits()
    digest = hashlib.sha256(pixels.tobytes() + labels.tobytes()).hexdigest()

    def render(out: np.ndarray) -> list:
        for index, grey in enumerate(pixels):
            resized = Image.fromarray(grey, "L").resize((size[1], size[0]), Image.Resampling.BILINEAR)
            out[index] = np.repeat(np.asarray(resized)[..., None], 3, axis=-1)
        return [], []

    images, _, _, path, decoded = cached_images(f"digits-{digest[:16]}-{size[0]}x{size[1]}", len(pixels), size, render, cache_dir)
    classes = tuple(str(d) for d in range(10))
    given = np.full(len(labels), "pool")
    splits, _, _ = split_rows(labels, given, classes, {"pool": "the digits"}, split, IMAGE_WORDING)
    return PreparedData(
        classes=classes,
        images=images,
        labels=labels,
        names=tuple(f"digits/{i:04d}" for i in range(len(labels))),
        splits=splits,
        split_note=(
            f"scikit-learn digits (8x8 grayscale, upscaled to RGB): split {split_shares(split)}, "
            f"stratified by class (seed {split.seed})."
        ),
        source="digits",
        fingerprint=digest,
        cache_path=path,
        decoded_now=decoded,
    )
