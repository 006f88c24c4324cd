"""Build registered backbones into models that take raw RGB pixels (0..255).

One builder for every backbone (as timm's ``build_model_with_cfg``): preprocessing baked in, the
body always called with ``training=False`` so BatchNorm keeps its ImageNet statistics, and weight
errors explained.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from shoulders.backbones.preprocessing import PixelNormalization
from shoulders.backbones.registry import BackboneSpec, get, offline_names


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be had here (no network, no local file)."""


def image_shape(spec: BackboneSpec, image_size: int | None) -> tuple[int, int, int]:
    """(size, size, 3) for a backbone, refusing sizes whose feature map would vanish."""
    size = spec.image_size if image_size is None else int(image_size)
    if size < spec.min_image_size:
        raise ValueError(
            f"image size {size} is too small for {spec.name}: its feature map would be smaller than 1x1 "
            f"(it downsamples 32x). Use an image size of at least {spec.min_image_size} (its default is {spec.image_size})."
        )
    return (size, size, 3)


def preprocessing_layer(spec: BackboneSpec) -> PixelNormalization:
    contract = spec.preprocessing
    return PixelNormalization(contract.mean, contract.std, contract.reverse_channels, name=f"{spec.name}_preprocessing")


def body(name: str, image_size: int | None = None, weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """The backbone without its classifier: normalised pixels -> feature map.

    ``weights``: "imagenet", None (random init, e.g. a from-scratch baseline), or a local file.
    """
    spec = get(name)
    shape = image_shape(spec, image_size) if spec.kind == "image" else None
    if weights not in (None, "imagenet", "pretrained") and not os.path.exists(weights):
        raise FileNotFoundError(f"weights file {weights} does not exist. Pass weights='imagenet', None or an existing file.")
    try:
        return spec.build_body(shape, weights)
    except Exception as error:  # keras.applications raises a bare Exception on a failed download
        if weights == "imagenet" and not spec.offline and _looks_like_download_failure(error):
            raise WeightsUnavailableError(_offline_message(spec, error)) from error
        raise


def _looks_like_download_failure(error: Exception) -> bool:
    text = str(error).lower()
    return any(word in text for word in ("url fetch failure", "urlopen", "name or service", "network", "connection"))


def _offline_message(spec: BackboneSpec, error: Exception) -> str:
    return (
        f"cannot download the ImageNet weights of {spec.name} ({error}). Offline, use a bundled backbone "
        f"({', '.join(offline_names('image'))}), put the weights file in ~/.keras/models, or pass weights=PATH "
        "(--weights PATH) to a local weights file."
    )


def raw_pixel_input(shape: tuple[int, int, int]) -> keras.KerasTensor:
    return keras.Input(shape=shape, name="pixels")  # float32 RGB 0..255; uint8 arrays are cast


def feature_extractor(name: str, image_size: int | None = None, weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """Raw RGB pixels (0..255) -> pooled features of width ``spec.feature_width``."""
    spec = get(name)
    inputs = raw_pixel_input(image_shape(spec, image_size))
    x = preprocessing_layer(spec)(inputs)
    x = body(name, image_size, weights)(x, training=False)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name=f"{name}_features")


def imagenet_classifier(name: str, weights: str | os.PathLike = "imagenet") -> keras.Model:
    """Raw RGB pixels (0..255) at the backbone's size -> 1000 ImageNet logits (the full pretrained network)."""
    spec = get(name)
    if spec.classifier is None:
        raise ValueError(f"{name} has no ImageNet classifier head to load.")
    features = feature_extractor(name, None, weights)
    x = keras.layers.Dropout(spec.dropout, name="dropout")(features.output)
    outputs = keras.layers.Dense(1000, name="predictions")(x)
    model = keras.Model(features.input, outputs, name=f"{name}_imagenet")
    try:
        kernel, bias = spec.classifier(weights)
    except Exception as error:
        if not spec.offline and _looks_like_download_failure(error):
            raise WeightsUnavailableError(_offline_message(spec, error)) from error
        raise
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
    from shoulders.backbones import efficientnet_lite
    from shoulders.backbones.torch_pickle import sha256_of

    spec = get(name)
    if weights is None:
        return ""
    if spec.kind == "text":
        from shoulders.text.encoders import minilm_folder

        folder = minilm_folder() if spec.offline and weights in ("imagenet", "pretrained") else Path(weights)
        return sha256_of(folder / "model.safetensors") if (folder / "model.safetensors").exists() else ""
    if weights != "imagenet":
        return sha256_of(weights)
    if spec.family == "efficientnet_lite":
        return sha256_of(efficientnet_lite.bundled_weights_path(int(spec.name.removeprefix("efficientnet_lite"))))
    return ""
