"""TFLite export through the SavedModel's ``serving_default`` signature, and a runner for the result.

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

from shoulders.export.savedmodel import PIXELS_SIGNATURE

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
CALIBRATION_IMAGES = 200


def convert(savedmodel: Path, quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """The .tflite flatbuffer of ``savedmodel``'s pixel signature; ``calibration`` (uint8 pixels) for int8."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)}. Received: {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel), signature_keys=[PIXELS_SIGNATURE])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 quantization needs calibration images (the run's training split); none were given.")
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
    """Runs a shoulders .tflite file: uint8/float pixels (N, H, W, 3) in, float probabilities out.

    Not thread-safe (one interpreter); the server calls it from its single batching worker.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        runner = self.interpreter.get_signature_runner(PIXELS_SIGNATURE)
        details = runner.get_input_details()
        self._input_name = next(iter(details))
        self._input = details[self._input_name]
        self._output = runner.get_output_details()["probabilities"]
        self._runner = runner

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        inputs = _quantize(np.asarray(pixels, dtype=np.float32), self._input)
        probabilities = self._runner(**{self._input_name: inputs})["probabilities"]
        return _dequantize(probabilities, self._output)


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
