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
from shoulders.data.dataset import PreparedData, check_fractions, stratified_split
from shoulders.data.images import Size, _target


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # values 0..16 -> 0..255
    return pixels, bunch.target.astype(np.int64)


def load_digits(
    image_size: Size,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    cache_dir: str | os.PathLike | None = None,
) -> PreparedData:
    """1,797 digits, classes "0".."9", split 70/15/15 stratified by ``seed``, cached at ``image_size``."""
    size = _target(image_size)[::-1]  # (height, width), validated
    check_fractions(val_fraction, test_fraction)
    pixels, labels = _digits()
    digest = hashlib.sha256(pixels.tobytes() + labels.tobytes()).hexdigest()

    def render(out: np.ndarray) -> list:
        for index, grey in enumerate(pixels):
            resized = Image.fromarray(grey, "L").resize((size[1], size[0]), Image.Resampling.BILINEAR)
            out[index] = np.repeat(np.asarray(resized)[..., None], 3, axis=-1)
        return [], []

    images, _, _, path, decoded = cached_images(f"digits-{digest[:16]}-{size[0]}x{size[1]}", len(pixels), size, render, cache_dir)
    rows = np.arange(len(labels))
    splits = stratified_split(labels, rows, {"test": test_fraction, "val": val_fraction}, seed)
    return PreparedData(
        classes=tuple(str(d) for d in range(10)),
        images=images,
        labels=labels,
        names=tuple(f"digits/{i:04d}" for i in range(len(labels))),
        splits={name: splits[name] for name in ("train", "val", "test")},
        split_note=(
            f"scikit-learn digits (8x8 grayscale, upscaled to RGB): split {100 * (1 - val_fraction - test_fraction):.0f}/"
            f"{100 * val_fraction:.0f}/{100 * test_fraction:.0f}, stratified by class (seed {seed})."
        ),
        source="digits",
        fingerprint=digest,
        cache_path=path,
        decoded_now=decoded,
    )
