"""`shoulders doctor`: check a saved model (or run folder) against the recipe's rules, and explain each finding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

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
    normalizers = [layer for layer in model.layers if _is_normalization(layer)]
    ok = bool(normalizers) and names.index(normalizers[0].name) < names.index(backbone.name)
    return _finding(
        "preprocessing",
        ok,
        f"the backbone's input contract is baked in ({_contract(normalizers[0]) if normalizers else ''}): callers send raw 0..255 pixels.",
        "no preprocessing layer before the backbone: every caller must normalise pixels exactly as the backbone "
        "was trained, and a wrong range trains fine while silently losing 10-20 points. Bake it into the model.",
    )


def _is_normalization(layer: keras.layers.Layer) -> bool:
    """Rescaling, or the frozen 1x1 convolution that also reorders channels, or the older custom layer."""
    return isinstance(layer, (keras.layers.Rescaling, PixelNormalization)) or (
        isinstance(layer, keras.layers.Conv2D) and layer.name.endswith("_preprocessing")
    )


def _contract(layer: keras.layers.Layer) -> str:
    if isinstance(layer, PixelNormalization):
        return f"mean {layer.mean}, std {layer.std}"
    if isinstance(layer, keras.layers.Rescaling):
        return f"scale {layer.scale}, offset {layer.offset}"
    return "a frozen 1x1 convolution: RGB to BGR, then the mean subtracted"


def _inference_mode(model: keras.Model, backbone: keras.Model) -> Finding:
    """What runs, not what the config says: under ``fit()`` the backbone is called with training=True
    whatever its node says (keras-team/keras#20285), so compare that with inference on one input."""
    inputs = _probe_inputs(backbone)
    inference = keras.ops.convert_to_numpy(backbone(inputs, training=False))
    in_training = [keras.ops.convert_to_numpy(backbone(inputs, training=True)) for _ in range(2)]
    difference = max(float(np.max(np.abs(output - inference))) for output in in_training)
    good = (
        "under fit() the encoder computes exactly what it computes in inference (its dropout is off): its outputs "
        "are deterministic, so phase 1 can cache them."
        if is_text_model(model)
        else "under fit() the backbone computes exactly what it computes in inference: BatchNorm keeps its ImageNet "
        "statistics and no dropout or stochastic depth runs inside it."
    )
    return _finding(
        "inference mode",
        difference <= 1e-5,
        good,
        f"called as fit() calls it (training=True) the backbone's output differs from inference by up to {difference:.3g}: "
        "its BatchNorm layers update their statistics from small batches of your data (the Keras 'BatchNorm trap'), "
        "or dropout/stochastic depth inside it runs while it should be a fixed feature extractor. Calling it with "
        "training=False is not enough inside a Functional model: freeze its BatchNorm layers and set its dropout rates to 0.",
    )


def _probe_inputs(backbone: keras.Model):
    """A small random input of the backbone's own shape: pixels already normalised, or token ids."""
    rng = np.random.default_rng(0)
    if isinstance(backbone.input, dict):
        ids = rng.integers(1, 100, size=(2, 8)).astype("int32")
        return {name: (ids if name == "token_ids" else np.ones_like(ids)) for name in backbone.input}
    shape = [2] + [dimension or 32 for dimension in backbone.input.shape[1:]]
    return rng.normal(size=shape).astype("float32")


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
    pooled = [layer for layer in model.layers if isinstance(layer, (MaskedMeanPooling, keras.layers.GlobalAveragePooling1D))]
    masked = any(isinstance(layer, MaskedMeanPooling) or _mask_given(layer) for layer in pooled)
    return _finding(
        "pooling head",
        masked,
        "masked mean pooling over the tokens: padding never dilutes a short text.",
        "no masked mean pooling after the encoder: averaging padding tokens (or using only [CLS] of an encoder not "
        "trained for it) changes a text's features with the batch's padding. Pool with the padding mask.",
    )


def _mask_given(layer: keras.layers.Layer) -> bool:
    return any(node.arguments and node.arguments.kwargs.get("mask") is not None for node in layer._inbound_nodes)


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
