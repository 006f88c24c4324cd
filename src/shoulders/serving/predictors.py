"""The four model forms the server can run, behind one call: a batch of inputs -> probabilities.

Image runs take uint8 pixels (N, H, W, 3); text runs take texts (N,) as an object array, tokenized
with the run's tokenizer.json (the file every text export carries a copy of). The ``keras`` form runs
through Keras' own compiled predict step, so it serves on any Keras backend (JAX included) without
TensorFlow; the ``savedmodel`` and ``tflite`` forms need TensorFlow, the ``onnx`` form onnxruntime.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import numpy as np

from shoulders.runs.reader import Run
from shoulders.serving.errors import ExportMissingError, ServeConfigError

Predict = Callable[[np.ndarray], np.ndarray]
SERVE_FORMATS = ("keras", "savedmodel", "tflite", "onnx")
TFLITE_PREFERENCE = ("none", "float16", "dynamic", "int8")
FOLDED_TOLERANCE = 1e-4  # largest probability difference at which the folded form counts as the same model


def load_predictor(run: Run, format: str = "keras", quantize: str | None = None) -> Predict:
    """A warmed-up predictor for ``run`` in ``format`` (a SavedModel or TFLite export must exist and
    have passed verification: the server never serves a model that failed it)."""
    if format not in SERVE_FORMATS:
        raise ServeConfigError(f"unknown serving format {format!r} (--format); choose one of: {', '.join(SERVE_FORMATS)}")
    if run.task == "text":
        predict = _texts(run, format, quantize)
        predict(np.array(["warm up"], dtype=object))  # trace/allocate before the first request
        return predict
    if format == "keras":
        predict = _keras(run)
    elif format == "savedmodel":
        predict = _savedmodel(run)
    elif format == "onnx":
        predict = _onnx(run)
    else:
        predict = _tflite(run, quantize)
    predict(np.zeros((1, run.image_size, run.image_size, 3), np.uint8))  # trace/allocate before the first request
    return predict


def _texts(run: Run, format: str, quantize: str | None) -> Predict:
    """Texts -> the run's tokenizer -> token arrays, padded to the batch's longest -> the model in ``format``."""
    if format == "keras":
        forward = _compiled(_with_softmax(run.model.input, run.model.output))
    elif format == "savedmodel":
        forward = _savedmodel_tokens(run)
    elif format == "onnx":
        forward = _onnx(run)
    else:
        forward = _tflite(run, quantize)
    tokenizer = run.tokenizer
    return lambda texts: forward(tokenizer([str(text) for text in texts]))


def _keras(run: Run) -> Predict:
    """The run's model, with its backbone in inference form (BatchNorm folded into the convolutions,
    as training's feature extraction does: 2-3x faster on a CPU) when that form exists and matches the
    saved model on a probe batch; the saved model as it is otherwise."""
    model = run.model
    plain = _compiled(_with_softmax(model.input, model.output))
    forward = plain
    try:
        folded = _compiled(_folded(run, model))
        probe = np.random.default_rng(0).integers(0, 256, (1, run.image_size, run.image_size, 3)).astype(np.float32)
        if float(np.max(np.abs(folded(probe) - plain(probe)))) < FOLDED_TOLERANCE:
            forward = folded
    except (KeyError, ValueError):  # a model without the standard head: serve it as saved
        pass
    return lambda pixels: forward(np.asarray(pixels, np.float32))


def _folded(run: Run, model: keras.Model) -> keras.Model:
    """Pixels -> the backbone with BatchNorm folded -> the run's own ``logits`` layer -> probabilities
    (all Keras layers: the same on every backend). Raises KeyError/ValueError for a non-standard model."""
    from shoulders import backbones
    from shoulders.training.model import fast_feature_model

    features = fast_feature_model(model, backbones.get(run.config.backbone))
    return _with_softmax(features.input, model.get_layer("logits")(features.output))


def _with_softmax(inputs: object, logits: keras.KerasTensor) -> keras.Model:
    """A model from ``inputs`` to the probabilities of ``logits`` (the run's model returns logits)."""
    return keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits))


def _compiled(model: keras.Model) -> Callable[[object], np.ndarray]:
    """``model`` through Keras' compiled predict step (a graph on TensorFlow, XLA on JAX), numpy out.

    JAX compiles again for every new input shape (seconds each), so there each batch is padded with
    zero rows up to a power of two: a handful of shapes for any traffic. TensorFlow's graph takes any
    batch size as it is, so nothing is padded there."""
    if keras.backend.backend() != "jax":
        return model.predict_on_batch

    def padded(inputs: object) -> np.ndarray:
        rows = len(keras.tree.flatten(inputs)[0])
        extra = (1 << (rows - 1).bit_length()) - rows
        grown = keras.tree.map_structure(lambda array: np.concatenate([array, np.zeros((extra, *array.shape[1:]), array.dtype)]), inputs)
        return model.predict_on_batch(grown)[:rows]

    return padded


def _verified_export(run: Run, key: str, what: str) -> dict:
    from shoulders.export import read_manifest

    entry = read_manifest(run.path)["exports"].get(key)
    if entry is None or not (run.path / entry["path"]).exists():
        raise ExportMissingError(f"{run.path} has no {what} export: run `shoulders export {run.path} --format {what}` first.")
    if not all(result["passed"] for result in entry["verification"].values()):
        raise ExportMissingError(f"{run.path / entry['path']} failed verification (see exports/manifest.json): it will not be served.")
    return entry


def _savedmodel(run: Run) -> Predict:
    import tensorflow as tf

    from shoulders.export.savedmodel import PIXELS_SIGNATURE

    entry = _verified_export(run, "savedmodel", "savedmodel")
    signature = tf.saved_model.load(str(run.path / entry["path"])).signatures[PIXELS_SIGNATURE]
    return lambda pixels: signature(pixels=tf.constant(pixels, tf.float32))["probabilities"].numpy()


def _savedmodel_tokens(run: Run) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    import tensorflow as tf

    from shoulders.export.savedmodel import TOKENS_SIGNATURE

    entry = _verified_export(run, "savedmodel", "savedmodel")
    signature = tf.saved_model.load(str(run.path / entry["path"])).signatures[TOKENS_SIGNATURE]
    return lambda tokens: signature(**{name: tf.constant(ids) for name, ids in tokens.items()})["probabilities"].numpy()


def _tflite(run: Run, quantize: str | None) -> Predict:
    from shoulders.export import read_manifest
    from shoulders.export.tflite import TFLiteModel

    exports = read_manifest(run.path)["exports"]
    choices = [quantize] if quantize else [q for q in TFLITE_PREFERENCE if ("tflite" if q == "none" else f"tflite_{q}") in exports]
    if not choices:
        raise ExportMissingError(f"{run.path} has no TFLite export: run `shoulders export {run.path} --format tflite` first.")
    key = "tflite" if choices[0] == "none" else f"tflite_{choices[0]}"
    entry = _verified_export(run, key, f"tflite --quantize {choices[0]}")
    return TFLiteModel(run.path / entry["path"], threads=os.cpu_count())


def _onnx(run: Run) -> Predict:
    from shoulders.export.onnx import OnnxModel

    entry = _verified_export(run, "onnx", "onnx")
    return OnnxModel(run.path / entry["path"], threads=os.cpu_count())
