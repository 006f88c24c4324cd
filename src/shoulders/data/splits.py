"""What the image and the text loader share: the folder layout, duplicates, honest seeded splits, the record.

Layouts: class subfolders (ours to split, 70/15/15), ``train/`` + ``test/`` (validation carved from train),
``train/`` + ``val/`` or ``validation/`` without ``test/`` (that folder becomes the test set and validation
is carved from train), or all three. Hidden files and folders are ignored.

Exact duplicates (same bytes for images, same text for texts) are resolved and reported:
- ``within_class`` / ``within_split``: the first copy is kept.
- ``across_splits`` (given split folders or files): the training copy is kept and the val/test copies are
  dropped, so nothing scored at the end was seen in training.
- ``across_classes``: conflicting labels cannot be resolved, so every copy is dropped.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoulders.errors import ShouldersError

SPLIT_ORDER = ("train", "val", "test")
UNLABELLED = "not inside a class folder, so it has no label: move it into the folder of its class"


class DataError(ShouldersError, ValueError):
    """The data cannot make an honest run; the message says what to change."""


class DataOptionError(ShouldersError, ValueError):
    """A loader option (a fraction, a column, ``max_train``) has a value that cannot work; the message
    names the option and an example of a good value."""


@dataclass(frozen=True)
class BadFile:
    """A file (or a table row) that was skipped, and why: listed in bad_files.json, never dropped silently."""

    path: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """One group of exact copies: its kind (see the module docstring), the copy kept (None: all dropped)."""

    kind: str
    kept: str | None
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class Wording:
    """How one loader's messages name what it reads, so both loaders share one check and one note."""

    item: str  # "image", "row": "class 'a' has only 1 usable image"
    items: str  # "images", "rows": "add more images"
    counted: str  # "images", "texts": "val/ (153 images) is used as the test set"
    empty_class_fix: str  # "add images to it or remove the folder"
    useful_count: int  # per class, for a useful model (20 photos, 100 rows)


@dataclass(frozen=True)
class SplitSettings:
    """How the rows that no given folder or file places are split: the share of each class carved for
    validation and test, and the seed that makes every carve repeatable. Validated on construction."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        check_fractions(self.val_fraction, self.test_fraction)


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both held-out fractions in (0, 1) and leaving something to train on."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataOptionError(
            f"val_fraction and test_fraction must each be in (0, 1) and sum to less than 1, e.g. 0.15 and 0.15. "
            f"Received: {val_fraction} and {test_fraction}"
        )


# --- layout -------------------------------------------------------------------------------------------


def visible(path: Path) -> bool:
    """False for hidden files and folders (.DS_Store, .ipynb_checkpoints) and macOS zip leftovers."""
    return not path.name.startswith(".") and path.name != "__MACOSX"


def class_folders(folder: Path) -> list[Path]:
    """The visible subfolders of ``folder``, sorted: one per class."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and visible(p))


def files_under(folder: Path) -> list[Path]:
    """Every visible file below ``folder`` (nested folders included), in a stable sorted order."""
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if visible(Path(d)))
        files.extend(Path(dirpath) / name for name in sorted(filenames) if visible(Path(name)))
    return files


def find_layout(root: Path) -> dict[str, Path]:
    """The folders to read, by the split they feed: {"pool": ...} when the split is ours to make."""
    folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and visible(p)}
    if "train" not in folders:
        return {"pool": root}
    if "val" in folders and "validation" in folders:
        raise DataError(f"{root} has both val/ and validation/: keep one of them (merge or delete the other).")
    val = folders.get("val") or folders.get("validation")
    test = folders.get("test")
    if test is not None and val is not None:
        return {"train": folders["train"], "val": val, "test": test}
    if test is not None:
        return {"train": folders["train"], "test": test}
    if val is not None:
        return {"train": folders["train"], "test": val}  # no test/: the given val/ is the honest test set
    return {"pool": folders["train"]}


def unlabelled_files(folder: Path, root: Path, suffixes: Iterable[str]) -> list[BadFile]:
    """Data files lying next to the class folders have no label: report them instead of skipping silently.

    Only files ending in ``suffixes`` count; others there (README.md, LICENSE) are documentation.
    """
    wanted = set(suffixes)
    return [
        BadFile(path.relative_to(root).as_posix(), UNLABELLED)
        for path in sorted(folder.iterdir())
        if path.is_file() and visible(path) and path.suffix.lower() in wanted
    ]


# --- duplicates ---------------------------------------------------------------------------------------


def deduplicate(
    items: Sequence[Any], keys: Sequence[str], within: str, tiebreak: Callable[[int], Any] | None = None
) -> tuple[list[int], list[Duplicate]]:
    """Indices of the ``items`` to keep, and what was dropped and why (see the module docstring), for
    images (keyed by content hash) and texts (keyed by text) alike. Each item has ``.name``, ``.label``
    and ``.split``. Copies with different labels are all dropped; otherwise the copy in the earliest
    split (train before val before test) is kept, ties going to the lowest ``tiebreak(index)`` (default:
    the index), and the rest are reported as ``"across_splits"`` or as ``within``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[key].append(index)
    rank = {"train": 0, "pool": 0, "val": 1, "test": 2}
    order = tiebreak or (lambda index: index)
    keep: list[int] = []
    duplicates: list[Duplicate] = []
    for members in groups.values():
        if len(members) == 1:
            keep.append(members[0])
            continue
        members = sorted(members, key=lambda i: (rank[items[i].split], order(i)))
        names = tuple(items[i].name for i in members)
        if len({items[i].label for i in members}) > 1:
            duplicates.append(Duplicate("across_classes", None, names))
            continue
        kind = "across_splits" if len({items[i].split for i in members}) > 1 else within
        keep.append(members[0])
        duplicates.append(Duplicate(kind, names[0], names[1:]))
    return sorted(keep), duplicates


# --- splits -------------------------------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, rows: np.ndarray, fractions: dict[str, float], seed: int, remainder: str = "train"
) -> dict[str, np.ndarray]:
    """Split ``rows`` per class: each named split gets ``round(n * fraction)`` (at least 1 when the class has
    3 or more images), the rest goes to ``remainder``. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {name: [] for name in [*fractions, remainder]}
    for label in np.unique(labels[rows]):
        members = rows[labels[rows] == label].copy()
        rng.shuffle(members)
        start = 0
        for name, fraction in fractions.items():
            take = max(1, round(len(members) * fraction)) if len(members) >= len(fractions) + 1 else 0
            out[name].extend(members[start : start + take])
            start += take
        out[remainder].extend(members[start:])
    return {name: np.array(sorted(values), dtype=np.int64) for name, values in out.items()}


def stratified_subset(labels: np.ndarray, rows: np.ndarray, size: int, seed: int) -> np.ndarray:
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


def check_class_sizes(
    classes: tuple[str, ...], labels: np.ndarray, rows: np.ndarray, where: str, wording: Wording, minimum: int = 2
) -> None:
    """Every class has at least ``minimum`` of ``rows``: none is missing from a split, none too small to learn."""
    counts = np.bincount(labels[rows], minlength=len(classes))
    for index, name in enumerate(classes):
        if counts[index] == 0:
            raise DataError(f"class {name!r} has no usable {wording.items} in {where}: {wording.empty_class_fix}.")
        if counts[index] < minimum:
            raise DataError(
                f"class {name!r} has only {counts[index]} usable {wording.item} in {where}; need at least {minimum} "
                f"(more like {wording.useful_count}+ for a useful model). Add {wording.items} or remove the class."
            )


def split_rows(
    labels: np.ndarray,
    given: np.ndarray,
    classes: tuple[str, ...],
    sources: dict[str, str],
    settings: SplitSettings,
    wording: Wording,
    max_train: int | None = None,
) -> tuple[dict[str, np.ndarray], str | None, int | None]:
    """Row indices per split (in `SPLIT_ORDER`), a note on ``max_train`` and the subset size when one was taken.

    ``given[row]`` is where the row came from: "pool" (ours to split), "train", "val" or "test"; any other
    value leaves the row out. ``sources`` names each source present, for messages. The given test/val rows
    are never moved; the test set is carved before any subset, validation after it, so it comes from it.
    """
    pool = np.flatnonzero((given == "pool") | (given == "train"))
    val_fraction, test_fraction, seed = settings.val_fraction, settings.test_fraction, settings.seed
    check_class_sizes(classes, labels, pool, sources.get("pool") or sources["train"], wording)
    splits: dict[str, np.ndarray] = {}
    for name in ("test", "val"):
        if name in sources:
            splits[name] = np.flatnonzero(given == name)
            # Every class must be scored: a class missing from the test set has no recall to report.
            check_class_sizes(classes, labels, splits[name], sources[name], wording, minimum=1)
    if not splits and max_train is None:
        splits = stratified_split(labels, pool, {"test": test_fraction, "val": val_fraction}, seed)
        return _every_class_in_order(splits, labels, classes, wording), None, None
    if "test" not in splits:
        carved = stratified_split(labels, pool, {"test": test_fraction}, seed)
        splits["test"], pool = carved["test"], carved["train"]
    note, subset = None, None
    if max_train is not None and max_train < len(pool):
        note = f"--max-train {max_train}: {max_train} of {len(pool)} training rows, stratified by class (seed {seed})"
        pool, subset = stratified_subset(labels, pool, max_train, seed), max_train
        check_class_sizes(classes, labels, pool, f"the {max_train}-row training subset (raise --max-train)", wording)
    elif max_train is not None:
        note = f"--max-train {max_train}: all {len(pool)} training rows kept (no more are available)"
    if "val" in splits:
        splits["train"] = pool
    else:
        splits.update(stratified_split(labels, pool, {"val": val_fraction}, seed))
    return _every_class_in_order(splits, labels, classes, wording), note, subset


def _every_class_in_order(
    splits: dict[str, np.ndarray], labels: np.ndarray, classes: tuple[str, ...], wording: Wording
) -> dict[str, np.ndarray]:
    """The splits in `SPLIT_ORDER`; a split without some class is an error: an empty test share would make
    a class's recall unmeasured (and the accuracy a score on the other classes), an empty val share would
    let early stopping ignore it, an empty train share would leave it unlearned."""
    for name in SPLIT_ORDER:
        counts = np.bincount(labels[splits[name]], minlength=len(classes))
        missing = [classes[index] for index in np.flatnonzero(counts == 0)]
        if missing:
            total = {cls: int((labels == classes.index(cls)).sum()) for cls in missing}
            held = ", ".join(f"{cls!r} ({total[cls]} usable {wording.item if total[cls] == 1 else wording.items})" for cls in missing)
            raise DataError(
                f"the {name} split has no {wording.items} of class {held}: every split (train, val, test) needs each "
                f"class, so a class needs at least 3 {wording.items} when the split is carved (more like "
                f"{wording.useful_count}+ for a useful model). Add {wording.items} to it or remove the class."
            )
    return {name: splits[name] for name in SPLIT_ORDER}


# --- the record ---------------------------------------------------------------------------------------


def split_shares(settings: SplitSettings) -> str:
    """The train/val/test percentages of a fresh split, as the notes write them: "70/15/15"."""
    train = round(100 * (1 - settings.val_fraction - settings.test_fraction))
    return f"{train}/{100 * settings.val_fraction:.0f}/{100 * settings.test_fraction:.0f}"


def split_note(
    displays: dict[str, str],
    splits: dict[str, np.ndarray],
    settings: SplitSettings,
    wording: Wording,
    max_train: int | None = None,
    subset: int | None = None,
) -> str:
    """One sentence for the report: where each split came from. ``displays`` names each source present
    ("train/", "test.csv"; for "pool", the whole phrase: "Class folders"); ``subset``: rows kept by max_train."""
    val, test, seed = f"{100 * settings.val_fraction:.0f}%", f"{100 * settings.test_fraction:.0f}%", settings.seed
    if "pool" in displays:
        if max_train is None:
            shares = split_shares(settings)
            return f"{displays['pool']}: split {shares} into train/val/test, stratified by class (seed {seed})."
        rest = "the rest" if subset is None else f"the {subset} rows of the rest kept by --max-train"
        return (
            f"{displays['pool']}: {test} per class set aside as the test set; validation ({val} per class) carved "
            f"from {rest}, stratified by class (seed {seed})."
        )
    train = displays["train"]
    if "val" in displays and "test" in displays:
        return f"{train}, {displays['val']} and {displays['test']} used as given."
    if "val" in displays:
        return (
            f"{displays['val']} ({len(splits['val'])} {wording.counted}) is the validation set; the test set was "
            f"carved from {train} ({test} per class, seed {seed})."
        )
    source = train if subset is None else f"the {subset} rows of {train} kept by --max-train"
    carved = f"validation was carved from {source} ({val} per class, seed {seed})"
    held_out = f"{displays['test']} ({len(splits['test'])} {wording.counted})"
    if displays["test"].rstrip("/").lower() in ("val", "validation"):
        return f"No test/ folder: {held_out} is used as the test set; {carved}."
    return f"{held_out} is the test set; {carved}."


class SplitRecord:
    """What the results of both loaders (images and texts) record alike: which row went to which split, for
    splits.json, and the summary data.json opens with. A subclass (a dataclass) holds these attributes and
    ``bad_files``."""

    classes: tuple[str, ...]
    labels: np.ndarray
    names: tuple[str, ...]
    splits: dict[str, np.ndarray]
    duplicates: list[Duplicate]
    split_note: str
    source: str

    def content_hashes(self) -> tuple[str, ...]:
        """One sha256 per row (of the file's bytes, or of the text); empty when the rows have none (digits)."""
        return ()

    def seen(self) -> dict[str, list[str]]:
        """The content hashes of the rows training looked at (train and val), for reference/seen.json: an
        evaluation on other data warns when it holds any of them."""
        hashes = self.content_hashes()
        if not hashes:
            return {}
        return {split: sorted({hashes[row] for row in self.splits[split]}) for split in ("train", "val")}

    def split_files(self) -> dict[str, list[str]]:
        """Which file (or row id) went to which split, for splits.json."""
        return {split: [self.names[row] for row in rows] for split, rows in self.splits.items()}

    def summary(self) -> dict:
        """Where the data came from, how many of each class went to each split, what was skipped or resolved."""
        counts = {
            split: {name: int((self.labels[rows] == index).sum()) for index, name in enumerate(self.classes)}
            for split, rows in self.splits.items()
        }
        return {
            "source": self.source,
            "class_counts": counts,
            "bad_files": len(self.bad_files),
            "duplicates": len(self.duplicates),
            "split_note": self.split_note,
        }


def text_sha256(text: str) -> str:
    """A text's content hash (that of its UTF-8 bytes), as reference/seen.json records it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(records: Iterable[Sequence[Any]]) -> str:
    """sha256 over tab-joined records, one a line: a cache or a comparison keyed by it changes with the data."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(("\t".join(map(str, record)) + "\n").encode())
    return digest.hexdigest()
