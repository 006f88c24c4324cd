"""From a folder of photos to decoded, validated, deduplicated, honestly split data.

Layouts: class subfolders (split 70/15/15), ``train/`` + ``test/`` (validation carved from train),
``train/`` + ``val/`` or ``validation/`` without ``test/`` (that folder becomes the test set and
validation is carved from train), or all three. Hidden files and folders are ignored; files that are
not images, or do not decode, are listed in ``bad_files`` and skipped, never silently.

Exact duplicates (same bytes) are resolved and reported:
- ``within_class``: the first copy (by path) is kept.
- ``across_splits`` (given split folders): the training copy is kept and the val/test copies are
  dropped, so nothing scored at the end was seen in training.
- ``across_classes``: conflicting labels cannot be resolved, so every copy is dropped.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoulders.data.cache import cache_key, cached_images
from shoulders.data.images import Size, _target, decode_many

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
SPLIT_ORDER = ("train", "val", "test")


class DataError(ValueError):
    """The data cannot make an honest run; the message says what to change."""


@dataclass(frozen=True)
class BadFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    kind: str
    kept: str | None
    dropped: tuple[str, ...]


def split_names(names: tuple[str, ...], splits: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Which file (or row id) went to which split, for splits.json."""
    return {split: [names[row] for row in rows] for split, rows in splits.items()}


def split_summary(data) -> dict:
    """What data.json records for either loader (images or texts): where the data came from, how many of
    each class went to each split, and what was skipped or resolved."""
    counts = {
        split: {name: int((data.labels[rows] == index).sum()) for index, name in enumerate(data.classes)}
        for split, rows in data.splits.items()
    }
    return {
        "source": data.source,
        "class_counts": counts,
        "bad_files": len(data.bad_files),
        "duplicates": len(data.duplicates),
        "split_note": data.split_note,
    }


@dataclass
class PreparedData:
    """Decoded images (usually a read-only memmap of the cache) with labels and the split of every row."""

    classes: tuple[str, ...]
    images: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    splits: dict[str, np.ndarray]
    bad_files: list[BadFile] = field(default_factory=list)
    suspicious: list[BadFile] = field(default_factory=list)  # decoded and kept, but worth a look
    duplicates: list[Duplicate] = field(default_factory=list)
    split_note: str = ""
    source: str = ""
    fingerprint: str = ""
    cache_path: Path | None = None
    decoded_now: int = 0

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self.splits[split]
        if isinstance(self.images, np.memmap) and len(rows) and np.all(np.diff(rows) == 1):
            return self.images[rows[0] : rows[-1] + 1], self.labels[rows]  # contiguous: stay memory-mapped
        return self.images[rows], self.labels[rows]

    def split_files(self) -> dict[str, list[str]]:
        return split_names(self.names, self.splits)

    def summary(self) -> dict:
        suspicious = [{"path": item.path, "note": item.reason} for item in self.suspicious]
        return {**split_summary(self), "suspicious_files": suspicious}


@dataclass(frozen=True)
class _Candidate:
    path: Path
    name: str  # relative to the data root, with forward slashes
    label: int
    split: str  # the given split folder ("train", "val", "test") or "pool" for class folders


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name != "__MACOSX"


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def _files_under(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if _visible(Path(d)))
        files.extend(Path(dirpath) / name for name in sorted(filenames) if _visible(Path(name)))
    return files


def _layout(root: Path) -> dict[str, Path]:
    """The folders to read, by the split they feed: {"pool": ...} when the split is ours to make."""
    folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and _visible(p)}
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


def _split_note(
    folders: dict[str, Path], splits: dict[str, np.ndarray], val_fraction: float, test_fraction: float, seed: int
) -> str:
    """One sentence for the report: where each split came from."""
    if "pool" in folders:
        train = round(100 * (1 - val_fraction - test_fraction))
        where = "Class folders" if folders["pool"].name.lower() != "train" else "Only train/"
        return (
            f"{where}: split {train}/{100 * val_fraction:.0f}/{100 * test_fraction:.0f} into train/val/test, "
            f"stratified by class (seed {seed})."
        )
    if "val" in folders:
        return f"{folders['train'].name}/, {folders['val'].name}/ and {folders['test'].name}/ used as given."
    carved = f"validation was carved from {folders['train'].name}/ ({100 * val_fraction:.0f}% per class, seed {seed})"
    if folders["test"].name.lower() == "test":
        return f"{folders['test'].name}/ ({len(splits['test'])} images) is the test set; {carved}."
    return f"No test/ folder: {folders['test'].name}/ ({len(splits['test'])} images) is used as the test set; {carved}."


def _scan(root: Path, folders: dict[str, Path]) -> tuple[tuple[str, ...], list[_Candidate], list[BadFile]]:
    reference = next(iter(folders.values()))
    classes = tuple(p.name for p in _class_folders(reference))
    if len(classes) < 2:
        found = f" ({', '.join(classes)})" if classes else ""
        raise DataError(
            f"found {len(classes)} class folder in {reference}{found}; need at least 2, e.g. "
            f"{reference}/cats and {reference}/dogs, each holding that class's images."
        )
    candidates: list[_Candidate] = []
    bad = _stray_images(root, folders)
    for split, folder in folders.items():
        here = tuple(p.name for p in _class_folders(folder))
        if set(here) != set(classes):
            raise DataError(
                f"{folder} has class folders {sorted(here)} but {reference} has {sorted(classes)}: every split folder "
                "needs the same classes. Add the missing folders or remove the extra ones."
            )
        for label, name in enumerate(classes):
            for path in _files_under(folder / name):
                relative = path.relative_to(root).as_posix()
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    bad.append(BadFile(relative, f"not an image file ({path.suffix or 'no extension'})"))
                elif path.stat().st_size == 0:  # else every empty file would be a "duplicate" of the others
                    bad.append(BadFile(relative, "empty file (0 bytes): remove it or copy the image again"))
                else:
                    candidates.append(_Candidate(path, relative, label, split))
    return classes, candidates, bad


def _stray_images(root: Path, folders: dict[str, Path]) -> list[BadFile]:
    """Images lying next to the class folders have no label: report them instead of skipping silently.

    Other files there (README.md, LICENSE) are documentation, not data, and are ignored.
    """
    bad = []
    for folder in sorted({root, *folders.values()}):
        for path in sorted(folder.iterdir()):
            if path.is_file() and _visible(path) and path.suffix.lower() in IMAGE_EXTENSIONS:
                reason = "not inside a class folder, so it has no label: move it into the folder of its class"
                bad.append(BadFile(path.relative_to(root).as_posix(), reason))
    return bad


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both held-out fractions in (0, 1) and leaving something to train on."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction and test_fraction must each be in (0, 1) and sum to less than 1, e.g. 0.15 and 0.15. "
            f"Received: {val_fraction} and {test_fraction}"
        )


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


def _check_class_sizes(
    classes: tuple[str, ...], labels: np.ndarray, rows: np.ndarray, where: str, minimum: int = 2
) -> None:
    for index, name in enumerate(classes):
        count = int((labels[rows] == index).sum())
        if count == 0:
            raise DataError(f"class {name!r} has no usable images in {where}: add images to it or remove the folder.")
        if count < minimum:
            raise DataError(
                f"class {name!r} has only {count} usable image in {where}; need at least 2 (more like 20+ for a "
                "useful model). Add images or remove the class."
            )


def _fingerprint(names: list[str], hashes: list[str], labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    for name, content, label in sorted(zip(names, hashes, labels.tolist())):
        digest.update(f"{name}\t{content}\t{label}\n".encode())
    return digest.hexdigest()


def prepare(
    data: str | os.PathLike,
    image_size: Size,
    *,
    crop_fraction: float = 1.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> PreparedData:
    """Scan, validate, deduplicate, decode once (cached) and split ``data``; see the module docstring."""
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Give a folder of class subfolders (photos/cats, photos/dogs, ...).")
    size = _target(image_size)[::-1]  # validates before any work; (height, width)
    check_fractions(val_fraction, test_fraction)
    folders = _layout(root)
    classes, candidates, bad = _scan(root, folders)
    if not candidates:
        raise DataError(f"no image files found under {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}).")
    with ThreadPoolExecutor() as pool:  # hashlib releases the GIL on large reads
        hashes = list(pool.map(_sha256, [c.path for c in candidates]))
    keep, duplicates = deduplicate(candidates, hashes, "within_class", tiebreak=lambda i: candidates[i].name)
    kept = [candidates[i] for i in keep]
    kept_hashes = [hashes[i] for i in keep]
    key = cache_key(list(zip((c.name for c in kept), kept_hashes)), size, crop_fraction)
    paths = [c.path for c in kept]
    images, failures, warnings, path, decoded = cached_images(
        key, len(kept), size, lambda out: decode_many(paths, size, crop_fraction, out=out, progress=progress)[1:], cache_dir
    )
    failed = {index for index, _ in failures}
    bad += [BadFile(kept[index].name, reason) for index, reason in failures]
    labels = np.array([c.label for c in kept], dtype=np.int64)
    good = np.array([i for i in range(len(kept)) if i not in failed], dtype=np.int64)
    splits = _split(kept, labels, good, classes, folders, val_fraction, test_fraction, seed)
    note = _split_note(folders, splits, val_fraction, test_fraction, seed)
    for name in SPLIT_ORDER:
        if len(splits[name]) == 0:
            raise DataError(f"the {name} split is empty: add more images (at least 3 per class) so each split gets some.")
    return PreparedData(
        classes=classes,
        images=images,
        labels=labels,
        names=tuple(c.name for c in kept),
        splits=splits,
        bad_files=sorted(bad, key=lambda b: b.path),
        suspicious=[BadFile(kept[index].name, warning) for index, warning in warnings],
        duplicates=duplicates,
        split_note=note,
        source=str(data),
        fingerprint=_fingerprint([c.name for c in kept], kept_hashes, labels),
        cache_path=path,
        decoded_now=decoded,
    )


def _split(kept, labels, good, classes, folders, val_fraction, test_fraction, seed) -> dict[str, np.ndarray]:
    given = np.array([c.split for c in kept])
    if "pool" in given:
        _check_class_sizes(classes, labels, good, "the data")
        return stratified_split(labels, good, {"test": test_fraction, "val": val_fraction}, seed)
    train_pool = good[given[good] == "train"]
    _check_class_sizes(classes, labels, train_pool, "train/")
    splits = {"test": good[given[good] == "test"]}
    # Every class must be scored at the end: a class missing from the test set has no recall to report.
    _check_class_sizes(classes, labels, splits["test"], f"{folders['test'].name}/", minimum=1)
    if "val" in given:
        splits.update(train=train_pool, val=good[given[good] == "val"])
        _check_class_sizes(classes, labels, splits["val"], f"{folders['val'].name}/", minimum=1)
    else:
        splits.update(stratified_split(labels, train_pool, {"val": val_fraction}, seed))
    return {name: splits[name] for name in SPLIT_ORDER}


def load_labelled_folder(
    folder: Path, image_size: Size, crop_fraction: float, classes: list[str] | tuple[str, ...], progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Every image of a folder of class subfolders, labelled by ``classes`` (for evaluating on other data)."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of class subfolders.")
    present = [p.name for p in _class_folders(folder)]
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise DataError(f"{folder} has classes the model does not know: {unknown}. It knows {list(classes)}.")
    paths, labels = [], []
    for name in present:
        files = [p for p in _files_under(folder / name) if p.suffix.lower() in IMAGE_EXTENSIONS]
        paths += files
        labels += [list(classes).index(name)] * len(files)
    if not paths:
        raise DataError(f"no images under {folder}.")
    images, failures, _ = decode_many(paths, image_size, crop_fraction, progress=progress)
    good = np.array([i for i in range(len(paths)) if i not in {index for index, _ in failures}], dtype=np.int64)
    return images[good], np.array(labels, dtype=np.int64)[good]
