"""From a CSV/TSV file or a folder of .txt files to validated, deduplicated, honestly split text.

Inputs (read by `shoulders.text.files`): a table with a text and a label column, or a folder of class
subfolders holding ``.txt`` files, in the same layouts as the image loader (class folders; ``train/`` +
``test/``; ``train/`` + ``val/``; all three). An explicit ``test`` file is the test set and an explicit
``val`` file the validation set; whatever is missing is carved from the training rows, stratified by
class. ``max_train`` keeps a stratified, seeded subset of the training rows once the test set is set
aside, and validation is carved from that subset.

Rows that cannot be used are listed in ``bad_rows`` with their row id and skipped, never silently. Exact
duplicate texts are resolved and reported as the image loader does (`shoulders.data.splits`):
``within_split`` keeps the first copy, ``across_splits`` keeps the training copy (nothing scored at the end
was seen in training), ``across_classes`` drops every copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shoulders.data.splits import (
    SPLIT_ORDER,
    BadFile,
    DataError,
    DataOptionError,
    Duplicate,
    SplitRecord,
    SplitSettings,
    Wording,
    deduplicate,
    find_layout,
    fingerprint,
    split_note,
    split_rows,
    text_sha256,
)
from shoulders.text.files import Column, Source, check_column, read_folder, read_path, read_sources

TEXT_WORDING = Wording("row", "rows", "texts", "add rows for it or remove the class", useful_count=100)


@dataclass
class TextData(SplitRecord):
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

    def content_hashes(self) -> tuple[str, ...]:
        return tuple(text_sha256(text) for text in self.texts)

    def subset(self, split: str) -> tuple[list[str], np.ndarray]:
        rows = self.splits[split]
        return [self.texts[row] for row in rows], self.labels[rows]

    def summary(self) -> dict:
        return {**super().summary(), "suspicious_files": [], "notes": list(self.notes)}


def read_labelled_texts(
    path: str | os.PathLike, *, text_column: Column = None, label_column: Column = None
) -> tuple[list[str], list[str], list[BadFile]]:
    """Every usable (text, label) row of one file or folder of class subfolders, unsplit, with the bad
    rows: for scoring a trained model, where one class or a handful of rows is a fine test file."""
    check_column(text_column, "--text-column")
    check_column(label_column, "--label-column")
    path = Path(path)
    if path.is_dir():
        sources = [read_folder(folder, path, split) for split, folder in find_layout(path).items()]
    else:
        sources = [read_path(path, "test", text_column, label_column, path.name)]
    rows = [row for source in sources for row in source.rows]
    if not rows:
        raise DataError(
            f"{path} holds no usable labelled text: check the columns (--text-column, --label-column) and bad rows."
        )
    return [row.text for row in rows], [row.label for row in rows], [bad for source in sources for bad in source.bad]


def load_text_data(
    data: str | os.PathLike,
    *,
    text_column: Column = None,
    label_column: Column = None,
    test: str | os.PathLike | None = None,
    val: str | os.PathLike | None = None,
    max_train: int | None = None,
    split: SplitSettings | None = None,
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
        split: the share of each class carved for validation and test, and the seed that makes every
            carve and subset repeatable (default: 15%, 15%, seed 0).

    Returns:
        `TextData`: only the rows that made it into a split, with skipped rows and duplicates listed.
    """
    for value, option in ((text_column, "text_column"), (label_column, "label_column")):
        check_column(value, option)
    _check_max_train(max_train)
    split = split or SplitSettings()
    sources = read_sources(
        Path(data), None if test is None else Path(test), None if val is None else Path(val), text_column, label_column
    )
    training = sources.get("pool") or sources["train"]
    classes = _classes(sources, training)
    rows = [row for source in sources.values() for row in source.rows]
    keep, duplicates = deduplicate(rows, [row.text for row in rows], "within_split")
    kept = [rows[i] for i in keep]
    displays = {name: source.display for name, source in sources.items()}
    index = {name: position for position, name in enumerate(classes)}
    labels = np.array([index[row.label] for row in kept], dtype=np.int64)
    given = np.array([row.split for row in kept], dtype=str)
    splits, subset_note, subset = split_rows(labels, given, classes, displays, split, TEXT_WORDING, max_train)
    used, splits = _compact(splits, len(kept))
    texts = tuple(kept[i].text for i in used)
    return TextData(
        classes=classes,
        texts=texts,
        labels=labels[used],
        names=tuple(kept[i].name for i in used),
        splits=splits,
        bad_rows=[bad for source in sources.values() for bad in source.bad],
        duplicates=duplicates,
        split_note=split_note(_note_displays(displays), splits, split, TEXT_WORDING, max_train, subset),
        source=str(data),
        fingerprint=_fingerprint(texts, [classes[i] for i in labels[used].tolist()], splits),
        notes=_column_notes(sources, training) + ([subset_note] if subset_note else []),
    )


def _check_max_train(max_train: int | None) -> None:
    if max_train is None or (isinstance(max_train, int) and not isinstance(max_train, bool) and max_train > 0):
        return
    raise DataOptionError(
        f"max_train must be a positive number of rows, e.g. 5000, or None for all. Received: {max_train!r}"
    )


def _classes(sources: dict[str, Source], training: Source) -> tuple[str, ...]:
    """The training labels, sorted; at least two, and every val/test label among them."""
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
    return classes


def _compact(splits: dict[str, np.ndarray], count: int) -> tuple[list[int], dict[str, np.ndarray]]:
    """The rows (of ``count``) used by some split (--max-train leaves the others out), and the splits
    renumbered over them."""
    used = np.sort(np.concatenate([splits[name] for name in SPLIT_ORDER]))
    position = np.full(count, -1, dtype=np.int64)
    position[used] = np.arange(len(used))
    return used.tolist(), {name: position[members] for name, members in splits.items()}


def _note_displays(displays: dict[str, str]) -> dict[str, str]:
    """The split note's names: for a training source ours to split, the phrase that opens the note."""
    if "pool" not in displays:
        return displays
    where = displays["pool"]
    where = "Only train/" if where == "train/" else f"Class folders in {where}" if where.endswith("/") else where
    return {**displays, "pool": where}


def _fingerprint(texts: tuple[str, ...], labels: list[str], splits: dict[str, np.ndarray]) -> str:
    """Over (split, text length, text, label) of every kept row: it changes when the data or its split does."""
    return fingerprint(
        (split, len(texts[row]), texts[row], labels[row]) for split in SPLIT_ORDER for row in splits[split].tolist()
    )


def _column_notes(sources: dict[str, Source], training: Source) -> list[str]:
    """Where a column was found under another name; a val/test file is named only when it differs."""
    notes = list(training.notes)
    for source in sources.values():
        if source is not training:
            notes += [f"{source.display}: {note}" for note in source.notes if note not in training.notes]
    return notes
