"""Build registered backbones into models that take raw RGB pixels (0..255).

One builder for every backbone (as timm's ``build_model_with_cfg``): preprocessing baked in, the
body always called with ``training=False`` so BatchNorm keeps its ImageNet statistics, and weight
errors explained the same way for every family.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import keras

from shoulders.backbones.preprocessing import normalization
from shoulders.backbones.registry import BackboneSpec, get, offline_names
from shoulders.backbones.weights import PRETRAINED, WeightsNotFoundError, WeightsUnavailableError, looks_like_download_failure
from shoulders.errors import ShouldersError


class ImageSizeError(ShouldersError, ValueError):
    """The image size is below what a backbone can take (its feature map would vanish)."""


class NoClassifierError(ShouldersError, ValueError):
    """The backbone ships no ImageNet classifier head (a text encoder, say)."""


def image_shape(spec: BackboneSpec, image_size: int | None) -> tuple[int, int, int]:
    """(size, size, 3) for a backbone, refusing sizes whose feature map would vanish."""
    size = spec.image_size if image_size is None else int(image_size)
    if size < spec.min_image_size:
        raise ImageSizeError(
            f"image size {size} is too small for {spec.name}: its feature map would be smaller than 1x1 "
            f"(it downsamples 32x). Use an image size of at least {spec.min_image_size} (its default is {spec.image_size})."
        )
    return (size, size, 3)


def preprocessing_layer(spec: BackboneSpec) -> keras.layers.Layer:
    """The backbone's input contract as one of Keras' own layers, named ``<backbone>_preprocessing``."""
    contract = spec.preprocessing
    return normalization(contract.mean, contract.std, contract.reverse_channels, name=f"{spec.name}_preprocessing")


def body(name: str, image_size: int | None = None, weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """The backbone without its classifier: normalised pixels (tokens for text) -> feature map.

    ``weights``: "imagenet" (or "pretrained"), None (random init, e.g. a from-scratch baseline), or a
    local file (a model folder for text encoders).
    """
    spec = get(name)
    shape = image_shape(spec, image_size) if spec.kind == "image" else None
    if weights not in (None, *PRETRAINED) and not os.path.exists(weights):
        raise WeightsNotFoundError(
            f"weights file {weights} does not exist. Pass weights='imagenet', None or an existing file."
        )
    with _explaining_failed_downloads(spec, weights):
        return spec.build_body(shape, weights)


@contextmanager
def _explaining_failed_downloads(spec: BackboneSpec, weights: str | os.PathLike | None) -> Iterator[None]:
    """Turn a failed download of ``spec``'s pretrained weights into `WeightsUnavailableError`, naming
    the offline options; any other error passes through untouched."""
    try:
        yield
    except Exception as error:  # keras.applications raises a bare Exception on a failed download
        if weights in PRETRAINED and not spec.offline and looks_like_download_failure(error):
            raise WeightsUnavailableError(
                f"cannot download the pretrained weights of {spec.name}, {spec.weights_origin} ({error}). "
                f"Offline, use a bundled {spec.kind} backbone ({', '.join(offline_names(spec.kind))}). "
                f"{spec.weights.offline_hint}"
            ) from error
        raise


# Layers whose output is random under training=True; GaussianNoise's amount is ``stddev``.
_RANDOM_IN_TRAINING = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.AlphaDropout)


def inference_only(backbone: keras.Model) -> keras.Model:
    """Switch off every dropout, noise and stochastic-depth layer inside ``backbone`` (rates set to 0,
    which their saved configs keep), so a frozen backbone computes exactly what it does in inference.

    Calling it with ``training=False`` is not enough: Keras' Functional model hands the outer call's
    ``training`` to nested models (keras-team/keras#20285), so under ``fit()`` the backbone runs in
    training mode. BatchNorm is safe there because its layers stay non-trainable; dropout is not.
    """
    for layer in backbone._flatten_layers(include_self=False):
        if isinstance(layer, _RANDOM_IN_TRAINING):
            layer.rate = 0.0
        elif isinstance(layer, keras.layers.GaussianNoise):
            layer.stddev = 0.0
        for attribute in ("drop_path_rate", "dropout", "_dropout"):  # stochastic depth; keras-hub's and
            stored = not isinstance(getattr(type(layer), attribute, None), property)  # MultiHeadAttention's configs
            if stored and isinstance(getattr(layer, attribute, None), float):
                setattr(layer, attribute, 0.0)
    return backbone


def raw_pixel_input(shape: tuple[int, int, int]) -> keras.KerasTensor:
    return keras.Input(shape=shape, name="pixels")  # float32 RGB 0..255; uint8 arrays are cast


def feature_extractor(name: str, image_size: int | None = None, weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """Raw RGB pixels (0..255) -> pooled features of width ``spec.feature_width``."""
    spec = get(name)
    inputs = raw_pixel_input(image_shape(spec, image_size))
    x = preprocessing_layer(spec)(inputs)
    x = inference_only(body(name, image_size, weights))(x, training=False)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name=f"{name}_features")


def imagenet_classifier(name: str, weights: str | os.PathLike = "imagenet") -> keras.Model:
    """Raw RGB pixels (0..255) at the backbone's size -> 1000 ImageNet logits (the full pretrained network)."""
    spec = get(name)
    if spec.classifier is None:
        raise NoClassifierError(
            f"{name} has no ImageNet classifier head to load. Use an image backbone that has one: "
            f"{', '.join(n for n in offline_names('image') if get(n).classifier is not None)} (offline)."
        )
    features = feature_extractor(name, None, weights)
    x = keras.layers.Dropout(spec.dropout, name="dropout")(features.output)
    outputs = keras.layers.Dense(1000, name="predictions")(x)
    model = keras.Model(features.input, outputs, name=f"{name}_imagenet")
    with _explaining_failed_downloads(spec, weights):
        kernel, bias = spec.classifier(weights)
    model.get_layer("predictions").set_weights([kernel, bias])
    return model


def block_groups(spec: BackboneSpec, model: keras.Model) -> list[tuple[str, list[keras.layers.Layer]]]:
    """The body's layers grouped into blocks, bottom to top, for "unfreeze the top k blocks".

    A layer whose name names no block (an input, a pad, a final norm) joins the block before it;
    layers before the first named block form the "stem".
    """
    groups: list[tuple[str, list[keras.layers.Layer]]] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        block = spec.block_of(layer.name)
        if block is None:
            block = groups[-1][0] if groups else "stem"
        if not groups or groups[-1][0] != block:
            groups.append((block, []))
        groups[-1][1].append(layer)
    return groups


def weights_sha256(name: str, weights: str | os.PathLike | None) -> str:
    """The sha256 of the weights file a backbone loads, for lineage ("" when unknown or random)."""
    return get(name).weights.sha256_for(weights)
