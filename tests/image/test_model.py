"""The model's structure is the recipe's: preprocessing inside, frozen statistics, pooled head, logits."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from inference_check import measure, old_way_classifier
from processes import jax_env

from shoulders.config import Augmentation
from shoulders.training.doctor import model_findings
from shoulders.training.features import extract_features
from shoulders.image.model import build_classifier
from shoulders.training.model import feature_model, head_model
from shoulders.training.optimizers import LayerwiseAdam

SIZE = 32


def test_cached_feature_head_is_exactly_the_full_model():
    model = build_classifier("efficientnet_lite0", 4, image_size=SIZE, weights="imagenet", augmentation=Augmentation())
    x = np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8)
    features = extract_features(feature_model(model), x, batch_size=4, progress=False)
    head = head_model(model)
    np.testing.assert_allclose(head.predict(features, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_backbone_stays_in_inference_mode_even_when_training():
    model = build_classifier("efficientnet_lite0", 2, image_size=SIZE, weights="imagenet", dropout=0.0)
    x = np.random.default_rng(1).uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(model(x, training=True), model(x, training=False), rtol=1e-5, atol=1e-5)


def test_frozen_backbone_runs_in_inference_mode_under_fit_on_tensorflow():
    """Stochastic depth inside EfficientNetV2: off in what fit() runs, and BatchNorm statistics never move."""
    built_old_way, built = measure(old_way=True), measure(old_way=False)
    assert built["dropout_layers"] > 0 and built_old_way["output_gap"] > 1e-4  # the check can fail: it did, before
    assert (built["output_gap"], built["loss_gap"], built["statistics_moved"]) == (0.0, 0.0, 0.0), built


@pytest.mark.slow
def test_frozen_backbone_runs_in_inference_mode_under_fit_on_jax():
    script = Path(__file__).with_name("inference_check.py")
    done = subprocess.run([sys.executable, str(script), "new"], env=jax_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    built = json.loads(done.stdout.splitlines()[-1])
    assert built["dropout_layers"] > 0
    assert (built["output_gap"], built["loss_gap"], built["statistics_moved"]) == (0.0, 0.0, 0.0), built


def test_doctor_fails_a_model_whose_backbone_dropout_runs_under_fit(tmp_path):
    """The config says training=False, yet fit() would run the backbone's stochastic depth: doctor
    checks what runs."""
    model = old_way_classifier()
    node_training = [node.arguments.kwargs.get("training") for node in model.layers[2]._inbound_nodes]
    assert node_training == [False]
    model.save(tmp_path / "old.keras")
    findings = {f.check: f for f in model_findings(keras.saving.load_model(tmp_path / "old.keras", safe_mode=True))}
    assert not findings["inference mode"].ok and "differs from inference" in findings["inference mode"].explanation
    assert findings["preprocessing"].ok and findings["BatchNorm frozen"].ok


def test_saved_model_keeps_training_false_and_passes_doctor(tmp_path):
    model = build_classifier("efficientnet_lite0", 2, image_size=SIZE, weights=None, augmentation=Augmentation())
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    findings = model_findings(loaded)
    assert all(f.ok for f in findings), [(f.check, f.explanation) for f in findings if not f.ok]


def test_doctor_explains_every_classic_mistake():
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    base.trainable = True
    inputs = keras.Input((SIZE, SIZE, 3))
    x = base(inputs)  # no preprocessing, no training=False
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False))
    failed = {f.check for f in model_findings(model) if not f.ok}
    assert failed == {"preprocessing", "inference mode", "BatchNorm frozen", "pooling head", "logits output", "loss"}


def test_layerwise_adam_round_trips_through_config():
    optimizer = LayerwiseAdam(1e-5, {"a/b": 0.5})
    again = LayerwiseAdam.from_config(optimizer.get_config())
    assert again.multipliers == {"a/b": 0.5}
    assert float(again.learning_rate) == pytest.approx(1e-5)


def test_folded_feature_extractor_matches_the_model_it_came_from():
    from shoulders import backbones
    from shoulders.training.model import fast_feature_model

    model = build_classifier("efficientnet_lite0", 2, image_size=64, weights="imagenet")
    fast = fast_feature_model(model, backbones.get("efficientnet_lite0"))
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in fast.layers[2].layers)
    x = np.random.default_rng(4).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    reference = feature_model(model).predict(x, verbose=0)
    np.testing.assert_allclose(extract_features(fast, x, batch_size=4, progress=False), reference, rtol=1e-4, atol=1e-4)
