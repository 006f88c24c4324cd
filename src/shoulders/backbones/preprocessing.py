"""The preprocessing contract of a backbone, as one serializable Keras layer.

Baking the contract into the model makes a wrong input range impossible: every shoulders model takes
raw RGB pixels in 0..255. It is a real layer (not a Lambda) so models load with ``safe_mode=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
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


def _as_list(value: float | Sequence[float]) -> list[float]:
    return list(value) if isinstance(value, Sequence) else [value]
