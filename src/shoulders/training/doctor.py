"""`shoulders doctor`: check a saved model (or run folder) against the recipe's rules, and explain each finding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras

from shoulders.backbones import PixelNormalization
from shoulders.io import read_json
from shoulders.training.guardrails import batchnorm_layers


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    explanation: str


def diagnose(target: str | os.PathLike) -> list[Finding]:
    """Findings for a run folder (model + metrics + splits) or a bare ``.keras`` file."""
    target = Path(target)
    model_path = target / "model.keras" if target.is_dir() else target
    if not model_path.exists():
        raise FileNotFoundError(f"{model_path} does not exist: give a run folder or a .keras model file")
    import shoulders.backbones  # noqa: F401  (registers custom layers for safe loading)

    _register_text_layers()
    model = keras.saving.load_model(model_path, safe_mode=True)
    findings = model_findings(model)
    if target.is_dir():
        findings += run_findings(target)
    return findings


def _register_text_layers() -> None:
    """keras-hub's and shoulders' text layers, when the text extra is installed (text models need them)."""
    try:
        import keras_hub  # noqa: F401

        from shoulders.text import layers  # noqa: F401
    except ImportError:
        pass


def is_text_model(model: keras.Model) -> bool:
    return isinstance(model.input, dict) and "token_ids" in model.input


def model_findings(model: keras.Model) -> list[Finding]:
    backbone = _nested_backbone(model)
    if backbone is None:
        return [Finding("backbone", False, "no nested pretrained backbone found: this is not a transfer-learning model.")]
    if is_text_model(model):
        return [_inference_mode(model, backbone), _masked_pooling(model), _logits_output(model), _loss_from_logits(model)]
    return [
        _preprocessing_inside(model, backbone),
        _inference_mode(model, backbone),
        _batchnorm_frozen(model),
        _pooling_head(model),
        _logits_output(model),
        _loss_from_logits(model),
    ]


def _nested_backbone(model: keras.Model) -> keras.Model | None:
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != "augmentation"]
    return nested[0] if nested else None


def _preprocessing_inside(model: keras.Model, backbone: keras.Model) -> Finding:
    names = [layer.name for layer in model.layers]
    normalizers = [layer for layer in model.layers if isinstance(layer, PixelNormalization)]
    if normalizers and names.index(normalizers[0].name) < names.index(backbone.name):
        contract = f"mean {normalizers[0].mean}, std {normalizers[0].std}"
        return Finding("preprocessing", True, f"the backbone's input contract is baked in ({contract}): callers send raw 0..255 pixels.")
    return Finding(
        "preprocessing",
        False,
        "no preprocessing layer before the backbone: every caller must normalise pixels exactly as the backbone "
        "was trained, and a wrong range trains fine while silently losing 10-20 points. Bake it into the model.",
    )


def _inference_mode(model: keras.Model, backbone: keras.Model) -> Finding:
    training = [node.arguments.kwargs.get("training") for node in backbone._inbound_nodes if node.arguments]
    if training and all(value is False for value in training):
        if is_text_model(model):
            return Finding("inference mode", True, "the encoder is called with training=False: its outputs are deterministic, so phase 1 can cache them.")
        return Finding("inference mode", True, "the backbone is called with training=False: BatchNorm keeps its ImageNet statistics.")
    return Finding(
        "inference mode",
        False,
        "the backbone is not called with training=False: once unfrozen, its BatchNorm layers would update their "
        "statistics from small batches of your data and wreck the pretrained features (the Keras 'BatchNorm trap').",
    )


def _batchnorm_frozen(model: keras.Model) -> Finding:
    trainable = [layer.name for layer in batchnorm_layers(model) if layer.trainable]
    if not trainable:
        return Finding("BatchNorm frozen", True, "no BatchNormalization layer is trainable.")
    return Finding(
        "BatchNorm frozen",
        False,
        f"{len(trainable)} BatchNormalization layers are trainable (e.g. {trainable[:3]}): fine-tuning them on a "
        "few hundred images destroys their pretrained normalisation. Freeze them.",
    )


def _pooling_head(model: keras.Model) -> Finding:
    if any(isinstance(layer, keras.layers.Flatten) for layer in model.layers):
        return Finding("pooling head", False, "the head flattens the feature map: millions of parameters that overfit. Use GlobalAveragePooling2D.")
    if any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers):
        return Finding("pooling head", True, "GlobalAveragePooling2D head: few parameters, robust on small data.")
    return Finding("pooling head", False, "no global pooling after the backbone.")


def _masked_pooling(model: keras.Model) -> Finding:
    from shoulders.text.layers import MaskedMeanPooling

    if any(isinstance(layer, MaskedMeanPooling) for layer in model.layers):
        return Finding("pooling head", True, "masked mean pooling over the tokens: padding never dilutes a short text.")
    return Finding(
        "pooling head", False,
        "no masked mean pooling after the encoder: averaging padding tokens (or using only [CLS] of an encoder not "
        "trained for it) changes a text's features with the batch's padding. Pool with the padding mask.",
    )


def _logits_output(model: keras.Model) -> Finding:
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if isinstance(last, keras.layers.Dense) and activation == "linear":
        return Finding("logits output", True, "the model outputs logits; probabilities come from a softmax outside the loss.")
    return Finding(
        "logits output",
        False,
        f"the last layer applies {activation or 'something'}: with a from_logits=True loss that is a double softmax; "
        "output logits and apply softmax only for reading probabilities.",
    )


def _loss_from_logits(model: keras.Model) -> Finding:
    loss = getattr(model, "loss", None)
    if loss is None:
        return Finding("loss", True, "not compiled (inference only): nothing to check.")
    from_logits = getattr(loss, "from_logits", None)
    if from_logits:
        return Finding("loss", True, "loss computed from logits (numerically stable).")
    return Finding("loss", False, "the loss does not take logits while the model outputs them: compile with from_logits=True.")


def run_findings(folder: Path) -> list[Finding]:
    findings = []
    metrics = read_json(folder / "metrics.json") if (folder / "metrics.json").exists() else {}
    lr1, lr2 = metrics.get("lr_phase1"), metrics.get("lr_phase2")
    if lr2 is not None:
        ok = lr2 < lr1
        findings.append(Finding("phase-2 learning rate", ok, f"phase 2 ran at {lr2:g} vs {lr1:g} in phase 1" + ("" if ok else ": too high, it erases pretrained features.")))
        start, ran = metrics.get("phase2_start_epoch"), metrics.get("epochs_phase1")
        findings.append(Finding("epoch numbering", start == ran, f"phase 2 started at epoch {start} after {ran} head epochs (initial_epoch continues the count)."))
    if metrics.get("task") == "text":
        present = (folder / "tokenizer.json").exists()
        findings.append(Finding("tokenizer saved", present, "tokenizer.json (the encoder's own WordPiece vocabulary) is saved with the model."
                                if present else "no tokenizer.json next to the model: texts cannot be turned into the token ids it was trained on."))
    if (folder / "splits.json").exists():
        splits = read_json(folder / "splits.json")
        test = set(splits.get("test", []))
        seen = set(splits.get("train", [])) | set(splits.get("val", []))
        overlap = sorted(test & seen)
        findings.append(
            Finding("test split untouched", not overlap, "no test item was used for training or validation."
                    if not overlap else f"{len(overlap)} test files also appear in train/val (e.g. {overlap[:3]}): the test score is not honest.")
        )
    return findings
