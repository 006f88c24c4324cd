"""Reading labelled text: CSV/TSV tables and folders of class subfolders holding UTF-8 ``.txt`` files.

A table is ``.csv`` (comma), ``.tsv``/``.tab`` (tab), anything else sniffed, with a text and a label column
found by name (or given by position, for a file without header). Rows that cannot be used (empty text,
missing label, too few fields, bytes that are not UTF-8) are kept aside as `BadFile` with their row id,
never dropped silently. Splitting what was read is `shoulders.text.data`'s job.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from shoulders.data.splits import (
    BadFile,
    DataError,
    DataOptionError,
    class_folders,
    files_under,
    find_layout,
    unlabelled_files,
)

TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment")
DELIMITERS = {".tsv": "\t", ".tab": "\t", ".csv": ","}
UNSUPPORTED = {".json", ".jsonl", ".parquet", ".xlsx", ".xls", ".zip", ".gz", ".arrow"}
Column = str | int | None


@dataclass(frozen=True)
class Row:
    """One usable labelled text and its row id ("train.tsv:17", 1-based line, or "pos/001.txt")."""

    name: str
    text: str
    label: str
    split: str  # where the row came from: "pool" (ours to split), "train", "val" or "test"


@dataclass
class Source:
    """What one file or folder gave: usable rows, skipped rows, and the labels it declares."""

    display: str  # "train.tsv" or "train/" for notes and messages
    rows: list[Row] = field(default_factory=list)
    bad: list[BadFile] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)  # class folders count even when empty
    notes: list[str] = field(default_factory=list)


def check_column(value: Column, option: str) -> None:
    """A column option is a name or a position from 0; anything else is refused before any reading."""
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return
    raise DataOptionError(f"{option} must be a column name or a position from 0 (e.g. 'sentence' or 0). Received: {value!r}")


# --- tables -------------------------------------------------------------------------------------------


def _delimiter(path: Path, sample: str) -> str:
    if path.suffix.lower() in DELIMITERS:
        return DELIMITERS[path.suffix.lower()]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def _undecodable(cells: list[str], header: list[str] | None) -> str | None:
    """Why a row decoded with surrogateescape holds bytes that are not UTF-8, or None when it is clean."""
    for position, cell in enumerate(cells):
        try:
            cell.encode("utf-8")
        except UnicodeEncodeError as error:
            byte = ord(cell[error.start]) - 0xDC00  # surrogateescape maps byte b to U+DC00 + b
            column = repr(header[position]) if header and position < len(header) else str(position)
            where = f"character {error.start} of column {column}"
            return f"not valid UTF-8 (byte 0x{byte:02x} at {where}): re-save the file as UTF-8"
    return None


def _guess(header: list[str], avoid: tuple[str, ...], last: bool) -> str:
    others = [name for name in header if name.casefold() not in avoid] or header or ["NAME"]
    return others[-1] if last else others[0]


def _column(given: Column, header: list[str], role: str, display: str) -> tuple[int, str | None]:
    """The position of the text or label column, and a note when it was found under another name."""
    if isinstance(given, int):
        return given, None
    candidates = TEXT_COLUMNS if role == "text" else LABEL_COLUMNS
    folded = [name.casefold() for name in header]
    if given is not None:
        for names, wanted in ((header, given), (folded, given.casefold())):
            if wanted in names:
                return names.index(wanted), None
    else:
        for candidate in candidates:
            if candidate in folded:
                index = folded.index(candidate)
                note = f"column {header[index]!r} used as {role} (no {candidates[0]!r} column)"
                return index, None if candidate == candidates[0] else note
    option, position = ("--text-column", 0) if role == "text" else ("--label-column", 1)
    suggestion = _guess(header, LABEL_COLUMNS if role == "text" else TEXT_COLUMNS, last=role == "label")
    looked = "" if given is not None else f" (looked for {', '.join(candidates)})"
    raise DataError(
        f"no column {given or candidates[0]!r} in {display}{looked}; columns: {', '.join(header) or '(none)'}. "
        f"Pass {option} {suggestion} (or a position: {option} {position} for a file without header)."
    )


def _decode_table(path: Path) -> tuple[str, bool]:
    """The file's text, and whether it holds bytes that are not UTF-8 (kept as surrogates, found per row)."""
    raw = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="surrogateescape"), True


def _row_problem(cells: list[str], header: list[str] | None, needed: int, check_bytes: bool) -> str | None:
    reason = _undecodable(cells, header) if check_bytes else None
    if reason is None and len(cells) < needed:
        reason = f"too few fields ({len(cells)}; the columns used need {needed})"
    return reason


def read_table(path: Path, split: str, text_column: Column, label_column: Column, display: str) -> Source:
    """Rows of a CSV/TSV; a header row unless both columns are given by position."""
    content, check_bytes = _decode_table(path)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=_delimiter(path, content[:65536]))
    source = Source(display)
    header: list[str] | None = None
    try:
        if not (isinstance(text_column, int) and isinstance(label_column, int)):
            header = [cell.strip() for cell in next((row for row in reader if row), [])]
            if not header:
                raise DataError(f"{display} is empty: it needs a header row (e.g. text,label) and rows of data.")
            if check_bytes and _undecodable(header, None):
                raise DataError(f"the header row of {display} is not valid UTF-8: re-save the file as UTF-8.")
        text_at, text_note = _column(text_column, header or [], "text", display)
        label_at, label_note = _column(label_column, header or [], "label", display)
        if text_at == label_at:
            raise DataError(f"{display}: text and label are the same column ({text_at}); pass two different columns.")
        source.notes += [note for note in (text_note, label_note) if note]
        needed = max(text_at, label_at) + 1
        previous = reader.line_num
        for cells in reader:
            start, previous = previous + 1, reader.line_num  # the 1-based line the row starts on
            if not cells:
                continue  # a blank line is not a row
            name = f"{display}:{start}"
            reason = _row_problem(cells, header, needed, check_bytes)
            if reason and reason.startswith("too few") and previous > start:
                reason += f"; the row runs over lines {start}-{previous}: look for an unclosed quote (\")"
            text = "" if reason else cells[text_at].strip()
            label = "" if reason else cells[label_at].strip()
            reason = reason or ("empty text" if not text else "missing label" if not label else None)
            if reason:
                source.bad.append(BadFile(name, reason))
            else:
                source.rows.append(Row(name, text, label, split))
                source.labels.add(label)
    except csv.Error as error:
        raise DataError(
            f"{display} line {reader.line_num}: {error}. Look for an unclosed quote (\") before that line."
        ) from None
    return source


# --- folders ------------------------------------------------------------------------------------------


def _read_text_file(path: Path) -> tuple[str, str | None]:
    """(text, None) or ("", why the file cannot be used)."""
    raw = path.read_bytes()
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[skip:].decode("utf-8").strip()
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        return "", f"not valid UTF-8 (byte 0x{byte:02x} at byte {error.start + skip}): re-save the file as UTF-8"
    return (text, None) if text else ("", "empty text")


def read_folder(folder: Path, root: Path, split: str) -> Source:
    """Every file under the class subfolders of ``folder``; row ids are paths relative to ``root``."""
    source = Source(f"{folder.name}/", bad=unlabelled_files(folder, root, [".txt"]))
    for class_folder in class_folders(folder):
        source.labels.add(class_folder.name)
        for path in files_under(class_folder):
            name = path.relative_to(root).as_posix()
            if path.suffix.lower() != ".txt":
                reason = f"not a .txt file ({path.suffix or 'no extension'}): only UTF-8 .txt files are read"
                source.bad.append(BadFile(name, reason))
                continue
            text, reason = _read_text_file(path)
            if reason:
                source.bad.append(BadFile(name, reason))
            else:
                source.rows.append(Row(name, text, class_folder.name, split))
    return source


def read_path(path: Path, split: str, text_column: Column, label_column: Column, display: str) -> Source:
    """A folder of class subfolders, or a table; anything else gets an error that says what is read."""
    if path.is_dir():
        return read_folder(path, path.parent, split)
    if not path.is_file():
        raise DataError(
            f"{path} does not exist. Give a CSV/TSV file with a text and a label column, or a folder of class "
            "subfolders holding .txt files (reviews/pos/001.txt, reviews/neg/002.txt, ...)."
        )
    if path.suffix.lower() in UNSUPPORTED:
        raise DataError(f"{path}: {path.suffix} files are not read; save it as CSV or TSV with a text and a label column.")
    return read_table(path, split, text_column, label_column, display)


def read_sources(
    root: Path, test: Path | None, val: Path | None, text_column: Column, label_column: Column
) -> dict[str, Source]:
    """The training source ("pool" when the split is ours to make, else "train") and the given val/test ones."""
    given = test is not None or val is not None
    if root.is_dir():
        folders = find_layout(root)
        if "pool" in folders and given:
            folders = {"train": folders["pool"]}
        sources = {split: read_folder(folder, root, split) for split, folder in folders.items()}
    else:
        split = "train" if given else "pool"
        sources = {split: read_path(root, split, text_column, label_column, root.name)}
    for split, path in (("test", test), ("val", val)):
        if path is None:
            continue
        if split in sources:
            raise DataError(
                f"{root} already has a {split} set ({sources[split].display}) and --{split} {path} gives another: "
                "keep one of them."
            )
        display = path.name if path.name != root.name else str(path)
        sources[split] = read_path(path, split, text_column, label_column, display)
    return sources
