"""Rules of the recipe that assert, not warn: breaking one raises `GuardrailError` before any step runs."""

from __future__ import annotations

import weakref

import keras

from shoulders.errors import ShouldersError

_COMPILED_WITH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class GuardrailError(ShouldersError, RuntimeError):
    """The model is about to be trained in a way that silently ruins transfer learning."""


def trainable_signature(model: keras.Model) -> tuple[str, ...]:
    return tuple(sorted(variable.path for variable in model.trainable_weights))


def record_compile(model: keras.Model) -> None:
    """Remember which weights were trainable when the model was compiled."""
    _COMPILED_WITH[model] = trainable_signature(model)


def assert_compiled_for_current_trainables(model: keras.Model) -> None:
    compiled = _COMPILED_WITH.get(model)
    if compiled is None or compiled != trainable_signature(model):
        raise GuardrailError(
            "the set of trainable weights changed since the model was compiled (or it was never compiled "
            "through shoulders): without a recompile the optimizer keeps training the old set. Call "
            "compile_model() after every freeze/unfreeze."
        )


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def _all_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(_all_layers(layer))
    return found


def assert_head_only(model: keras.Model, head_layers: tuple[str, ...]) -> None:
    """Phase 1: the trainable weights are exactly the head's."""
    head = {variable.path for name in head_layers for variable in model.get_layer(name).trainable_weights}
    trainable = set(trainable_signature(model))
    if trainable != head:
        extra = sorted(trainable - head)[:5]
        raise GuardrailError(
            f"phase 1 must train the head only, but {len(trainable - head)} other weights are trainable "
            f"(e.g. {extra}): a random head's large gradients would wreck the pretrained backbone. Freeze it."
        )
    if not head:
        raise GuardrailError("phase 1 has no trainable head weights: nothing would learn.")


def assert_batchnorm_frozen(model: keras.Model) -> None:
    """Phase 2: BatchNorm layers keep ImageNet statistics and affine weights."""
    trainable = [layer.name for layer in batchnorm_layers(model) if layer.trainable_weights]
    if trainable:
        raise GuardrailError(
            f"{len(trainable)} BatchNormalization layers are trainable (e.g. {trainable[:3]}): on a small dataset "
            "their statistics drift and accuracy collapses. Keep BatchNorm frozen when unfreezing blocks."
        )


def assert_lr_lower(phase1_lr: float, phase2_lr: float) -> None:
    if not phase2_lr < phase1_lr:
        raise GuardrailError(
            f"phase-2 LR {phase2_lr:g} is not below phase-1 LR {phase1_lr:g}: fine-tuning pretrained layers needs a "
            "10-100x lower LR, or it forgets what it learned on ImageNet."
        )
