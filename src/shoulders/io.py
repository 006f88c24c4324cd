"""Atomic writes: a killed process never leaves a half-written file that later looks valid.

The ground floor: no keras import here (models are saved through their own ``save`` methods), so any
module can use it, the lineage and the CLI included, without loading a backend.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoulders.errors import ShouldersError

if TYPE_CHECKING:
    import keras


def partial_path(path: Path, suffix: str = "") -> Path:
    """A hidden sibling of ``path`` for writing before the atomic rename (unique per process)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{suffix or path.suffix}")


def write_json(path: str | os.PathLike, value: Any) -> Path:
    return write_text(path, json.dumps(value, indent=2, default=_jsonable) + "\n")


def write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    partial = partial_path(path)
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


class BrokenFileError(ShouldersError, ValueError):
    """A JSON file shoulders wrote is no longer valid JSON (truncated, overwritten or mis-edited)."""


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; a file that is not valid JSON is a `BrokenFileError` naming it and the fix."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f"line {error.lineno} column {error.colno}: {error.msg}" if isinstance(error, json.JSONDecodeError) else "not UTF-8 text"
        raise BrokenFileError(
            f"{path} is not valid JSON ({where}): it was truncated, overwritten or edited by hand. Restore it from "
            "a backup or fix it by hand; if it belongs to a run folder and cannot be restored, train the run again."
        ) from None


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save`` to a temporary ``.keras`` file, then an atomic rename onto ``path``."""
    path = Path(path)
    partial = partial_path(path, ".keras")
    model.save(partial)
    os.replace(partial, path)
    return path


def save_weights(model: keras.Model, path: str | os.PathLike) -> Path:
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial.weights.h5")
    model.save_weights(partial)
    os.replace(partial, path)
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
