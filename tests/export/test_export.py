"""Exports: what a user deploys must answer like the Keras model, and say so in manifest.json."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from shoulders.data import load_image
from shoulders.export import FORMATS, ExportUnavailableError, ExportVerificationError, export_run, read_manifest
from shoulders.export import verify
from shoulders.export.decode import decode_to_pixels
from shoulders.export.tflite import TFLiteModel
from shoulders.image.inputs import load_data
from shoulders.training.batches import predict_probabilities
from tiny_runs import app_with_commands, cli


def test_every_format_is_registered_with_its_quantizations():
    assert set(FORMATS) == {"keras", "savedmodel", "tflite", "onnx"}
    assert FORMATS["tflite"].quantizations == ("none", "float16", "dynamic", "int8")


def test_onnx_without_its_extra_names_the_extra_to_install(trained_run, monkeypatch):
    from shoulders.export import exporting

    find_spec = exporting.importlib.util.find_spec
    monkeypatch.setattr(exporting.importlib.util, "find_spec", lambda name: None if name == "tf2onnx" else find_spec(name))
    with pytest.raises(ExportUnavailableError, match=r"tf2onnx.*pip install 'shoulders\[onnx\]'"):
        export_run(trained_run, "onnx")
    result = cli().invoke(app_with_commands(), ["export", str(trained_run.path), "--format", "onnx"])
    assert result.exit_code == 2 and "shoulders[onnx]" in result.output and "not available" in result.output


def test_onnx_export_is_verified_with_onnxruntime_and_answers_like_keras(exported):
    """The CLI's export (tiny_runs.exported_run), then onnxruntime on fresh pixels, against the Keras model."""
    import onnxruntime

    entry = read_manifest(exported.path)["exports"]["onnx"]
    assert entry["inputs"] == {"pixels": [[None, 32, 32, 3], "float32"]} and entry["outputs"] == {"probabilities": [[None, 3], "float32"]}
    result = entry["verification"]["pixels"]
    assert result["passed"] and result["test_images"] == len(exported.arrays("reference/test.npz")["labels"])
    assert result["accuracy_drop"] <= 0.01 and result["max_probability_difference"] < 1e-4 and result["top1_agreement"] == 1.0
    session = onnxruntime.InferenceSession(str(exported.path / entry["path"]), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(3).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    (probabilities,) = session.run(["probabilities"], {"pixels": pixels})
    np.testing.assert_allclose(probabilities, exported.predict(pixels), atol=1e-5)


def test_unknown_quantization_is_refused_before_any_work(trained_run):
    with pytest.raises(ValueError, match="savedmodel takes --quantize none"):
        export_run(trained_run, "savedmodel", "int8")


def test_savedmodel_serves_both_signatures_like_the_keras_model(exported, tmp_path_factory):
    run = exported
    loaded = tf.saved_model.load(str(run.path / "exports" / "savedmodel"))
    assert set(loaded.signatures) == {"serving_default", "serve_bytes"}
    images, labels = load_data(run.config, run.image_size, progress=False).subset("test")
    keras_probabilities = predict_probabilities(run.model, np.asarray(images))
    pixels = loaded.signatures["serving_default"](pixels=tf.constant(images, tf.float32))
    np.testing.assert_allclose(pixels["probabilities"].numpy(), keras_probabilities, atol=1e-5)
    assert (pixels["classes"].numpy() == keras_probabilities.argmax(1)).all()

    red = Image.fromarray(np.full((40, 60, 3), (200, 30, 30), np.uint8))
    encoded = io.BytesIO()
    red.save(encoded, format="PNG")
    answer = loaded.signatures["serve_bytes"](images=tf.constant([encoded.getvalue()]))
    assert answer["labels"].numpy()[0].decode() == "red"
    assert (run.path / "exports" / "savedmodel" / "assets" / "classes.txt").read_text().split() == run.classes
    printed = (tmp_path_factory.getbasetemp() / "export-cli-output.txt").read_text()
    assert "serving_default" in printed and "serve_bytes" in printed and "pixels" in printed and "probabilities" in printed


def test_saved_model_cli_lists_the_signatures_the_readme_names_for_a_java_service(exported):
    import re
    import subprocess
    import sys

    cli_path = Path(sys.executable).with_name("saved_model_cli")
    shown = subprocess.run([str(cli_path), "show", "--dir", str(exported.path / "exports" / "savedmodel"), "--all"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    signatures = dict(re.findall(r"signature_def\['(\w+)'\]:(.*?)Method name", shown.stdout, re.S))
    tensors = {name: re.findall(r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: ([^\n]+)", body)
               for name, body in signatures.items()}
    assert sorted(tensors["serving_default"]) == [
        ("inputs", "pixels", "DT_FLOAT", "(-1, 32, 32, 3)"), ("outputs", "classes", "DT_INT64", "(-1)"),
        ("outputs", "probabilities", "DT_FLOAT", "(-1, 3)")]
    assert sorted(tensors["serve_bytes"]) == [
        ("inputs", "images", "DT_STRING", "(-1)"), ("outputs", "classes", "DT_INT64", "(-1)"),
        ("outputs", "labels", "DT_STRING", "(-1)"), ("outputs", "probabilities", "DT_FLOAT", "(-1, 3)")]


def test_keras_copy_of_an_image_run_reloads_safely_and_matches(trained_run):
    import keras

    entry = export_run(trained_run, "keras")
    result = entry["verification"]["keras"]
    assert result["passed"] and result["max_probability_difference"] < 1e-5 and "test_images" in result
    model = keras.saving.load_model(trained_run.path / entry["path"], safe_mode=True, compile=False)
    images, _ = load_data(trained_run.config, trained_run.image_size, progress=False).subset("test")
    np.testing.assert_allclose(predict_probabilities(model, np.asarray(images)), predict_probabilities(trained_run.model, np.asarray(images)), atol=1e-5)
    assert read_manifest(trained_run.path)["task"] == "image"


def test_every_export_is_verified_in_the_manifest(exported):
    manifest = json.loads((exported.path / "exports" / "manifest.json").read_text())
    assert set(manifest["exports"]) >= {"savedmodel", "tflite_float16", "tflite_int8"}
    assert manifest["classes"] == exported.classes
    for key, entry in manifest["exports"].items():
        assert (exported.path / entry["path"]).exists(), key
        for result in entry["verification"].values():
            assert result["passed"] and result["accuracy_drop"] <= result["tolerance"], (key, result)
            assert result["max_probability_difference"] < 0.1
    assert "serve_bytes" in manifest["exports"]["savedmodel"]["verification"]  # decoding checked on the test files
    assert manifest["exports"]["tflite_int8"]["verification"]["pixels"]["tolerance"] == 0.02


def test_int8_tflite_is_integer_and_agrees_with_keras(exported):
    model = TFLiteModel(exported.path / read_manifest(exported.path)["exports"]["tflite_int8"]["path"])
    assert model._input["dtype"] == np.uint8
    images, labels = load_data(exported.config, exported.image_size, progress=False).subset("test")
    assert (model(np.asarray(images)).argmax(1) == labels).mean() >= 0.9


def test_verification_fails_loudly_past_the_tolerance():
    labels = np.array([0, 1, 0, 1])
    reference = verify.Reference(np.zeros((4, 2, 2, 3)), labels, np.eye(2)[labels])
    result = verify.compare("model.tflite", np.eye(2)[[0, 1, 1, 0]], reference, verify.INTEGER_TOLERANCE)
    assert not result["passed"] and result["accuracy_drop"] == 0.5
    with pytest.raises(ExportVerificationError, match="drop 50.0 pt, tolerance 2 pt"):
        verify.check("tflite (int8)", result)


def _photo(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)


def test_graph_decoding_matches_the_training_decoder():
    encoded = io.BytesIO()
    Image.fromarray(_photo(120, 90)).save(encoded, format="PNG")
    ours = decode_to_pixels(tf.constant(encoded.getvalue()), 32, 0.875).numpy()
    training = load_image(encoded.getvalue(), 32, 0.875)
    assert np.abs(ours - training).mean() < 1.0  # grey levels (0.18 on real photos: see decode.py)


def test_graph_decoding_applies_exif_orientation_like_pillow():
    image = Image.fromarray(_photo(80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: a viewer turns it 90 degrees clockwise
    encoded = io.BytesIO()
    image.save(encoded, format="JPEG", quality=95, exif=exif.tobytes())
    ours = decode_to_pixels(tf.constant(encoded.getvalue()), 32, 1.0).numpy()
    training = load_image(encoded.getvalue(), 32, 1.0)
    unrotated = load_image(_photo(80, 40), 32, 1.0)
    assert np.abs(ours - training).mean() < 2.0
    assert np.abs(ours - unrotated).mean() > 20.0  # orientation was applied, not ignored
