"""The fine-tuning policy: which weights train in which phase, and at what learning rate."""

from __future__ import annotations

import math

import keras

from shoulders.backbones import BackboneSpec, block_groups
from shoulders.config import DEFAULT_UNFREEZE_FRACTION
from shoulders.training.guardrails import batchnorm_layers, record_compile
from shoulders.training.model import backbone_of
from shoulders.training.optimizers import LayerwiseAdam


def freeze_backbone(model: keras.Model) -> None:
    backbone_of(model).trainable = False


def default_unfreeze_blocks(num_blocks: int) -> int:
    """The top ~30% of blocks: enough to adapt high-level features, few enough to keep general ones."""
    return max(1, round(DEFAULT_UNFREEZE_FRACTION * num_blocks))


def unfreeze_top(model: keras.Model, spec: BackboneSpec, blocks: int | None) -> tuple[list[str], dict[str, float]]:
    """Make the top ``blocks`` blocks of the backbone trainable, BatchNorm excepted.

    Returns the unfrozen block names (top last) and each block's depth from the top (0 = top), which
    layer-wise LR decay uses.
    """
    body = backbone_of(model)
    groups = block_groups(spec, body)
    count = default_unfreeze_blocks(len(groups)) if blocks is None else min(blocks, len(groups))
    body.trainable = True
    for layer in body.layers:
        layer.trainable = False
    chosen = groups[-count:]
    for _, layers in chosen:
        for layer in layers:
            layer.trainable = True
    _freeze_batchnorm(body)
    depth = {name: float(count - 1 - index) for index, (name, _) in enumerate(chosen)}
    return [name for name, _ in chosen], depth


def unfreeze_all(model: keras.Model, freeze_batchnorm: bool) -> None:
    """Strategies ``full`` (BatchNorm frozen: pretrained statistics) and ``scratch`` (BatchNorm learns)."""
    body = backbone_of(model)
    body.trainable = True
    for layer in body.layers:
        layer.trainable = True
    if freeze_batchnorm:
        _freeze_batchnorm(body)


def _freeze_batchnorm(body: keras.Model) -> None:
    # Frozen BatchNorm: the backbone runs with training=False, so its statistics never update;
    # freezing gamma/beta too keeps the pretrained normalisation intact on a few hundred images.
    for layer in batchnorm_layers(body):
        layer.trainable = False


def frozen_layer_count(model: keras.Model) -> int:
    return sum(1 for layer in backbone_of(model).layers if not layer.trainable_weights and layer.weights)


def layer_multipliers(model: keras.Model, spec: BackboneSpec, depth: dict[str, float], decay: float) -> dict[str, float]:
    """LR multiplier per backbone variable: ``decay ** depth`` of its block (the head keeps 1.0)."""
    multipliers = {}
    for block, layers in block_groups(spec, backbone_of(model)):
        if block in depth:
            for layer in layers:
                for variable in layer.trainable_weights:
                    multipliers[variable.path] = decay ** depth[block]
    return multipliers


def compile_model(model: keras.Model, learning_rate: float, multipliers: dict[str, float] | None = None, steps_per_execution: int = 1) -> None:
    """Compile with Adam and a from-logits loss, and record the trainable set (see guardrails).
    ``steps_per_execution`` > 1 fuses steps into one compiled call (an accelerator's choice, `Compute`)."""
    optimizer = (
        LayerwiseAdam(learning_rate, multipliers) if multipliers else keras.optimizers.Adam(learning_rate=learning_rate)
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=steps_per_execution,
    )
    record_compile(model)


def plain_compile(model: keras.Model) -> None:
    """Recompile with Keras' own Adam at the last learning rate, so the saved ``model.keras`` names only
    Keras classes and loads where shoulders is not installed (the layer decay that set the factors is in config.json)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or type(optimizer) is keras.optimizers.Adam:
        return
    learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    compile_model(model, learning_rate)


def trainable_params(model: keras.Model) -> int:
    return int(sum(math.prod(v.shape) for v in model.trainable_weights))
