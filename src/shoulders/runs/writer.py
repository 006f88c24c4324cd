"""Writes a run folder while training: every file atomically, resume state under ``.state/``.

Training writes here everything later steps need (see `shoulders.runs.layout`), so export, report,
evaluate, serve and predict never go back to the dataset.
"""

from __future__ import annotations

import dataclasses

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np

from shoulders.config import RunConfig
from shoulders.errors import ShouldersError
from shoulders.io import partial_path, read_json, save_model, write_json
from shoulders.runs import layout

VERSIONED_PACKAGES = ("shoulders", "keras", "tensorflow-cpu", "tensorflow", "numpy", "pillow", "scikit-learn")


class RunExistsError(ShouldersError, FileExistsError):
    """The chosen run folder already holds files."""


class ResumeError(ShouldersError, ValueError):
    """``--resume`` was asked for a folder that holds no resumable run, or with options that differ from its own."""


# Options a resumed run takes anew when given: where it caches, and where its features are computed.
_RESUMABLE_ANEW = ("cache_dir", "engine", "ray_address")
_PATHS = frozenset({"data", "test_file", "val_file"})
_FLAGS = {"data": "DATA", "augmentation": "--augment/--no-augment", "test_file": "--test", "val_file": "--val"}


def resume_changes(given: RunConfig, saved: RunConfig) -> list[str]:
    """The options of ``given`` that were set (differ from the defaults) and differ from the run's saved ones,
    as "--lr 0.01 (the run's: 0.001)"; a resumed run never mixes two sets of options."""
    defaults = RunConfig(data=given.data, task=given.task)
    changed = []
    for field in dataclasses.fields(RunConfig):
        name = field.name
        mine, theirs = getattr(given, name), getattr(saved, name)
        if name == "out" or name in _RESUMABLE_ANEW or _same(name, mine, theirs) or (name != "data" and mine == getattr(defaults, name)):
            continue
        changed.append(f"{_FLAGS.get(name, '--' + name.replace('_', '-'))} {_shown(mine)} (the run's: {_shown(theirs)})")
    return changed


def _same(name: str, mine: Any, theirs: Any) -> bool:
    if name in _PATHS and mine is not None and theirs is not None:
        return Path(mine).resolve() == Path(theirs).resolve() or mine == theirs
    return mine == theirs


def _shown(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        return "on" if getattr(value, "enabled", True) else "off"
    return "off" if value is None else str(value)


class OutFolderError(ShouldersError, ValueError):
    """An output folder (``--out``, ``--cache-dir``) cannot be made where it was asked for."""


def check_output_folder(path: str | os.PathLike, option: str, data: str | None = None, note: str = "") -> Path:
    """``path`` can become a folder: nothing on the way is a file, and it is not inside the ``data`` folder,
    where a scan would take it for a class of no images (or read the run's own files as data)."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            what = "is a file" if part == path else f"is inside {part}, which is a file"
            raise OutFolderError(f"{option} {path} {what}, not a folder: give {option} a folder path (new or empty).")
    if data is None or data == "digits" or not Path(data).is_dir():
        return path
    root, target = Path(data).resolve(), path.resolve()
    if target == root or target.is_relative_to(root):
        raise OutFolderError(
            f"{option} {path}{note} is inside the data folder {data}: its files would be scanned as data. "
            f"Give {option} a folder outside {root}, e.g. {root.parent / 'runs' / path.name}."
        )
    return path


def new_run_path(backbone: str, root: str | os.PathLike = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{stamp}-{backbone}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{stamp}-{backbone}-{suffix}"
    return path


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class RunFolder:
    """A run folder being written; every file is written atomically."""

    path: Path

    @classmethod
    def create(cls, path: Path, data: str | None = None, note: str = "") -> RunFolder:
        """A new run folder at ``path``, checked but not made: the first file written makes it, so a run
        refused before then (an option, the data) leaves no empty folder behind."""
        check_output_folder(path, "--out", data, note)
        if path.exists() and any(path.iterdir()):
            raise RunExistsError(
                f"{path} already holds files: choose another --out, or pass --resume to continue an interrupted run there."
            )
        return cls(path)

    @classmethod
    def open(cls, config: RunConfig, resume: bool) -> tuple[RunFolder, RunConfig]:
        """A new folder for ``config``, or (``resume``) the interrupted one with the config it saved."""
        if config.cache_dir:
            check_output_folder(config.cache_dir, "--cache-dir", config.data)
        if not resume and config.out:
            return cls.create(Path(config.out), config.data), config
        if not resume:  # the default, runs/ under the current folder
            return cls.create(new_run_path(config.backbone), config.data, " (the default, as --out was not given)"), config
        if not config.out:
            raise ResumeError("--resume needs --out RUN_FOLDER: the folder of the interrupted run")
        folder = cls(Path(config.out))
        if not (folder.path / layout.CONFIG).exists():
            raise ResumeError(f"{folder.path} holds no {layout.CONFIG}: nothing to resume. Start a new run without --resume.")
        if (folder.path / layout.METRICS).exists():
            raise ResumeError(f"{folder.path} already finished ({layout.METRICS} exists): nothing to resume.")
        saved = RunConfig.from_dict(read_json(folder.path / layout.CONFIG))
        if changed := resume_changes(config, saved):
            raise ResumeError(
                f"--resume continues {folder.path} with the options it was started with, but these differ: "
                f"{'; '.join(changed)}. Drop them to continue it as it was, or start a new run with another --out."
            )
        defaults = RunConfig(data=config.data, task=config.task)
        anew = {name: getattr(config, name) for name in _RESUMABLE_ANEW if getattr(config, name) != getattr(defaults, name)}
        return folder, dataclasses.replace(saved, **anew)

    @property
    def state_path(self) -> Path:
        state = self.path / layout.STATE
        state.mkdir(parents=True, exist_ok=True)
        return state

    def write_config(self, config: RunConfig, extra: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / layout.CONFIG, {**config.to_dict(), **extra, "versions": package_versions()})

    def write_data(self, data) -> None:
        """splits.json, bad_files.json, data.json and reference/seen.json of a loaded dataset (images or texts): the first files
        of a run, so the folder is made here, once the data has loaded."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / layout.SPLITS, data.split_files())
        write_json(self.path / layout.BAD_FILES, [{"path": bad.path, "reason": bad.reason} for bad in data.bad_files])
        duplicates = [{"kind": dup.kind, "kept": dup.kept, "dropped": list(dup.dropped)} for dup in data.duplicates]
        summary = {**data.summary(), "classes": list(data.classes), "fingerprint": data.fingerprint, "duplicates": duplicates}
        write_json(self.path / layout.DATA, summary)
        if seen := data.seen():
            (self.path / layout.REFERENCE).mkdir(exist_ok=True)
            write_json(self.path / layout.SEEN, seen)

    def write_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> Path:
        """One ``.npz`` of the folder (a `layout` name such as ``layout.TEST_REFERENCE``), atomically."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(path, ".npz")
        np.savez(partial, **arrays)  # uncompressed: zlib saves ~16% on photos at 20x the time (2 s per run)
        os.replace(partial, path)
        return path

    def state(self) -> dict:
        file = self.state_path / "progress.json"
        return read_json(file) if file.exists() else {}

    def update_state(self, **values: Any) -> None:
        write_json(self.state_path / "progress.json", {**self.state(), **values})

    def epoch_logger(self, phase: str) -> keras.callbacks.Callback:
        return _EpochLog(self.state_path / "epochs.jsonl", phase)

    def _epochs(self) -> list[dict]:
        file = self.state_path / "epochs.jsonl"
        if not file.exists():
            return []
        entries: dict[tuple[str, int], dict] = {}
        for line in file.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                entries[(entry["phase"], entry["epoch"])] = entry  # a re-run epoch (after resume) replaces the old
        return sorted(entries.values(), key=lambda entry: entry["epoch"])

    def phase_history(self, phase: str) -> list[dict]:
        return [entry for entry in self._epochs() if entry["phase"] == phase]

    def last_epoch(self, phase: str, default: int) -> int:
        """Epoch count at the end of ``phase`` (Keras numbering continues across phases)."""
        return max((entry["epoch"] + 1 for entry in self.phase_history(phase)), default=default)

    def finish(self, model: keras.Model, history: list[dict], metrics: dict) -> None:
        """Write the final files (model first, metrics last: metrics.json marks a finished run)."""
        self.path.mkdir(parents=True, exist_ok=True)
        save_model(model, self.path / layout.MODEL)
        write_json(self.path / layout.HISTORY, history)
        write_json(self.path / layout.METRICS, metrics)
        shutil.rmtree(self.path / layout.STATE, ignore_errors=True)


class _EpochLog(keras.callbacks.Callback):
    """Appends one JSON line per finished epoch, so history survives a killed process."""

    def __init__(self, file: Path, phase: str) -> None:
        super().__init__()
        self.file, self.phase = file, phase

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        entry = {"phase": self.phase, "epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        with open(self.file, "a") as handle:
            handle.write(json.dumps(entry) + "\n")  # closed at once: survives a killed process
