"""SavedModel export: the run's model behind named signatures, class names as an asset.

Image runs get two signatures over the same weights:
``serving_default``: float pixels (None, H, W, 3) in 0..255 (the Keras model's own input contract).
``serve_bytes``: encoded JPEG/PNG strings (None,), decoded, oriented, cropped and resized inside
(see `shoulders.export.decode`), so a client needs no image code at all.
Both return ``probabilities`` (None, classes) and ``classes`` (None,) int64 indices; ``serve_bytes`` also
returns ``labels`` (class names, from ``assets/classes.txt`` through a lookup table). ``serving_default``
stays free of the table so the TFLite converter can take it as it is.

Text runs get one: ``serving_default`` takes token ids (``token_ids``, ``segment_ids``, ``padding_mask``,
int32 (None, None)) and returns the same two outputs; ``assets/tokenizer.json`` makes the ids. Raw
strings in the graph would need WordPiece as TensorFlow ops, which only tensorflow-text provides, and
shoulders does not depend on it.

The model is never ``track``ed: ExportArchive would then store every weight twice, as the Keras
variables it tracks and as the tf.Variables the endpoints capture (keras-team/keras#23553, open);
the endpoints alone carry each weight once, half the size on disk and in a server's memory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from shoulders.export.decode import decode_batch
from shoulders.runs import layout

PIXELS_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serve_bytes"
TOKENS_SIGNATURE = "serving_default"
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")
CLASS_NAMES = "classes.txt"  # in assets/: one class name a line, line i for class i


def export_savedmodel(model: keras.Model, classes: list[str], image_size: int, crop_fraction: float, path: Path) -> dict:
    """Write the SavedModel at ``path``; return its signatures as {name: {"inputs": ..., "outputs": ...}}."""

    def pixels_to_outputs(pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        return _outputs(model(pixels, training=False))

    with tempfile.TemporaryDirectory() as scratch:
        # The table reads the class names from this file; SavedModel copies it into its assets/ folder.
        names_file = _write_class_names(Path(scratch), classes)
        initializer = tf.lookup.TextFileInitializer(
            str(names_file), tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE
        )
        labels = tf.lookup.StaticHashTable(initializer, default_value="")

        def bytes_to_outputs(images: tf.Tensor) -> dict[str, tf.Tensor]:
            outputs = pixels_to_outputs(decode_batch(images, image_size, crop_fraction))
            return {**outputs, "labels": labels.lookup(outputs["classes"])}

        archive = keras.export.ExportArchive()
        archive.track(labels)  # not track(model): see the module docstring
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


def export_token_savedmodel(model: keras.Model, classes: list[str], tokenizer_file: Path, path: Path) -> dict:
    """Write a text run's SavedModel at ``path`` (token ids in, probabilities out; the tokenizer and
    class names as assets); return its signatures."""

    def tokens_to_outputs(token_ids: tf.Tensor, segment_ids: tf.Tensor, padding_mask: tf.Tensor) -> dict[str, tf.Tensor]:
        return _outputs(model({"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}, training=False))

    archive = keras.export.ExportArchive()  # not track(model): see the module docstring
    spec = [tf.TensorSpec((None, None), tf.int32, name=name) for name in TOKEN_INPUTS]
    archive.add_endpoint(TOKENS_SIGNATURE, tokens_to_outputs, input_signature=spec)
    archive.write_out(str(path), verbose=False)
    # Plain files in assets/ (no graph op reads them, so they are copied in, not tracked): they travel
    # with the SavedModel wherever it is deployed, and TF Serving ignores them.
    assets = path / "assets"
    assets.mkdir(exist_ok=True)
    shutil.copyfile(tokenizer_file, assets / layout.TOKENIZER)
    _write_class_names(assets, classes)
    return describe_signatures(path)


def _outputs(logits: tf.Tensor) -> dict[str, tf.Tensor]:
    """What every signature returns: float32 probabilities and the top class's index."""
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
    return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=-1)}


def _write_class_names(folder: Path, classes: list[str]) -> Path:
    path = folder / CLASS_NAMES
    path.write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
    return path


def describe_signatures(path: Path) -> dict:
    """Input and output names, dtypes and shapes of every signature of a SavedModel."""
    loaded = tf.saved_model.load(str(path))
    described = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        described[name] = {
            "inputs": {key: _spec(spec) for key, spec in sorted(inputs.items())},
            "outputs": {key: _spec(spec) for key, spec in function.structured_outputs.items()},
        }
    return described


def _spec(spec) -> str:
    return f"{spec.dtype.name} {tuple(spec.shape.as_list())}"
