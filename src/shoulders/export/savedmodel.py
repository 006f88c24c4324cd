"""SavedModel export: two signatures over the same weights, class names as an asset.

``serving_default``: float pixels (None, H, W, 3) in 0..255 (the Keras model's own input contract).
``serve_bytes``: encoded JPEG/PNG strings (None,), decoded, oriented, cropped and resized inside
(see `shoulders.export.decode`), so a client needs no image code at all.
Both return ``probabilities`` (None, classes) and ``classes`` (None,) int64 indices; ``serve_bytes`` also
returns ``labels`` (class names, from ``assets/classes.txt`` through a lookup table). ``serving_default``
stays free of the table so the TFLite converter can take it as it is.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from shoulders.export.decode import decode_batch

PIXELS_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serve_bytes"


def export_savedmodel(model: keras.Model, classes: list[str], image_size: int, crop_fraction: float, path: Path) -> dict:
    """Write the SavedModel at ``path``; return its signatures as {name: {"inputs": ..., "outputs": ...}}."""

    def pixels_to_outputs(pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = tf.nn.softmax(tf.cast(model(pixels, training=False), tf.float32), axis=-1)
        return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=-1)}

    with tempfile.TemporaryDirectory() as scratch:
        # The table reads the class names from this file; SavedModel copies it into its assets/ folder.
        names_file = Path(scratch) / "classes.txt"
        names_file.write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
        initializer = tf.lookup.TextFileInitializer(
            str(names_file), tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE
        )
        labels = tf.lookup.StaticHashTable(initializer, default_value="")

        def bytes_to_outputs(images: tf.Tensor) -> dict[str, tf.Tensor]:
            outputs = pixels_to_outputs(decode_batch(images, image_size, crop_fraction))
            return {**outputs, "labels": labels.lookup(outputs["classes"])}

        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.track(labels)
        archive.add_endpoint(
            PIXELS_SIGNATURE,
            pixels_to_outputs,
            input_signature=[tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="pixels")],
        )
        archive.add_endpoint(
            BYTES_SIGNATURE, bytes_to_outputs, input_signature=[tf.TensorSpec((None,), tf.string, name="images")]
        )
        archive.write_out(str(path), verbose=False)
    return describe_signatures(path)


def describe_signatures(path: Path) -> dict:
    """Input and output names, dtypes and shapes of every signature of a SavedModel."""
    loaded = tf.saved_model.load(str(path))
    described = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        described[name] = {
            "inputs": {key: _spec(spec) for key, spec in inputs.items()},
            "outputs": {key: _spec(spec) for key, spec in function.structured_outputs.items()},
        }
    return described


def _spec(spec) -> str:
    return f"{spec.dtype.name} {tuple(spec.shape.as_list())}"
