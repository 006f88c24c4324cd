"""Exports of a text run: token ids in, the run's answers out, tokenizer.json beside them, verified."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_runs import app_with_commands, cli
from tokenizers import Tokenizer

from shoulders.export import FORMATS, export_run, read_manifest
from shoulders.export.tflite import TFLiteModel

TOKENS = {"token_ids", "segment_ids", "padding_mask"}


def recorded_texts(run) -> list[str]:
    return [entry["text"] for entry in run.metrics["test_predictions"]]


def plain_tokens(tokenizer_file, texts: list[str]) -> dict[str, np.ndarray]:
    """Token arrays made with nothing but the `tokenizers` library, as the manifest's note tells a user to."""
    ids = [encoding.ids for encoding in Tokenizer.from_file(str(tokenizer_file)).encode_batch(texts)]
    length = max(len(row) for row in ids)
    token_ids = np.array([row + [0] * (length - len(row)) for row in ids], np.int32)
    padding_mask = np.array([[1] * len(row) + [0] * (length - len(row)) for row in ids], np.int32)
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask}


def test_text_runs_take_every_format_but_int8():
    assert FORMATS["tflite"].accepts("text") == ("none", "float16", "dynamic")
    assert FORMATS["tflite"].accepts("image") == ("none", "float16", "dynamic", "int8")
    assert all(FORMATS[name].accepts("text") == ("none",) for name in ("keras", "savedmodel"))


def test_every_text_export_is_verified_in_the_manifest(exported_text):
    manifest = json.loads((exported_text.path / "exports" / "manifest.json").read_text())
    assert manifest["task"] == "text" and manifest["max_length"] == exported_text.max_length
    assert manifest["classes"] == exported_text.classes and "image_size" not in manifest
    assert set(manifest["exports"]) >= {"keras", "savedmodel", "tflite", "tflite_dynamic"}
    for key, entry in manifest["exports"].items():
        assert (exported_text.path / entry["path"]).exists() and (exported_text.path / entry["tokenizer"]).is_file(), key
        assert "token ids" in entry["note"] and "tokenizer.json" in entry["note"] and "tensorflow-text" in entry["note"]
        for result in entry["verification"].values():
            assert result["passed"] and result["test_texts"] == len(recorded_texts(exported_text)), (key, result)
            assert result["test_accuracy"] == result["keras_test_accuracy"], (key, result)
            assert result["max_probability_difference"] < (0.05 if key == "tflite_dynamic" else 1e-4), (key, result)


def test_keras_copy_reloads_safely_and_answers_like_the_run(exported_text):
    entry = read_manifest(exported_text.path)["exports"]["keras"]
    assert entry["bytes"] < (exported_text.path / "model.keras").stat().st_size  # no optimizer state
    assert entry["requires"] == ["keras-hub"] and not any(name.startswith("shoulders>") for name in entry["custom_layers"])
    model = keras.saving.load_model(exported_text.path / entry["path"], safe_mode=True, compile=False)
    texts = recorded_texts(exported_text)
    logits = model.predict_on_batch(plain_tokens(exported_text.path / entry["tokenizer"], texts))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(logits)), exported_text.predict(texts), atol=1e-5)


def test_savedmodel_takes_token_ids_and_carries_the_tokenizer(exported_text):
    folder = exported_text.path / "exports" / "savedmodel"
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == TOKENS
    assert all(spec.dtype == tf.int32 and spec.shape.as_list() == [None, None] for spec in inputs.values())
    assert (folder / "assets" / "classes.txt").read_text().split() == exported_text.classes
    texts = recorded_texts(exported_text)
    tokens = plain_tokens(folder / "assets" / "tokenizer.json", texts)
    answer = signature(**{name: tf.constant(ids) for name, ids in tokens.items()})
    np.testing.assert_allclose(answer["probabilities"].numpy(), exported_text.predict(texts), atol=1e-5)
    assert (answer["classes"].numpy() == exported_text.predict(texts).argmax(1)).all()
    printed = " ".join((exported_text.path.parent / "export-cli-output.txt").read_text().split())
    assert "token_ids: int32 (None, None)" in printed and "takes token ids" in printed and "tokenizer.json" in printed


def test_tflite_takes_any_batch_and_length(exported_text):
    model = TFLiteModel(exported_text.path / "exports" / "model.tflite")
    texts = recorded_texts(exported_text)
    expected = exported_text.predict(texts)
    np.testing.assert_allclose(model(exported_text.tokenizer(texts)), expected, atol=1e-5)
    np.testing.assert_allclose(model(exported_text.tokenizer(texts[:1], length=32)), expected[:1], atol=1e-5)
    entry = read_manifest(exported_text.path)["exports"]["tflite_dynamic"]
    assert entry["bytes"] < read_manifest(exported_text.path)["exports"]["tflite"]["bytes"] / 3  # int8 weights


def test_int8_tflite_is_refused_for_a_text_run_with_the_reason(tiny_text_run):
    with pytest.raises(ValueError, match="for text runs .*int8 feeds the model integer pixels"):
        export_run(tiny_text_run, "tflite", "int8")
    result = cli().invoke(app_with_commands(), ["export", str(tiny_text_run.path), "--format", "tflite", "--quantize", "int8"])
    assert result.exit_code == 2 and "use dynamic" in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback


def test_a_text_run_without_recorded_test_texts_says_why(tiny_text_run, tmp_path):
    """A folder from before reference/test.npz (which holds the test texts) is refused with the fix named;
    the CLI's export completes such a folder from its data first."""
    import shutil

    from shoulders.runs.reader import ReferenceMissingError, load_run

    older = tmp_path / "older"
    shutil.copytree(tiny_text_run.path, older, ignore=shutil.ignore_patterns("reference", "exports"))
    with pytest.raises(ReferenceMissingError, match="test.npz is missing: the run was trained by an older shoulders"):
        export_run(load_run(older), "keras")
    result = cli().invoke(app_with_commands(), ["export", str(older), "--format", "keras"])
    assert result.exit_code == 0, result.output
    assert (older / "reference" / "test.npz").exists()
