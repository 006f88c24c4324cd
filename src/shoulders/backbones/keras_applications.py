"""Backbones from ``keras.applications``: real ImageNet weights for online users.

Their weights download on first use (then live in ~/.keras/models). Each entry records the
preprocessing contract of its family's ``preprocess_input``, checked against it in the tests. Their
`Weights` records name no file: which one keras fetches depends on the image size (MobileNetV2 has
one per size), so lineage records no digest for them rather than a wrong one.
"""

from __future__ import annotations

import os

import keras

from shoulders.backbones.registry import BackboneSpec, Preprocessing, register
from shoulders.backbones.weights import Weights

_TORCH_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_TORCH_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
_CAFFE = Preprocessing((103.939, 116.779, 123.68), (1.0,), True, "RGB->BGR, minus ImageNet means (caffe)")
_TF = Preprocessing((127.5,), (127.5,), False, "x / 127.5 - 1 (tf)")
_INSIDE = Preprocessing((0.0,), (1.0,), False, "raw 0..255: the model normalises inside")
_OFFLINE_HINT = "Or put the weights file in ~/.keras/models, or pass weights=PATH (--weights PATH) to a local weights file."


def _builder(constructor):
    def build(input_shape: tuple, weights: str | os.PathLike | None) -> keras.Model:
        return constructor(include_top=False, weights=weights, input_shape=input_shape)

    return build


def _classifier_from(constructor):
    """ImageNet head of a keras.applications model: build it with its top and take the last Dense."""

    def load(weights: str | os.PathLike):
        model = constructor(include_top=True, weights=weights, classifier_activation=None)
        kernel, bias = model.layers[-1].get_weights()
        return kernel, bias

    return load


def _entry(name, constructor, feature_width, params, preprocessing, block_pattern, crop=0.875) -> None:
    register(
        BackboneSpec(
            name=name,
            family=constructor.__module__.rsplit(".", 1)[-1],
            kind="image",
            build_body=_builder(constructor),
            image_size=224,
            feature_width=feature_width,
            params=params,
            preprocessing=preprocessing,
            block_pattern=block_pattern,
            weights=Weights(
                source="download",
                origin=f"keras.applications.{constructor.__name__} (downloads on first use)",
                offline_hint=_OFFLINE_HINT,
            ),
            crop_fraction=crop,
            classifier=_classifier_from(constructor),
            reference=f"https://keras.io/api/applications/ ({constructor.__name__})",
        )
    )


A = keras.applications
_entry("mobilenet_v2", A.MobileNetV2, 1280, 2_257_984, _TF, r"^(expanded_conv|block_\d+|Conv_1)")
_entry("vgg16", A.VGG16, 512, 14_714_688, _CAFFE, r"^(block\d+)_")
_entry("resnet50", A.ResNet50, 2048, 23_587_712, _CAFFE, r"^(conv\d_block\d+)_")
_entry("efficientnet_v2_b0", A.EfficientNetV2B0, 1280, 5_919_312, _INSIDE, r"^(block\d+[a-z]|top)_", crop=1.0)
_entry("convnext_tiny", A.ConvNeXtTiny, 768, 27_820_128, _INSIDE, r"(stage_\d+_block_\d+|downsampling_block_\d+)", crop=1.0)
