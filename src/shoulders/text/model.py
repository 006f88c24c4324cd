"""The text classifier: tokens -> encoder (frozen, inference mode) -> masked mean pooling -> Dropout -> logits.

Layer names follow the image classifier's contract (``pool``, ``head_dropout``, ``logits``, the
encoder nested under its registry name), so phase control, guardrails and `doctor` work unchanged.
"""

from __future__ import annotations

import keras

from shoulders.backbones.models import inference_only
from shoulders.backbones.tokenizer import INPUT_NAMES
from shoulders.training.model import check_class_count


def token_inputs() -> dict[str, keras.KerasTensor]:
    return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_NAMES}


def build_text_classifier(
    encoder: keras.Model, num_classes: int, *, dropout: float = 0.1, seed: int = 0, inference_mode: bool = True
) -> keras.Model:
    """Logits over ``num_classes``; train with a ``from_logits=True`` loss.

    The encoder runs in inference mode in both phases, also under ``fit()`` (its dropout off,
    `backbones.inference_only`), so its outputs are a deterministic function of the tokens: phase 1
    caches them, and the fine-tuned model is exactly what was evaluated. ``inference_mode=False`` is
    for the from-scratch baseline, which needs its dropout. Pooling is Keras' own masked
    `GlobalAveragePooling1D`: padding never dilutes a short text.
    """
    check_class_count(num_classes)
    inputs = token_inputs()
    encoder.trainable = False
    sequence = inference_only(encoder)(inputs, training=False) if inference_mode else encoder(inputs)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(sequence, mask=inputs["padding_mask"])
    x = keras.layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"{encoder.name}_classifier")
