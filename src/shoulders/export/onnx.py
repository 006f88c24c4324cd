"""ONNX export through tf2onnx, and an onnxruntime runner for the result (the ``onnx`` extra).

The graph is traced from a `tf.function` that calls the Keras model with ``training=False`` and applies
the softmax: Keras' own ``model.export(format="onnx")`` traces without ``training=False``, keeps the
augmentation ops and gives a graph onnxruntime rejects (INVALID_GRAPH). Image models take float32
pixels (N, H, W, 3) in 0..255 named ``pixels``; text models the token ids of their SavedModel
(``token_ids``, ``segment_ids``, ``padding_mask``, int32 (N, L)). Both return ``probabilities``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

OPSET = 17
OUTPUT = "probabilities"


def convert(model, image_size: int | None, path: Path) -> dict:
    """Write ``model`` (a Keras model on the TensorFlow backend) as ONNX to ``path``; returns its
    inputs and outputs as ``name: [shape, dtype]`` (None for a free dimension)."""
    import tensorflow as tf
    import tf2onnx

    if image_size is None:  # a text model: token arrays in (the text extra is installed: it has tokenizers)
        from shoulders.backbones.tokenizer import INPUT_NAMES

        signature = [tf.TensorSpec((None, None), tf.int32, name=name) for name in INPUT_NAMES]

        def forward(*arrays):
            return {OUTPUT: tf.nn.softmax(model(dict(zip(INPUT_NAMES, arrays)), training=False))}
    else:
        signature = [tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="pixels")]

        def forward(pixels):
            return {OUTPUT: tf.nn.softmax(model(pixels, training=False))}

    proto, _ = tf2onnx.convert.from_function(tf.function(forward), input_signature=signature, opset=OPSET, output_path=str(path))
    return {"inputs": _described(proto.graph.input), "outputs": _described(proto.graph.output), "opset": OPSET}


def _described(values) -> dict:
    import onnx

    described = {}
    for value in values:
        tensor = value.type.tensor_type
        shape = [dimension.dim_value or None for dimension in tensor.shape.dim]
        described[value.name] = [shape, onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name]
    return described


class OnnxModel:
    """Runs an exported ``model.onnx`` with onnxruntime on the CPU: pixels (or a dict of token arrays)
    -> probabilities. One session; onnxruntime sessions are safe to call from several threads."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [value.name for value in self.session.get_inputs()]
        self.output = next(value.name for value in self.session.get_outputs() if value.name.startswith(OUTPUT))

    def __call__(self, inputs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(inputs, dict):
            feed = {name: np.asarray(inputs[name], np.int32) for name in self.inputs}
        else:
            feed = {self.inputs[0]: np.asarray(inputs, np.float32)}
        return self.session.run([self.output], feed)[0]
