"""TFLite export through the SavedModel's ``serving_default`` signature, and a runner for the result.

Text runs convert too (token ids in, as their SavedModel); their inputs are integers, so ``int8``
(integer inputs calibrated on pixels) is for image runs only.

Quantization (``quantize``):
- ``none``: float32 weights and activations.
- ``float16``: weights stored as float16 (half the size), computed in float32.
- ``dynamic``: weights int8, activations quantized on the fly (about 4x smaller).
- ``int8``: full integer, calibrated on training images; uint8 pixels in, uint8 probabilities out, so it
  runs on integer-only accelerators (Edge TPU, microcontrollers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from shoulders.errors import ShouldersError
from shoulders.export.savedmodel import PIXELS_SIGNATURE

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
CALIBRATION_IMAGES = 200


class QuantizationError(ShouldersError, ValueError):
    """``--quantize`` cannot be applied: an unknown name, or int8 without calibration images."""


def convert(savedmodel: Path, quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """The .tflite flatbuffer of ``savedmodel``'s pixel signature; ``calibration`` (uint8 pixels) for int8."""
    if quantize not in QUANTIZATIONS:
        raise QuantizationError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}. Received: {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel), signature_keys=[PIXELS_SIGNATURE])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise QuantizationError(
                "int8 quantization needs calibration images (the run's training split); none were given. "
                "Use --quantize dynamic or float16, which need none."
            )
        converter.representative_dataset = lambda: _representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def _representative(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    step = max(1, len(images) // CALIBRATION_IMAGES)
    for image in images[::step][:CALIBRATION_IMAGES]:
        yield [np.asarray(image, dtype=np.float32)[None]]


class TFLiteModel:
    """Runs a shoulders .tflite file: uint8/float pixels (N, H, W, 3), or a text run's token arrays
    ({"token_ids": ..., ...}, int32 (N, length)), in; float probabilities out.

    Not thread-safe (one interpreter); the server calls it from its single batching worker.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        runner = self.interpreter.get_signature_runner(PIXELS_SIGNATURE)
        self._inputs = runner.get_input_details()
        self._input_name = next(iter(self._inputs))
        self._input = self._inputs[self._input_name]
        self._output = runner.get_output_details()["probabilities"]
        self._runner = runner

    def __call__(self, inputs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(inputs, dict):  # token arrays: integers, never quantized
            feed = {name: np.asarray(inputs[name], dtype=details["dtype"]) for name, details in self._inputs.items()}
        else:
            feed = {self._input_name: _quantize(np.asarray(inputs, dtype=np.float32), self._input)}
        return _dequantize(self._runner(**feed)["probabilities"], self._output)


def _quantize(values: np.ndarray, details: dict) -> np.ndarray:
    scale, zero_point = details["quantization"]
    if details["dtype"] == np.float32 or not scale:
        return values.astype(details["dtype"])
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(details["dtype"])


def _dequantize(values: np.ndarray, details: dict) -> np.ndarray:
    scale, zero_point = details["quantization"]
    if values.dtype == np.float32 or not scale:
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero_point) * scale
