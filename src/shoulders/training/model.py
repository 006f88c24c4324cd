"""What every task's classifier shares: its layer names, its nested backbone, its head.

Layer names are part of the contract (`doctor`, phase control and exports find layers by them):
``augmentation``, ``<backbone>_preprocessing``, the backbone body, ``pool``, ``head_dropout``, ``logits``.
Task recipes build the classifier (`shoulders.image.model`, `shoulders.text.model`) from these names.
"""

from __future__ import annotations

import keras

from shoulders.backbones import BackboneSpec
from shoulders.errors import ShouldersError

HEAD_LAYERS = ("head_dropout", "logits")
POOL_LAYER = "pool"
AUGMENTATION_LAYER = "augmentation"


class NotAShouldersModelError(ShouldersError, ValueError):
    """A model without the layout shoulders builds (a nested backbone, a ``logits`` head)."""


class ClassCountError(ShouldersError, ValueError):
    """A classifier needs at least two classes."""


def check_class_count(num_classes: int) -> None:
    if num_classes < 2:
        raise ClassCountError(f"a classifier needs at least 2 classes. Received: {num_classes}")


def backbone_of(model: keras.Model) -> keras.Model:
    """The nested backbone body inside a classifier built by `build_classifier`."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name != AUGMENTATION_LAYER:
            return layer
    raise NotAShouldersModelError(
        f"model {model.name} contains no nested backbone model: give a model built by shoulders (a run's model.keras)"
    )


def feature_model(model: keras.Model) -> keras.Model:
    """Raw pixels -> pooled features, sharing the classifier's own layers (so cached features are
    exactly what the classifier computes at inference)."""
    return keras.Model(model.input, model.get_layer(POOL_LAYER).output, name="features")


def fast_feature_model(model: keras.Model, spec: BackboneSpec, inference_body: keras.Model | None = None) -> keras.Model:
    """`feature_model` in the backbone's inference form when it has one (BatchNorm folded into the
    convolutions): the same function to float rounding (~1e-5), about twice as fast on a CPU. Only
    for a frozen backbone: it is a copy, so later fine-tuning does not reach it. ``inference_body``:
    that form, already built from this model's (still untrained) backbone."""
    if spec.inference_body is None:
        return feature_model(model)
    inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
    x = model.get_layer(f"{spec.name}_preprocessing")(inputs)
    body = inference_body if inference_body is not None else spec.inference_body(backbone_of(model))
    x = body(x, training=False)
    outputs = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)
    return keras.Model(inputs, outputs, name="features_folded")


def head_model(model: keras.Model) -> keras.Model:
    """A standalone copy of the head (dropout + logits) that trains on cached features."""
    logits = model.get_layer("logits")
    dropout = model.get_layer("head_dropout")
    inputs = keras.Input(shape=(logits.kernel.shape[0],), name="features")
    x = keras.layers.Dropout(dropout.rate, seed=dropout.seed, name="head_dropout")(inputs)
    outputs = keras.layers.Dense(logits.units, name="logits")(x)
    head = keras.Model(inputs, outputs, name="head")
    head.get_layer("logits").set_weights(logits.get_weights())
    return head
