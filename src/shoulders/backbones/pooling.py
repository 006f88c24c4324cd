"""The pooling of token vectors that BERT-style encoders are trained with (sentence-transformers' mean
pooling), as a serializable layer (no Lambda: models load with ``safe_mode=True``). It sits with the
encoders so that importing `shoulders.backbones` registers every custom layer a saved model can hold."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="shoulders")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean of the token vectors where ``padding_mask`` is 1: padding never dilutes a short text
    (sentence-transformers' mean pooling, which all-MiniLM-L6-v2 was trained with)."""

    def call(self, sequence, padding_mask):
        mask = ops.expand_dims(ops.cast(padding_mask, sequence.dtype), -1)
        total = ops.sum(sequence * mask, axis=1)
        return total / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, sequence_shape, padding_mask_shape):
        return (sequence_shape[0], sequence_shape[-1])
