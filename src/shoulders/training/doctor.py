"""`shoulders doctor`: check a saved model (or run folder) against the recipe's rules, and explain each finding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras

from shoulders.backbones import MaskedMeanPooling, PixelNormalization
from shoulders.errors import ShouldersError
from shoulders.io import read_json
from shoulders.runs import layout
from shoulders.training.guardrails import batchnorm_layers

class DoctorTargetError(ShouldersError, FileNotFoundError):
    """`shoulders doctor` was given a path that is neither a run folder nor a .keras file."""


@dataclass(frozen=True)
class Finding:
    """One rule checked: its name, whether the model keeps it, and why it matters (or what to do)."""

    check: str
    ok: bool
    explanation: str


def _finding(check: str, ok: bool, good: str, bad: str) -> Finding:
    """One check's result, explained either way: what is right, or what goes wrong and what to do."""
    return Finding(check, ok, good if ok else bad)


def diagnose(target: str | os.PathLike) -> list[Finding]:
    """Findings for a run folder (model + metrics + splits) or a bare ``.keras`` file."""
    target = Path(target)
    model_path = target / layout.MODEL if target.is_dir() else target
    if not model_path.exists():
        raise DoctorTargetError(f"{model_path} does not exist: give a run folder or a .keras model file")
    _register_layers()
    model = keras.saving.load_model(model_path, safe_mode=True)
    findings = model_findings(model)
    if target.is_dir():
        findings += run_findings(target)
    return findings


def _register_layers() -> None:
    """Make saved models loadable with ``safe_mode``: importing `shoulders.backbones` (above) registers
    shoulders' layers; keras-hub registers its own (text encoders) when the text extra is installed."""
    try:
        import keras_hub  # noqa: F401
    except ImportError:  # image models load without the text extra
        pass


def is_text_model(model: keras.Model) -> bool:
    """Text classifiers take a dict of token arrays; image classifiers one pixel tensor."""
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
    ok = bool(normalizers) and names.index(normalizers[0].name) < names.index(backbone.name)
    contract = f"mean {normalizers[0].mean}, std {normalizers[0].std}" if normalizers else ""
    return _finding(
        "preprocessing",
        ok,
        f"the backbone's input contract is baked in ({contract}): callers send raw 0..255 pixels.",
        "no preprocessing layer before the backbone: every caller must normalise pixels exactly as the backbone "
        "was trained, and a wrong range trains fine while silently losing 10-20 points. Bake it into the model.",
    )


def _inference_mode(model: keras.Model, backbone: keras.Model) -> Finding:
    training = [node.arguments.kwargs.get("training") for node in backbone._inbound_nodes if node.arguments]
    good = (
        "the encoder is called with training=False: its outputs are deterministic, so phase 1 can cache them."
        if is_text_model(model)
        else "the backbone is called with training=False: BatchNorm keeps its ImageNet statistics."
    )
    return _finding(
        "inference mode",
        bool(training) and all(value is False for value in training),
        good,
        "the backbone is not called with training=False: once unfrozen, its BatchNorm layers would update their "
        "statistics from small batches of your data and wreck the pretrained features (the Keras 'BatchNorm trap').",
    )


def _batchnorm_frozen(model: keras.Model) -> Finding:
    trainable = [layer.name for layer in batchnorm_layers(model) if layer.trainable]
    return _finding(
        "BatchNorm frozen",
        not trainable,
        "no BatchNormalization layer is trainable.",
        f"{len(trainable)} BatchNormalization layers are trainable (e.g. {trainable[:3]}): fine-tuning them on a "
        "few hundred images destroys their pretrained normalisation. Freeze them.",
    )


def _pooling_head(model: keras.Model) -> Finding:
    if any(isinstance(layer, keras.layers.Flatten) for layer in model.layers):
        return Finding("pooling head", False, "the head flattens the feature map: millions of parameters that overfit. Use GlobalAveragePooling2D.")
    return _finding(
        "pooling head",
        any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers),
        "GlobalAveragePooling2D head: few parameters, robust on small data.",
        "no global pooling after the backbone.",
    )


def _masked_pooling(model: keras.Model) -> Finding:
    return _finding(
        "pooling head",
        any(isinstance(layer, MaskedMeanPooling) for layer in model.layers),
        "masked mean pooling over the tokens: padding never dilutes a short text.",
        "no masked mean pooling after the encoder: averaging padding tokens (or using only [CLS] of an encoder not "
        "trained for it) changes a text's features with the batch's padding. Pool with the padding mask.",
    )


def _logits_output(model: keras.Model) -> Finding:
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return _finding(
        "logits output",
        isinstance(last, keras.layers.Dense) and activation == "linear",
        "the model outputs logits; probabilities come from a softmax outside the loss.",
        f"the last layer applies {activation or 'something'}: with a from_logits=True loss that is a double softmax; "
        "output logits and apply softmax only for reading probabilities.",
    )


def _loss_from_logits(model: keras.Model) -> Finding:
    loss = getattr(model, "loss", None)
    if loss is None:
        return Finding("loss", True, "not compiled (inference only): nothing to check.")
    return _finding(
        "loss",
        bool(getattr(loss, "from_logits", None)),
        "loss computed from logits (numerically stable).",
        "the loss does not take logits while the model outputs them: compile with from_logits=True.",
    )


def run_findings(folder: Path) -> list[Finding]:
    """What only the run folder shows: the phase-2 learning rate, epoch numbering, the tokenizer, the split."""
    metrics = read_json(folder / layout.METRICS) if (folder / layout.METRICS).exists() else {}
    findings = _phase_findings(metrics)
    if metrics.get("task") == "text":
        findings.append(
            _finding(
                "tokenizer saved",
                (folder / layout.TOKENIZER).exists(),
                f"{layout.TOKENIZER} (the encoder's own WordPiece vocabulary) is saved with the model.",
                f"no {layout.TOKENIZER} next to the model: texts cannot be turned into the token ids it was trained on.",
            )
        )
    if (folder / layout.SPLITS).exists():
        findings.append(_split_finding(read_json(folder / layout.SPLITS)))
    return findings


def _phase_findings(metrics: dict) -> list[Finding]:
    lr1, lr2 = metrics.get("lr_phase1"), metrics.get("lr_phase2")
    if lr2 is None:
        return []
    ok = lr2 < lr1
    start, ran = metrics.get("phase2_start_epoch"), metrics.get("epochs_phase1")
    return [
        Finding("phase-2 learning rate", ok, f"phase 2 ran at {lr2:g} vs {lr1:g} in phase 1" + ("" if ok else ": too high, it erases pretrained features.")),
        Finding("epoch numbering", start == ran, f"phase 2 started at epoch {start} after {ran} head epochs (initial_epoch continues the count)."),
    ]


def _split_finding(splits: dict) -> Finding:
    test = set(splits.get("test", []))
    seen = set(splits.get("train", [])) | set(splits.get("val", []))
    overlap = sorted(test & seen)
    return _finding(
        "test split untouched",
        not overlap,
        "no test item was used for training or validation.",
        f"{len(overlap)} test files also appear in train/val (e.g. {overlap[:3]}): the test score is not honest.",
    )
