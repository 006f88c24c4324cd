"""The export registry and `export_run`: write into ``RUN/exports/``, verify, record in manifest.json."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoulders.export import verify
from shoulders.io import read_json, write_json
from shoulders.run import Run, load_run

SAVEDMODEL_DIR = "savedmodel"
MANIFEST = "manifest.json"


class ExportUnavailableError(RuntimeError):
    """The format needs a package that is not installed; the message names it."""


@dataclass(frozen=True)
class ExportFormat:
    """One export format: the quantizations it accepts, the packages it needs, and its writer."""

    name: str
    quantizations: tuple[str, ...]
    requires: tuple[str, ...]
    write: Callable[[Run, str, verify.Reference, Path], dict]

    def missing(self) -> list[str]:
        return [package for package in self.requires if importlib.util.find_spec(package) is None]


def export_run(run: Run | str | os.PathLike, format: str, quantize: str = "none") -> dict:
    """Export ``run`` as ``format`` into ``RUN/exports/``, verify it on the test split, and return its
    manifest entry. Raises `ExportVerificationError` (after recording the failure) past the tolerance."""
    run = run if isinstance(run, Run) else load_run(run)
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    spec = FORMATS[format]
    if quantize not in spec.quantizations:
        raise ValueError(f"{format} takes --quantize {' or '.join(spec.quantizations)}. Received: {quantize!r}")
    if missing := spec.missing():
        raise ExportUnavailableError(
            f"{format}: not available: it needs the package(s) {', '.join(missing)}, which are not installed. "
            f"Install them (pip install {' '.join(missing)}) or export as savedmodel or tflite."
        )
    exports = run.path / "exports"
    exports.mkdir(exist_ok=True)
    started = time.perf_counter()
    entry = spec.write(run, quantize, reference(run), exports)
    entry.update(format=format, quantize=quantize, seconds=round(time.perf_counter() - started, 1), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    _record(exports, run, _key(format, quantize), entry)
    for name, result in entry["verification"].items():
        verify.check(f"{format} ({quantize}) {name}", result)
    return entry


def read_manifest(run_path: str | os.PathLike) -> dict:
    file = Path(run_path) / "exports" / MANIFEST
    return read_json(file) if file.exists() else {"exports": {}}


def reference(run: Run) -> verify.Reference:
    """The Keras model's probabilities on the test split (the yardstick every export is held to)."""
    from shoulders.training.recipe import load_data, predict_probabilities

    data = load_data(run.config, run.image_size, progress=False)
    images, labels = data.subset("test")
    files: tuple[Path, ...] = ()
    if run.config.data != "digits":
        candidates = tuple(Path(run.config.data) / data.names[row] for row in data.splits["test"])
        files = candidates if all(file.is_file() for file in candidates) else ()
    images = np.asarray(images)
    return verify.Reference(images, np.asarray(labels), predict_probabilities(run.model, images), files)


def _key(format: str, quantize: str) -> str:
    return format if quantize == "none" else f"{format}_{quantize}"


def _record(exports: Path, run: Run, key: str, entry: dict) -> None:
    manifest = read_manifest(run.path)
    manifest.update(run=run.name, classes=run.classes, image_size=run.image_size, crop_fraction=run.crop_fraction)
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


def _write_savedmodel(run: Run, quantize: str, ref: verify.Reference, exports: Path) -> dict:
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
            verify.batched(lambda x: pixels(pixels=tf.constant(x, tf.float32))["probabilities"].numpy(), ref.images),
            ref,
            verify.FLOAT_TOLERANCE,
        )
    }
    if ref.files:  # decoding inside the graph, from the test images' own files
        images = loaded.signatures[BYTES_SIGNATURE]
        encoded = np.array([file.read_bytes() for file in ref.files], dtype=object)
        probabilities = verify.batched(lambda x: images(images=tf.constant(x))["probabilities"].numpy(), encoded)
        checks[BYTES_SIGNATURE] = verify.compare(BYTES_SIGNATURE, probabilities, ref, verify.FLOAT_TOLERANCE)
    return {"path": str(target.relative_to(exports.parent)), "bytes": _size(target), "signatures": signatures, "verification": checks}


def _write_tflite(run: Run, quantize: str, ref: verify.Reference, exports: Path) -> dict:
    from shoulders.export.tflite import TFLiteModel, convert

    savedmodel = exports / SAVEDMODEL_DIR
    if not (savedmodel / "saved_model.pb").exists() or not read_manifest(run.path)["exports"].get("savedmodel", {}):
        _write_savedmodel(run, "none", ref, exports)  # TFLite converts from the SavedModel
    calibration = None
    if quantize == "int8":
        from shoulders.training.recipe import load_data

        calibration = np.asarray(load_data(run.config, run.image_size, progress=False).subset("train")[0])
    target = exports / ("model.tflite" if quantize == "none" else f"model_{quantize}.tflite")
    _replace(lambda path: {"written": path.write_bytes(convert(savedmodel, quantize, calibration))}, target)
    tolerance = verify.INTEGER_TOLERANCE if quantize in ("dynamic", "int8") else verify.FLOAT_TOLERANCE
    model = TFLiteModel(target)
    probabilities = verify.batched(model, ref.images)
    return {
        "path": str(target.relative_to(exports.parent)),
        "bytes": _size(target),
        "verification": {"pixels": verify.compare(target.name, probabilities, ref, tolerance)},
    }


def _write_onnx(run: Run, quantize: str, ref: verify.Reference, exports: Path) -> dict:
    raise ExportUnavailableError(
        "onnx: tf2onnx is installed but this version of shoulders has no verified ONNX path yet; "
        "export as savedmodel and convert with `python -m tf2onnx.convert --saved-model RUN/exports/savedmodel`."
    )


FORMATS: dict[str, ExportFormat] = {
    "savedmodel": ExportFormat("savedmodel", ("none",), ("tensorflow",), _write_savedmodel),
    "tflite": ExportFormat("tflite", ("none", "float16", "dynamic", "int8"), ("tensorflow", "ai_edge_litert"), _write_tflite),
    "onnx": ExportFormat("onnx", ("none",), ("tf2onnx", "onnxruntime"), _write_onnx),
}
