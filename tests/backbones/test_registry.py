"""Every registered backbone builds, matches its recorded facts, and saves safely."""

import dataclasses

import keras
import numpy as np
import pytest

from shoulders import backbones
from shoulders.backbones import registry

KERAS_FAMILIES = {
    "mobilenet_v2": keras.applications.mobilenet_v2,
    "vgg16": keras.applications.vgg16,
    "resnet50": keras.applications.resnet50,
    "efficientnet_v2_b0": keras.applications.efficientnet_v2,
    "convnext_tiny": keras.applications.convnext,
}


def test_registry_lists_bundled_and_keras_backbones():
    names = backbones.names()
    assert names[:3] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert set(KERAS_FAMILIES) <= set(names)
    assert backbones.offline_names() == [*names[:3], "minilm_l6"]
    assert backbones.names("text") == ["minilm_l6", "bert_tiny_en_uncased", "bert_base_en_uncased"]


def test_unknown_name_lists_valid_ones():
    with pytest.raises(backbones.UnknownBackboneError, match="efficientnet_lite0"):
        backbones.get("resnet9000")


@pytest.mark.parametrize("name", backbones.names("image"))
def test_body_matches_recorded_facts(name):
    spec = backbones.get(name)
    model = backbones.body(name, weights=None)
    assert model.count_params() == spec.params
    assert model.output_shape[-1] == spec.feature_width
    assert model.output_shape[1] >= 1
    groups = backbones.block_groups(spec, model)
    assert len(groups) >= 5, [g for g, _ in groups]
    assert sum(len(layers) for _, layers in groups) == len(model.layers) - 1  # every layer but the input


@pytest.mark.parametrize("name", sorted(KERAS_FAMILIES))
def test_preprocessing_layer_matches_keras_preprocess_input(name):
    pixels = np.random.default_rng(1).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    expected = KERAS_FAMILIES[name].preprocess_input(pixels.copy())
    ours = backbones.preprocessing_layer(backbones.get(name))(pixels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), expected, rtol=1e-5, atol=1e-4)


def test_too_small_image_size_names_the_minimum():
    with pytest.raises(ValueError, match="at least 32"):
        backbones.feature_extractor("efficientnet_lite0", image_size=16, weights=None)


def test_missing_weights_file_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        backbones.body("mobilenet_v2", 64, weights=tmp_path / "nope.h5")


def test_offline_download_failure_names_bundled_alternatives(monkeypatch):
    spec = backbones.get("resnet50")

    def fail(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setitem(registry._REGISTRY, "resnet50", dataclasses.replace(spec, build_body=fail))
    with pytest.raises(backbones.WeightsUnavailableError, match="efficientnet_lite0"):
        backbones.body("resnet50", 64, weights="imagenet")


@pytest.mark.parametrize("name", backbones.names("image"))
def test_model_with_backbone_round_trips_through_keras_file_in_safe_mode(tmp_path, name):
    size = 64
    inputs = backbones.feature_extractor(name, image_size=size, weights=None)
    outputs = keras.layers.Dense(3)(inputs.output)
    model = keras.Model(inputs.input, outputs)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(2).uniform(0, 255, size=(2, size, size, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_feature_extractor_accepts_uint8_and_float_pixels():
    model = backbones.feature_extractor("efficientnet_lite0", image_size=64)
    pixels = np.random.default_rng(3).integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        model.predict(pixels, verbose=0), model.predict(pixels.astype("float32"), verbose=0), rtol=1e-6, atol=1e-6
    )
