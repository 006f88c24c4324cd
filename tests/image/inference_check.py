"""What `fit()` runs inside a frozen backbone, measured: run on each backend by tests/image/test_model.py
(in-process on TensorFlow, as ``python inference_check.py OLD_WAY`` on JAX)."""

from __future__ import annotations

import sys

import keras
import numpy as np

from shoulders import backbones
from shoulders.backbones.models import raw_pixel_input
from shoulders.image.model import build_classifier
from shoulders.training import phases

SIZE = 32


def old_way_classifier() -> keras.Model:
    """The classifier as it was built before `inference_only`: the backbone called with training=False only."""
    spec = backbones.get("efficientnet_v2_b0")
    inputs = raw_pixel_input((SIZE, SIZE, 3))
    body = backbones.body("efficientnet_v2_b0", SIZE, None)
    body.trainable = False
    x = body(backbones.preprocessing_layer(spec)(inputs), training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


def measure(old_way: bool) -> dict[str, float]:
    """Phase 2 on EfficientNetV2-B0 (stochastic depth inside): its outputs called as the training step
    calls it against inference, the loss of a step at LR 0 against the inference loss on the same batch,
    and how far the BatchNorm statistics moved in a real step (the model built the old way: its output gap only)."""
    keras.utils.set_random_seed(0)
    model = old_way_classifier() if old_way else build_classifier("efficientnet_v2_b0", 2, image_size=SIZE, weights=None, dropout=0.0)
    phases.unfreeze_top(model, backbones.get("efficientnet_v2_b0"), blocks=3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")
    y = np.array([0, 1] * 4)
    in_training = keras.ops.convert_to_numpy(model(x, training=True))  # as the training step calls it
    output_gap = float(np.max(np.abs(in_training - keras.ops.convert_to_numpy(model(x, training=False)))))
    if old_way:  # the control: only how far its outputs drift
        return {"output_gap": output_gap, "dropout_layers": _dropouts(model)}
    phases.compile_model(model, 0.0)
    training_loss = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    inference_loss = model.evaluate(x, y, batch_size=8, verbose=0)[0]
    statistics = [v.numpy() if hasattr(v, "numpy") else np.asarray(v) for layer in _batchnorms(model) for v in (layer.moving_mean, layer.moving_variance)]
    phases.compile_model(model, 1e-2)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    moved = max(float(np.max(np.abs(keras.ops.convert_to_numpy(v) - before)))
                for v, before in zip((v for layer in _batchnorms(model) for v in (layer.moving_mean, layer.moving_variance)), statistics))
    return {"output_gap": output_gap, "loss_gap": abs(training_loss - inference_loss), "statistics_moved": moved,
            "dropout_layers": _dropouts(model)}


def _batchnorms(model: keras.Model) -> list:
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


def _dropouts(model: keras.Model) -> int:
    return sum(1 for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dropout) and layer.name != "head_dropout")


if __name__ == "__main__":
    import json

    print(json.dumps(measure(sys.argv[1] == "old")))
