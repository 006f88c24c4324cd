"""From a CSV/TSV file or a folder of .txt files to validated, deduplicated, honestly split text.

Inputs: a table (``.csv`` comma, ``.tsv``/``.tab`` tab, anything else sniffed) with a text and a label
column, or a folder of class subfolders holding ``.txt`` files, in the same layouts as the image loader
(class folders; ``train/`` + ``test/``; ``train/`` + ``val/``; all three). An explicit ``test`` file is the
test set and an explicit ``val`` file the validation set; whatever is missing is carved from the training
rows, stratified by class. ``max_train`` keeps a stratified, seeded subset of the training rows once the
test set is set aside, and validation is carved from that subset.

Rows that cannot be used (empty text, missing label, too few fields, bytes that are not UTF-8) are listed
in ``bad_rows`` with their row id and skipped, never silently. Exact duplicate texts are resolved and
reported as the image loader does: ``within_split`` keeps the first copy, ``across_splits`` keeps the
training copy (nothing scored at the end was seen in training), ``across_classes`` drops every copy.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shoulders.data.dataset import (
    SPLIT_ORDER,
    BadFile,
    DataError,
    Duplicate,
    _class_folders,
    _files_under,
    _layout,
    _visible,
    check_fractions,
    deduplicate,
    split_names,
    split_summary,
    stratified_split,
)

TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment")
DELIMITERS = {".tsv": "\t", ".tab": "\t", ".csv": ","}
UNSUPPORTED = {".json", ".jsonl", ".parquet", ".xlsx", ".xls", ".zip", ".gz", ".arrow"}
Column = str | int | None


@dataclass
class TextData:
    """Texts with labels and the split of every row; the text counterpart of `PreparedData`."""

    classes: tuple[str, ...]
    texts: tuple[str, ...]
    labels: np.ndarray
    names: tuple[str, ...]  # a row id per text: "train.tsv:17" (1-based line) or "pos/001.txt"
    splits: dict[str, np.ndarray]
    bad_rows: list[BadFile] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    split_note: str = ""
    source: str = ""
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def bad_files(self) -> list[BadFile]:
        """The skipped rows under the image loader's name, so a run folder writes both alike."""
        return self.bad_rows

    def subset(self, split: str) -> tuple[list[str], np.ndarray]:
        rows = self.splits[split]
        return [self.texts[row] for row in rows], self.labels[rows]

    def split_files(self) -> dict[str, list[str]]:
        return split_names(self.names, self.splits)

    def summary(self) -> dict:
        return {**split_summary(self), "suspicious_files": [], "notes": list(self.notes)}


@dataclass(frozen=True)
class _Row:
    name: str
    text: str
    label: str
    split: str  # where the row came from: "pool" (ours to split), "train", "val" or "test"


@dataclass
class _Source:
    """What one file or folder gave: usable rows, skipped rows, and the labels it declares."""

    display: str  # "train.tsv" or "train/" for notes and messages
    rows: list[_Row] = field(default_factory=list)
    bad: list[BadFile] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)  # class folders count even when empty
    notes: list[str] = field(default_factory=list)


def _check_column(value: Column, option: str) -> None:
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return
    raise ValueError(f"{option} must be a column name or a position from 0 (e.g. 'sentence' or 0). Received: {value!r}")


def _check_max_train(max_train: int | None) -> None:
    if max_train is None or (isinstance(max_train, int) and not isinstance(max_train, bool) and max_train > 0):
        return
    raise ValueError(f"max_train must be a positive number of rows, e.g. 5000, or None for all. Received: {max_train!r}")


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


def _read_table(path: Path, split: str, text_column: Column, label_column: Column, display: str) -> _Source:
    """Rows of a CSV/TSV; a header row unless both columns are given by position."""
    content, check_bytes = _decode_table(path)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=_delimiter(path, content[:65536]))
    source = _Source(display)
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
                source.rows.append(_Row(name, text, label, split))
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


def _read_folder(folder: Path, root: Path, split: str) -> _Source:
    """Every file under the class subfolders of ``folder``; row ids are paths relative to ``root``."""
    source = _Source(f"{folder.name}/")
    for path in sorted(folder.iterdir()):
        if path.is_file() and _visible(path) and path.suffix.lower() == ".txt":
            reason = "not inside a class folder, so it has no label: move it into the folder of its class"
            source.bad.append(BadFile(path.relative_to(root).as_posix(), reason))
    for class_folder in _class_folders(folder):
        source.labels.add(class_folder.name)
        for path in _files_under(class_folder):
            name = path.relative_to(root).as_posix()
            if path.suffix.lower() != ".txt":
                reason = f"not a .txt file ({path.suffix or 'no extension'}): only UTF-8 .txt files are read"
                source.bad.append(BadFile(name, reason))
                continue
            text, reason = _read_text_file(path)
            if reason:
                source.bad.append(BadFile(name, reason))
            else:
                source.rows.append(_Row(name, text, class_folder.name, split))
    return source


def _read(path: Path, split: str, text_column: Column, label_column: Column, display: str) -> _Source:
    if path.is_dir():
        return _read_folder(path, path.parent, split)
    if not path.is_file():
        raise DataError(
            f"{path} does not exist. Give a CSV/TSV file with a text and a label column, or a folder of class "
            "subfolders holding .txt files (reviews/pos/001.txt, reviews/neg/002.txt, ...)."
        )
    if path.suffix.lower() in UNSUPPORTED:
        raise DataError(f"{path}: {path.suffix} files are not read; save it as CSV or TSV with a text and a label column.")
    return _read_table(path, split, text_column, label_column, display)


def read_labelled_texts(
    path: str | os.PathLike, *, text_column: Column = None, label_column: Column = None
) -> tuple[list[str], list[str], list[BadFile]]:
    """Every usable (text, label) row of one file or folder of class subfolders, unsplit, with the bad
    rows: for scoring a trained model, where one class or a handful of rows is a fine test file."""
    _check_column(text_column, "--text-column")
    _check_column(label_column, "--label-column")
    path = Path(path)
    if path.is_dir():
        sources = [_read_folder(folder, path, split) for split, folder in _layout(path).items()]
    else:
        sources = [_read(path, "test", text_column, label_column, path.name)]
    rows = [row for source in sources for row in source.rows]
    if not rows:
        raise DataError(f"{path} holds no usable labelled text: check the columns (--text-column, --label-column) and bad rows.")
    return [row.text for row in rows], [row.label for row in rows], [bad for source in sources for bad in source.bad]


def _read_sources(
    root: Path, test: Path | None, val: Path | None, text_column: Column, label_column: Column
) -> dict[str, _Source]:
    """The training source ("pool" when the split is ours to make, else "train") and the given val/test ones."""
    given = test is not None or val is not None
    if root.is_dir():
        folders = _layout(root)
        if "pool" in folders and given:
            folders = {"train": folders["pool"]}
        sources = {split: _read_folder(folder, root, split) for split, folder in folders.items()}
    else:
        split = "train" if given else "pool"
        sources = {split: _read(root, split, text_column, label_column, root.name)}
    for split, path in (("test", test), ("val", val)):
        if path is None:
            continue
        if split in sources:
            raise DataError(
                f"{root} already has a {split} set ({sources[split].display}) and --{split} {path} gives another: "
                "keep one of them."
            )
        display = path.name if path.name != root.name else str(path)
        sources[split] = _read(path, split, text_column, label_column, display)
    return sources


# --- duplicates and splits ----------------------------------------------------------------------------


def _check_class_sizes(classes: tuple[str, ...], labels: np.ndarray, rows: np.ndarray, where: str, minimum: int = 2) -> None:
    counts = np.bincount(labels[rows], minlength=len(classes))
    for index, name in enumerate(classes):
        if counts[index] == 0:
            raise DataError(f"class {name!r} has no usable rows in {where}: add rows for it or remove the class.")
        if counts[index] < minimum:
            raise DataError(
                f"class {name!r} has only {counts[index]} usable row in {where}; need at least {minimum} (more like "
                "100+ for a useful model). Add rows or remove the class."
            )


def _stratified_subset(labels: np.ndarray, rows: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Exactly ``size`` of ``rows``, each class within one row of its share (largest remainder), seeded."""
    present, counts = np.unique(labels[rows], return_counts=True)
    quota, remainder = np.divmod(counts * size, len(rows))
    quota[np.argsort(-remainder, kind="stable")[: size - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for label, take in zip(present, quota):
        members = rows[labels[rows] == label].copy()
        rng.shuffle(members)
        chosen.append(members[:take])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _split(
    given: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], displays: dict[str, str],
    max_train: int | None, val_fraction: float, test_fraction: float, seed: int,
) -> tuple[dict[str, np.ndarray], str | None, int | None]:
    """Row indices per split, a note on --max-train and the subset size when one was taken.

    The given test/val rows are never moved; validation is carved after the subset, so it comes from it.
    """
    pool = np.flatnonzero((given == "pool") | (given == "train"))
    _check_class_sizes(classes, labels, pool, displays.get("pool") or displays["train"])
    splits: dict[str, np.ndarray] = {}
    for name in ("test", "val"):
        if name in displays:
            splits[name] = np.flatnonzero(given == name)
            # Every class must be scored: a class missing from the test set has no recall to report.
            _check_class_sizes(classes, labels, splits[name], displays[name], minimum=1)
    if not splits and max_train is None:
        carved = stratified_split(labels, pool, {"test": test_fraction, "val": val_fraction}, seed)
        return {name: carved[name] for name in SPLIT_ORDER}, None, None
    if "test" not in splits:
        carved = stratified_split(labels, pool, {"test": test_fraction}, seed)
        splits["test"], pool = carved["test"], carved["train"]
    note, subset = None, None
    if max_train is not None and max_train < len(pool):
        note = f"--max-train {max_train}: {max_train} of {len(pool)} training rows, stratified by class (seed {seed})"
        pool, subset = _stratified_subset(labels, pool, max_train, seed), max_train
        _check_class_sizes(classes, labels, pool, f"the {max_train}-row training subset (raise --max-train)")
    elif max_train is not None:
        note = f"--max-train {max_train}: all {len(pool)} training rows kept (no more are available)"
    if "val" in splits:
        splits["train"] = pool
    else:
        splits.update(stratified_split(labels, pool, {"val": val_fraction}, seed))
    return {name: splits[name] for name in SPLIT_ORDER}, note, subset


def _split_note(
    displays: dict[str, str], splits: dict[str, np.ndarray], subset: int | None, max_train: int | None,
    val_fraction: float, test_fraction: float, seed: int,
) -> str:
    """One sentence for the report: where each split came from (``subset``: rows kept by --max-train)."""
    val, test = f"{100 * val_fraction:.0f}%", f"{100 * test_fraction:.0f}%"
    if "pool" in displays:
        where = displays["pool"]
        where = "Only train/" if where == "train/" else f"Class folders in {where}" if where.endswith("/") else where
        if max_train is None:
            train = round(100 * (1 - val_fraction - test_fraction))
            return f"{where}: split {train}/{val[:-1]}/{test[:-1]} into train/val/test, stratified by class (seed {seed})."
        rest = "the rest" if subset is None else f"the {subset} rows of the rest kept by --max-train"
        return (
            f"{where}: {test} per class set aside as the test set; validation ({val} per class) carved from {rest}, "
            f"stratified by class (seed {seed})."
        )
    train = displays["train"]
    if "val" in displays and "test" in displays:
        return f"{train}, {displays['val']} and {displays['test']} used as given."
    if "val" in displays:
        return (
            f"{displays['val']} ({len(splits['val'])} texts) is the validation set; the test set was carved from "
            f"{train} ({test} per class, seed {seed})."
        )
    source = train if subset is None else f"the {subset} rows of {train} kept by --max-train"
    carved = f"validation was carved from {source} ({val} per class, seed {seed})"
    if displays["test"].rstrip("/").lower() in ("val", "validation"):
        return f"No test/ folder: {displays['test']} ({len(splits['test'])} texts) is used as the test set; {carved}."
    return f"{displays['test']} ({len(splits['test'])} texts) is the test set; {carved}."


def _fingerprint(texts: list[str], labels: list[str], splits: dict[str, np.ndarray]) -> str:
    """sha256 over (split, text, label) of every kept row: a cache keyed by it changes when the data does."""
    digest = hashlib.sha256()
    for split in SPLIT_ORDER:
        for row in splits[split].tolist():
            digest.update(f"{split}\t{len(texts[row])}\t{texts[row]}\t{labels[row]}\n".encode())
    return digest.hexdigest()


def _column_notes(sources: dict[str, _Source], training: _Source) -> list[str]:
    """Where a column was found under another name; a val/test file is named only when it differs."""
    notes = list(training.notes)
    for source in sources.values():
        if source is not training:
            notes += [f"{source.display}: {note}" for note in source.notes if note not in training.notes]
    return notes


def load_text_data(
    data: str | os.PathLike,
    *,
    text_column: Column = None,
    label_column: Column = None,
    test: str | os.PathLike | None = None,
    val: str | os.PathLike | None = None,
    max_train: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> TextData:
    """Read, validate, deduplicate and split labelled text; see the module docstring.

    Args:
        data: a CSV/TSV file, or a folder of class subfolders holding .txt files.
        text_column, label_column: a column name, or a position from 0. None looks for "text" (else
            sentence, review, content, document) and "label" (else labels, class, category, target,
            sentiment). Positions for both mean the file has no header row; otherwise its first row is.
        test, val: explicit test and validation files (same format). The test set is never used for any
            choice; what is not given is carved from the training rows.
        max_train: keep a stratified, seeded subset of this many training rows (after the test set, and
            val when given, are set aside); validation is carved from that subset.
        val_fraction, test_fraction: the share of each class carved for validation and test.
        seed: makes every carve and subset repeatable.

    Returns:
        `TextData`: only the rows that made it into a split, with skipped rows and duplicates listed.
    """
    for value, option in ((text_column, "text_column"), (label_column, "label_column")):
        _check_column(value, option)
    _check_max_train(max_train)
    check_fractions(val_fraction, test_fraction)
    sources = _read_sources(
        Path(data), None if test is None else Path(test), None if val is None else Path(val), text_column, label_column
    )
    training = sources.get("pool") or sources["train"]
    classes = tuple(sorted(training.labels))
    if len(classes) < 2:
        found = f"{len(classes)} class ({classes[0]})" if classes else "no classes"
        first = training.bad[0] if training.bad else None
        skipped = f" Skipped rows: {len(training.bad)}, e.g. {first.path}: {first.reason}." if first else ""
        raise DataError(f"found {found} in {training.display}; need at least 2 labels, e.g. pos and neg.{skipped}")
    for split in ("val", "test"):
        if split in sources and (unknown := sorted(sources[split].labels - set(classes))):
            example = next(row.name for row in sources[split].rows if row.label == unknown[0])
            raise DataError(
                f"{sources[split].display} has label {unknown[0]!r} (e.g. row {example}) that {training.display} does "
                f"not have; training labels: {', '.join(classes)}. Fix the label or add training rows for it."
                + (f" Other unknown labels: {', '.join(unknown[1:])}." if len(unknown) > 1 else "")
            )
    rows = [row for source in sources.values() for row in source.rows]
    keep, duplicates = deduplicate(rows, [row.text for row in rows], "within_split")
    kept = [rows[i] for i in keep]
    index = {name: position for position, name in enumerate(classes)}
    labels = np.array([index[row.label] for row in kept], dtype=np.int64)
    given = np.array([row.split for row in kept])
    displays = {split: source.display for split, source in sources.items()}
    splits, subset_note, subset = _split(given, labels, classes, displays, max_train, val_fraction, test_fraction, seed)
    for name in SPLIT_ORDER:
        if len(splits[name]) == 0:
            raise DataError(f"the {name} split is empty: add more rows (at least 3 per class) so each split gets some.")
    used = np.sort(np.concatenate([splits[name] for name in SPLIT_ORDER]))
    position = np.full(len(kept), -1, dtype=np.int64)
    position[used] = np.arange(len(used))
    texts = [kept[i].text for i in used.tolist()]
    splits = {name: position[members] for name, members in splits.items()}
    return TextData(
        classes=classes,
        texts=tuple(texts),
        labels=labels[used],
        names=tuple(kept[i].name for i in used.tolist()),
        splits=splits,
        bad_rows=[bad for source in sources.values() for bad in source.bad],
        duplicates=duplicates,
        split_note=_split_note(displays, splits, subset, max_train, val_fraction, test_fraction, seed),
        source=str(data),
        fingerprint=_fingerprint(texts, [classes[i] for i in labels[used].tolist()], splits),
        notes=_column_notes(sources, training) + ([subset_note] if subset_note else []),
    )
