"""The export registry and `export_run`: write into ``RUN/exports/``, verify, record in manifest.json.

Image and text runs share every format but TFLite int8; a text run's exports take token ids and carry
a copy of its tokenizer.json (see `shoulders.export.savedmodel` for why not raw strings).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoulders.errors import ShouldersError
from shoulders.export import verify
from shoulders.io import read_json, save_model, write_json
from shoulders.runs import layout
from shoulders.runs.reader import Run, load_run

SAVEDMODEL_DIR = layout.SAVEDMODEL
MANIFEST = layout.MANIFEST
TOKENIZER = layout.TOKENIZER  # a text run's tokenizer, beside model.keras (and copied beside its exports)
TOKENS_NOTE = (
    "takes token ids, not raw strings: tokenize with tokenizer.json (Hugging Face tokenizers); "
    "token_ids = its ids, padding_mask = 1 per token and 0 for padding, segment_ids = 0. "
    "Raw strings inside the model would need tensorflow-text, which shoulders does not rely on."
)


class ExportUnavailableError(ShouldersError, RuntimeError):
    """The format needs a package that is not installed; the message names it."""


class ExportOptionError(ShouldersError, ValueError):
    """An unknown format, or a quantization the format (or the run's task) does not take."""


@dataclass(frozen=True)
class ExportFormat:
    """One export format: the quantizations it accepts (for image and for text runs), the packages it
    needs, and its writer."""

    name: str
    quantizations: tuple[str, ...]
    requires: tuple[str, ...]
    write: Callable[[Run, str, verify.Reference, Path], dict]
    text_quantizations: tuple[str, ...] = ("none",)
    extra: str | None = None  # the shoulders extra that installs what it requires

    def missing(self) -> list[str]:
        return [package for package in self.requires if importlib.util.find_spec(package) is None]

    def accepts(self, task: str) -> tuple[str, ...]:
        return self.text_quantizations if task == "text" else self.quantizations


def export_run(run: Run | str | os.PathLike, format: str, quantize: str = "none") -> dict:
    """Export ``run`` as ``format`` into ``RUN/exports/``, verify it on the test split, and return its
    manifest entry. Raises `ExportVerificationError` (after recording the failure) past the tolerance."""
    run = run if isinstance(run, Run) else load_run(run)
    if format not in FORMATS:
        raise ExportOptionError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    spec = FORMATS[format]
    if quantize not in spec.accepts(run.task):
        raise ExportOptionError(_refusal(spec, run.task, quantize))
    if missing := spec.missing():
        raise ExportUnavailableError(
            f"{format}: not available: it needs the package(s) {', '.join(missing)}, which are not installed. "
            f"Install them ({_install_hint(spec, missing)}) or export as savedmodel or tflite."
        )
    exports = run.path / layout.EXPORTS
    exports.mkdir(exist_ok=True)
    started = time.perf_counter()
    entry = spec.write(run, quantize, reference(run), exports)
    entry.update(format=format, quantize=quantize, seconds=round(time.perf_counter() - started, 1), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    _record(exports, run, _key(format, quantize), entry)
    for name, result in entry["verification"].items():
        verify.check(f"{format} ({quantize}) {name}", result)
    return entry


def _install_hint(spec: ExportFormat, missing: list[str]) -> str:
    return f"pip install 'shoulders[{spec.extra}]'" if spec.extra else f"pip install {' '.join(missing)}"


def read_manifest(run_path: str | os.PathLike) -> dict:
    file = Path(run_path) / layout.EXPORTS / MANIFEST
    return read_json(file) if file.exists() else {"exports": {}}


def _refusal(spec: ExportFormat, task: str, quantize: str) -> str:
    accepted = " or ".join(spec.accepts(task))
    if task == "text" and quantize in spec.quantizations:
        why = " (int8 feeds the model integer pixels calibrated on images; a text model takes token ids: use dynamic for int8 weights)"
        return f"{spec.name} takes --quantize {accepted} for text runs{why if quantize == 'int8' else ''}. Received: {quantize!r}"
    return f"{spec.name} takes --quantize {accepted}. Received: {quantize!r}"


def reference(run: Run) -> verify.Reference:
    """The Keras model's probabilities on the recorded test split (the yardstick every export is held
    to), from the run folder's reference/test.npz: pixels as training decoded them, or texts."""
    stored = run.arrays(layout.TEST_REFERENCE)
    labels = np.asarray(stored["labels"])
    if run.task == "text":
        texts = np.array(stored["inputs"].tolist(), dtype=object)
        return verify.Reference(texts, labels, run.predict(list(texts)), unit="texts")
    images = np.asarray(stored["inputs"])
    files: tuple[Path, ...] = ()
    if run.config.data != "digits":  # the test images' own files, for the encoded-bytes signature
        candidates = tuple(Path(run.config.data) / name for name in stored["names"].tolist())
        files = candidates if all(file.is_file() for file in candidates) else ()
    return verify.Reference(images, labels, run.predict(images), files)


def _key(format: str, quantize: str) -> str:
    return format if quantize == "none" else f"{format}_{quantize}"


def _record(exports: Path, run: Run, key: str, entry: dict) -> None:
    manifest = read_manifest(run.path)
    manifest.update(run=run.name, task=run.task, classes=run.classes)
    if run.task == "text":
        manifest.update(max_length=run.max_length)
    else:
        manifest.update(image_size=run.image_size, crop_fraction=run.crop_fraction)
    manifest.setdefault("exports", {})[key] = entry
    write_json(exports / MANIFEST, manifest)


def _replace(build: Callable[[Path], dict], target: Path) -> dict:
    """Build into a sibling temporary path, then swap it in: a failed build leaves the old export intact."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = build(partial)
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    partial.rename(target)
    return result


def _size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) if path.is_dir() else path.stat().st_size


def _tokenized(forward: Callable[[dict[str, np.ndarray]], np.ndarray], tokenizer_file: Path, run: Run) -> verify.Predict:
    """Texts -> probabilities through an export's own copy of the tokenizer, as a user would call it."""
    from shoulders.backbones.tokenizer import TextTokenizer

    tokenizer = TextTokenizer.from_file(tokenizer_file, run.max_length or 512)
    return lambda texts: forward(tokenizer(list(texts)))


def _copy_tokenizer(run: Run, exports: Path) -> Path:
    target = exports / TOKENIZER
    shutil.copyfile(run.path / TOKENIZER, target)
    return target


def _custom_layers(model) -> list[str]:
    """Registered names of the layers inside ``model`` that Keras itself does not provide (keras-hub's
    encoder layers in a text model; shoulders' own in a model saved by an earlier version)."""
    import keras

    names, stack = set(), list(model.layers)
    while stack:
        layer = stack.pop()
        if not type(layer).__module__.startswith("keras."):
            names.add(keras.saving.get_registered_name(type(layer)))
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    return sorted(names)


def _requires(custom_layers: list[str]) -> list[str]:
    """The pip packages ``keras.saving.load_model(path, safe_mode=True)`` needs beside Keras and a backend.
    Keras imports keras-hub's layers by itself once keras-hub is installed."""
    return sorted({name.split(">")[0].replace("_", "-") for name in custom_layers})  # keras_hub>X: keras-hub


def _write_keras(run: Run, quantize: str, ref: verify.Reference, exports: Path) -> dict:
    """The inference model as .keras (no optimizer state: smaller than the run's model.keras), reloaded
    with safe_mode=True and compared; text runs get tokenizer.json beside it."""
    import keras

    from shoulders.training.metrics import softmax

    target = exports / layout.MODEL
    _replace(lambda path: {"written": save_model(run.model, path)}, target)
    model = keras.saving.load_model(target, safe_mode=True, compile=False)

    def forward(inputs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if not isinstance(inputs, dict):
            inputs = np.asarray(inputs, np.float32)  # pixels
        return softmax(np.asarray(model.predict_on_batch(inputs)))

    custom = _custom_layers(model)
    entry: dict = {"path": str(target.relative_to(exports.parent)), "bytes": _size(target), "custom_layers": custom, "requires": _requires(custom)}
    predict = forward
    if run.task == "text":
        tokenizer = _copy_tokenizer(run, exports)
        predict = _tokenized(forward, tokenizer, run)
        entry.update(tokenizer=str(tokenizer.relative_to(exports.parent)), note=TOKENS_NOTE)
    entry["verification"] = {"keras": verify.compare(target.name, verify.batched(predict, ref.inputs), ref, verify.FLOAT_TOLERANCE)}
    return entry


def _write_savedmodel(run: Run, quantize: str, ref: verify.Reference, exports: Path) -> dict:
    if run.task == "text":
        return _write_token_savedmodel(run, ref, exports)
    import tensorflow as tf

    from shoulders.export.savedmodel import BYTES_SIGNATURE, PIXELS_SIGNATURE, export_savedmodel

    target = exports / SAVEDMODEL_DIR
    signatures = _replace(
        lambda path: export_savedmodel(run.model, run.classes, run.image_size, run.crop_fraction, path), target
    )
    loaded = tf.saved_model.load(str(target))
    pixels = loaded.signatures[PIXELS_SIGNATURE]
    checks = {
        PIXELS_SIGNATURE: verify.compare(
            PIXELS_SIGNATURE,
            verify.batched(lambda x: pixels(pixels=tf.constant(x, tf.float32))["probabilities"].numpy(), ref.inputs),
            ref,
            verify.FLOAT_TOLERANCE,
        )
    }
    if ref.files:  # decoding inside the graph, from the test images' own files
        images = loaded.signatures[BYTES_SIGNATURE]
        encoded = np.array([file.read_bytes() for file in ref.files], dtype=object)
        probabilities = verify.batched(lambda x: images(images=tf.constant(x))["probabilities"].numpy(), encoded)
        checks[BYTES_SIGNATURE] = verify.compare(BYTES_SIGNATURE, probabilities, ref, verify.FLOAT_TOLERANCE)
    entry = {"path": str(target.relative_to(exports.parent)), "bytes": _size(target), "signatures": signatures, "verification": checks}
    if not ref.files and run.config.data != "digits":
        entry["note"] = (
            f"{BYTES_SIGNATURE} was not verified: the test images' own files are not all under {run.config.data} "
            f"(\"data\" in {layout.CONFIG}). Put them back there, or set \"data\" to their new place, and export again to check it."
        )
    return entry


def _write_token_savedmodel(run: Run, ref: verify.Reference, exports: Path) -> dict:
    """Token ids in (see `shoulders.export.savedmodel`); checked through its own assets/tokenizer.json."""
    import tensorflow as tf

    from shoulders.export.savedmodel import TOKENS_SIGNATURE, export_token_savedmodel

    target = exports / SAVEDMODEL_DIR
    signatures = _replace(lambda path: export_token_savedmodel(run.model, run.classes, run.path / TOKENIZER, path), target)
    signature = tf.saved_model.load(str(target)).signatures[TOKENS_SIGNATURE]

    def forward(tokens: dict[str, np.ndarray]) -> np.ndarray:
        return signature(**{name: tf.constant(ids) for name, ids in tokens.items()})["probabilities"].numpy()

    tokenizer = target / "assets" / TOKENIZER
    probabilities = verify.batched(_tokenized(forward, tokenizer, run), ref.inputs)
    return {
        "path": str(target.relative_to(exports.parent)),
        "bytes": _size(target),
        "signatures": signatures,
        "tokenizer": str(tokenizer.relative_to(exports.parent)),
        "note": TOKENS_NOTE,
        "verification": {TOKENS_SIGNATURE: verify.compare(TOKENS_SIGNATURE, probabilities, ref, verify.FLOAT_TOLERANCE)},
    }


def _write_tflite(run: Run, quantize: str, ref: verify.Reference, exports: Path) -> dict:
    from shoulders.export.tflite import TFLiteModel, convert

    savedmodel = exports / SAVEDMODEL_DIR
    if not (savedmodel / "saved_model.pb").exists() or not read_manifest(run.path)["exports"].get("savedmodel", {}):
        _write_savedmodel(run, "none", ref, exports)  # TFLite converts from the SavedModel
    calibration = None
    if quantize == "int8":
        calibration = run.arrays(layout.CALIBRATION)["inputs"]
    target = exports / ("model.tflite" if quantize == "none" else f"model_{quantize}.tflite")
    _replace(lambda path: {"written": path.write_bytes(convert(savedmodel, quantize, calibration))}, target)
    tolerance = verify.INTEGER_TOLERANCE if quantize in ("dynamic", "int8") else verify.FLOAT_TOLERANCE
    return _runtime_entry(run, TFLiteModel(target), target, ref, tolerance)


def _runtime_entry(run: Run, model: Callable, target: Path, ref: verify.Reference, tolerance: float) -> dict:
    """The manifest entry of an export run by its own runtime (TFLite, onnxruntime): ``model`` maps pixels,
    or a text run's token arrays, to probabilities; it is checked on the test split (texts through a
    copy of the run's tokenizer.json beside the export)."""
    exports = target.parent
    entry: dict = {"path": str(target.relative_to(exports.parent)), "bytes": _size(target)}
    if run.task == "text":
        tokenizer = _copy_tokenizer(run, exports)
        probabilities = verify.batched(_tokenized(model, tokenizer, run), ref.inputs)
        entry.update(tokenizer=str(tokenizer.relative_to(exports.parent)), note=TOKENS_NOTE)
        entry["verification"] = {"tokens": verify.compare(target.name, probabilities, ref, tolerance)}
    else:
        entry["verification"] = {"pixels": verify.compare(target.name, verify.batched(model, ref.inputs), ref, tolerance)}
    return entry


def _write_onnx(run: Run, quantize: str, ref: verify.Reference, exports: Path) -> dict:
    """tf2onnx from the Keras model called with training=False; verified with onnxruntime."""
    from shoulders.export.onnx import OnnxModel, convert

    target = exports / "model.onnx"
    described = _replace(lambda path: convert(run.model, run.image_size if run.task == "image" else None, path), target)
    return {**_runtime_entry(run, OnnxModel(target), target, ref, verify.FLOAT_TOLERANCE), **described}


FORMATS: dict[str, ExportFormat] = {
    "keras": ExportFormat("keras", ("none",), (), _write_keras),
    "savedmodel": ExportFormat("savedmodel", ("none",), ("tensorflow",), _write_savedmodel),
    "tflite": ExportFormat(
        "tflite", ("none", "float16", "dynamic", "int8"), ("tensorflow", "ai_edge_litert"), _write_tflite,
        text_quantizations=("none", "float16", "dynamic"),
    ),
    "onnx": ExportFormat("onnx", ("none",), ("tensorflow", "tf2onnx", "onnxruntime"), _write_onnx, extra="onnx"),
}
