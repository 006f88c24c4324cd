"""What `shoulders predict` scores, as a stream: image files, folders (recursive) and ``@list.txt`` files of
paths for image runs; ``.txt`` files (a text per line) and CSV/TSV columns for text runs.

Inputs are walked lazily and twice (once to count them for the progress bar, once to score them), so
memory does not grow with their number.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shoulders.data.images import IMAGE_EXTENSIONS
from shoulders.data.splits import visible
from shoulders.errors import ShouldersError


class PredictInputsError(ShouldersError, ValueError):
    """An input list, table or column that cannot be read."""


@dataclass(frozen=True)
class Inputs:
    """The INPUT arguments of one prediction job; ``key`` is the output column (``path`` or ``text``)."""

    arguments: tuple[str, ...]
    task: str = "image"
    text_column: str | None = None  # text runs' CSV/TSV column: a name, or a position in a file without header
    texts: tuple[str, ...] = ()  # text runs: literal --text values

    @property
    def key(self) -> str:
        return "text" if self.task == "text" else "path"

    def __iter__(self) -> Iterator[str]:
        yield from self.texts
        for argument in self.arguments:
            if self.task == "text":
                yield from _texts(Path(argument), self.text_column)
            elif argument.startswith("@"):
                yield from _listed(Path(argument[1:]))
            else:
                yield from _images(Path(argument))

    def count(self) -> int:
        return sum(1 for _ in self)


def for_run(inputs: Inputs, task: str) -> Inputs:
    """``inputs`` read as the run's task reads them (the CLI parses arguments before it opens the run)."""
    if task == "image" and inputs.texts:
        raise PredictInputsError("--text is for text runs; this is an image run: give image files, folders or @list.txt files.")
    return Inputs(inputs.arguments, task, inputs.text_column, inputs.texts)


def _images(path: Path) -> Iterator[str]:
    """A folder's visible image files, sorted and recursive; any other path as given (a missing or
    unreadable one becomes a row with its error)."""
    if not path.is_dir():
        yield str(path)
        return
    for folder, subfolders, files in os.walk(path):
        subfolders[:] = sorted(name for name in subfolders if visible(Path(name)))
        for name in sorted(files):
            if visible(Path(name)) and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                yield str(Path(folder) / name)


def _listed(list_file: Path) -> Iterator[str]:
    """``@list.txt``: one path (or folder) per line, as typed; blank lines skipped."""
    for line in _lines(list_file, "@LIST"):
        yield from _images(Path(line))


def _lines(path: Path, option: str) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line in handle:
                if line.strip():
                    yield line.strip()
    except (OSError, UnicodeDecodeError) as error:
        raise PredictInputsError(f"cannot read {path} ({option}) as UTF-8 text: {error}") from None


def _texts(path: Path, column: str | None) -> Iterator[str]:
    """A ``.txt`` file's lines, or a CSV/TSV file's ``column`` (default ``text``)."""
    if path.suffix.lower() not in (".csv", ".tsv"):
        yield from _lines(path, "INPUT")
        return
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = csv.reader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            index = _column_index(path, column, rows)
            for cells in rows:
                yield cells[index] if index < len(cells) else ""
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise PredictInputsError(f"cannot read {path} as a UTF-8 table: {error}") from None


def _column_index(path: Path, column: str | None, rows: Iterator[list[str]]) -> int:
    """A position (the file has no header row) or a name looked up in the header row, which is consumed."""
    if column is not None and column.isdigit():
        return int(column)
    header = next(rows, [])
    name = column or "text"
    if name not in header:
        raise PredictInputsError(
            f"{path} has no column {name!r} (its header: {', '.join(header) or 'none'}): "
            "name the text column with --text-column NAME, or give its position (0, 1, ...) for a file without header."
        )
    return header.index(name)
