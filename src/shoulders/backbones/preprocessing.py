"""The preprocessing contract of a backbone, as one of Keras' own layers inside the model.

Baking the contract into the model makes a wrong input range impossible: every shoulders model takes
raw RGB pixels in 0..255. The layer is Keras' own (`Rescaling`, or a frozen 1x1 `Conv2D` where the
channels are also reordered), so a saved model loads with ``keras.saving.load_model(path,
safe_mode=True)`` where only Keras is installed. `PixelNormalization` stays registered for models
saved before (it needs shoulders to load).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from shoulders.errors import ShouldersError


class PreprocessingError(ShouldersError, ValueError):
    """A preprocessing contract that cannot be applied (a zero std would divide by zero)."""


@keras.saving.register_keras_serializable(package="shoulders")
class PixelNormalization(keras.layers.Layer):
    """Map raw RGB pixels (0..255) to what a backbone was trained on: ``(x[..., order] - mean) / std``.

    Args:
        mean: per-channel (or one shared) value subtracted, in the backbone's channel order.
        std: per-channel (or one shared) divisor.
        reverse_channels: True for Caffe-style backbones (VGG16, ResNet50) that expect BGR.
    """

    def __init__(
        self,
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
        reverse_channels: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.mean = [float(v) for v in _as_list(mean)]
        self.std = [float(v) for v in _as_list(std)]
        if any(value == 0 for value in self.std):
            raise PreprocessingError(f"PixelNormalization std must be non-zero. Received: {self.std}")
        self.reverse_channels = bool(reverse_channels)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.reverse_channels:
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "mean": self.mean,
            "std": self.std,
            "reverse_channels": self.reverse_channels,
        }


def normalization(mean: Sequence[float], std: Sequence[float], reverse_channels: bool, name: str) -> keras.layers.Layer:
    """``(x[..., order] - mean) / std`` as one built-in layer: `Rescaling` with per-channel scale and
    offset, or, when the channels are reversed (RGB in, BGR for Caffe-style backbones), a frozen 1x1
    `Conv2D` whose kernel is the permutation scaled by 1/std and whose bias is -mean/std."""
    if any(value == 0 for value in std):
        raise PreprocessingError(f"preprocessing std must be non-zero. Received: {list(std)}")
    scale = 1.0 / np.broadcast_to(np.asarray(std, np.float64), (3,))
    offset = -np.broadcast_to(np.asarray(mean, np.float64), (3,)) * scale
    if not reverse_channels:
        return keras.layers.Rescaling(scale=scale.tolist(), offset=offset.tolist(), name=name)
    layer = keras.layers.Conv2D(3, 1, name=name, trainable=False)
    layer.build((None, None, None, 3))
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out in range(3):
        kernel[0, 0, 2 - out, out] = scale[out]  # output channel `out` reads input channel 2 - out (RGB -> BGR)
    layer.set_weights([kernel, offset.astype(np.float32)])
    return layer


def _as_list(value: float | Sequence[float]) -> list[float]:
    return list(value) if isinstance(value, Sequence) else [value]
