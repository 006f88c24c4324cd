"""Pretrained backbones: one registry, one builder, preprocessing always inside the model.

    >>> from shoulders import backbones
    >>> backbones.names()[:3]
    ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
    >>> model = backbones.imagenet_classifier("efficientnet_lite0")   # raw pixels -> 1000 logits

Importing this package registers every family, one module each (bundled ones first, so they lead
`names()`): efficientnet_lite, keras_applications, bert (text). The text extra is needed only to
build a text encoder, not to list it.
"""

from shoulders.backbones import efficientnet_lite as _efficientnet_lite  # noqa: F401  (registers)
from shoulders.backbones import keras_applications as _keras_applications  # noqa: F401  (registers)
from shoulders.backbones import bert as _bert  # noqa: F401  (registers the text encoders)
from shoulders.backbones.bert import TextExtraMissingError
from shoulders.backbones.imagenet_classes import imagenet_class_names
from shoulders.backbones.models import (
    ImageSizeError,
    NoClassifierError,
    block_groups,
    body,
    feature_extractor,
    image_shape,
    imagenet_classifier,
    inference_only,
    preprocessing_layer,
    weights_sha256,
)
from shoulders.backbones.pooling import MaskedMeanPooling
from shoulders.backbones.preprocessing import PixelNormalization, PreprocessingError
from shoulders.backbones.registry import (
    BackboneSpec,
    DuplicateBackboneError,
    Preprocessing,
    UnknownBackboneError,
    get,
    names,
    offline_names,
)
from shoulders.backbones.torch_pickle import UnsafeWeightsError, WeightsFileError
from shoulders.backbones.weights import PRETRAINED, Weights, WeightsNotFoundError, WeightsUnavailableError

__all__ = [
    "PRETRAINED",
    "BackboneSpec",
    "DuplicateBackboneError",
    "ImageSizeError",
    "MaskedMeanPooling",
    "NoClassifierError",
    "PixelNormalization",
    "Preprocessing",
    "PreprocessingError",
    "TextExtraMissingError",
    "UnknownBackboneError",
    "UnsafeWeightsError",
    "Weights",
    "WeightsFileError",
    "WeightsNotFoundError",
    "WeightsUnavailableError",
    "block_groups",
    "body",
    "feature_extractor",
    "get",
    "image_shape",
    "imagenet_class_names",
    "imagenet_classifier",
    "inference_only",
    "names",
    "offline_names",
    "preprocessing_layer",
    "weights_sha256",
]
