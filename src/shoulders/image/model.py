"""The image classifier: raw pixels -> augmentation -> preprocessing -> backbone -> head.

Layer names are part of the contract (`doctor`, phase control and exports find layers by them):
``augmentation``, ``<backbone>_preprocessing``, the backbone body, ``pool``, ``head_dropout``, ``logits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from shoulders.backbones import body, get, image_shape, inference_only, preprocessing_layer
from shoulders.backbones.models import raw_pixel_input
from shoulders.config import Augmentation
from shoulders.training.model import AUGMENTATION_LAYER, POOL_LAYER, check_class_count


@dataclass(frozen=True)
class ClassifierOptions:
    """How the classifier is built beyond its backbone and class count."""

    image_size: int | None = None
    weights: str | None = "imagenet"
    augmentation: Augmentation | None = None
    dropout: float = 0.2
    seed: int = 0
    # False only for the from-scratch baseline, whose random BatchNorm must learn its statistics
    frozen_statistics: bool = True


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
    options: ClassifierOptions | None = None,
    backbone_body: keras.Model | None = None,
    **option_values,
) -> keras.Model:
    """The recipe's model, backbone frozen. Returns logits; train with a ``from_logits=True`` loss.

    The backbone runs in inference mode in both phases: its BatchNorm layers use their ImageNet
    statistics (the BatchNorm trap of the Keras fine-tuning guide; they are never trainable) and its
    dropout and stochastic depth are off (`backbones.inference_only`), also under ``fit()``.
    ``options`` (or the same fields as keywords: ``image_size``, ``weights``, ``augmentation``,
    ``dropout``, ``seed``, ``frozen_statistics``) shape the rest. ``backbone_body``: an already built
    ``backbones.body(backbone, image_size, weights)`` (built while the data decodes).
    """
    options = options or ClassifierOptions(**option_values)
    check_class_count(num_classes)
    spec = get(backbone)
    inputs = raw_pixel_input(image_shape(spec, options.image_size))
    x = inputs
    if options.augmentation is not None and options.augmentation.enabled:
        x = augmentation_block(options.augmentation, options.seed)(x)
    x = preprocessing_layer(spec)(x)
    backbone_model = backbone_body if backbone_body is not None else body(backbone, options.image_size, options.weights)
    backbone_model.trainable = False
    x = inference_only(backbone_model)(x, training=False) if options.frozen_statistics else backbone_model(x)
    x = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)
    x = keras.layers.Dropout(options.dropout, seed=options.seed, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)  # float32 logits under mixed precision
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")
