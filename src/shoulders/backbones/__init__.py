"""Pretrained backbones: one registry, one builder, preprocessing always inside the model.

    >>> from shoulders import backbones
    >>> backbones.names()[:3]
    ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
    >>> model = backbones.imagenet_classifier("efficientnet_lite0")   # raw pixels -> 1000 logits
"""

from shoulders.backbones import efficientnet_lite as _efficientnet_lite  # noqa: F401  (registers)
from shoulders.backbones import keras_applications as _keras_applications  # noqa: F401  (registers)
from shoulders.text import encoders as _text_encoders  # noqa: F401  (registers the text kind)
from shoulders.backbones.imagenet_classes import imagenet_class_names
from shoulders.backbones.models import (
    WeightsUnavailableError,
    block_groups,
    body,
    feature_extractor,
    image_shape,
    imagenet_classifier,
    preprocessing_layer,
    weights_sha256,
)
from shoulders.backbones.preprocessing import PixelNormalization
from shoulders.backbones.registry import BackboneSpec, Preprocessing, UnknownBackboneError, get, names, offline_names
from shoulders.backbones.torch_pickle import UnsafeWeightsError, WeightsFileError

__all__ = [
    "BackboneSpec",
    "PixelNormalization",
    "Preprocessing",
    "UnknownBackboneError",
    "UnsafeWeightsError",
    "WeightsFileError",
    "WeightsUnavailableError",
    "block_groups",
    "body",
    "feature_extractor",
    "get",
    "image_shape",
    "imagenet_class_names",
    "imagenet_classifier",
    "names",
    "offline_names",
    "preprocessing_layer",
    "weights_sha256",
]
