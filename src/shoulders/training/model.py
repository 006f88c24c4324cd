"""The transfer-learning model: raw pixels -> augmentation -> preprocessing -> backbone -> head.

Layer names are part of the contract (`doctor`, phase control and exports find layers by them):
``augmentation``, ``<backbone>_preprocessing``, the backbone body, ``pool``, ``head_dropout``, ``logits``.
"""

from __future__ import annotations

import keras

from shoulders.backbones import BackboneSpec, body, get, image_shape, preprocessing_layer
from shoulders.backbones.models import raw_pixel_input
from shoulders.config import Augmentation

HEAD_LAYERS = ("head_dropout", "logits")
POOL_LAYER = "pool"
AUGMENTATION_LAYER = "augmentation"


def augmentation_block(augmentation: Augmentation, seed: int) -> keras.Sequential:
    """Random flip/rotation/zoom; active only when the model is called with ``training=True``."""
    layers: list[keras.layers.Layer] = []
    if augmentation.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if augmentation.rotation > 0:
        layers.append(keras.layers.RandomRotation(augmentation.rotation, fill_mode="reflect", seed=seed))
    if augmentation.zoom > 0:
        layers.append(keras.layers.RandomZoom(augmentation.zoom, fill_mode="reflect", seed=seed))
    return keras.Sequential(layers, name=AUGMENTATION_LAYER)


def build_classifier(
    backbone: str,
    num_classes: int,
    *,
    image_size: int | None = None,
    weights: str | None = "imagenet",
    augmentation: Augmentation | None = None,
    dropout: float = 0.2,
    seed: int = 0,
    frozen_statistics: bool = True,
    backbone_body: keras.Model | None = None,
) -> keras.Model:
    """The recipe's model, backbone frozen. Returns logits; train with a ``from_logits=True`` loss.

    The backbone is called with ``training=False`` always, so its BatchNorm layers use their
    ImageNet statistics in both phases (the BatchNorm trap of the Keras fine-tuning guide).
    ``frozen_statistics=False`` is only for the from-scratch baseline, whose random BatchNorm
    has no statistics worth keeping and must learn them. ``backbone_body``: an already built
    ``backbones.body(backbone, image_size, weights)`` (built while the data decodes).
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes. Received: {num_classes}")
    spec = get(backbone)
    inputs = raw_pixel_input(image_shape(spec, image_size))
    x = inputs
    if augmentation is not None and augmentation.enabled:
        x = augmentation_block(augmentation, seed)(x)
    x = preprocessing_layer(spec)(x)
    backbone_model = backbone_body if backbone_body is not None else body(backbone, image_size, weights)
    backbone_model.trainable = False
    x = backbone_model(x, training=False) if frozen_statistics else backbone_model(x)
    x = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")


def backbone_of(model: keras.Model) -> keras.Model:
    """The nested backbone body inside a classifier built by `build_classifier`."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name != AUGMENTATION_LAYER:
            return layer
    raise ValueError(f"model {model.name} contains no nested backbone model")


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
