"""From a folder of photos to decoded, validated, deduplicated, honestly split data.

The layouts, the duplicate rules and the split are `shoulders.data.splits`'s, shared with the text loader.
Files that are not images, or do not decode, are listed in ``bad_files`` and skipped, never silently;
photos that decode but look like graphics (placeholders, icons) are kept and listed in ``suspicious``.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shoulders.data.cache import cache_key, cached_images
from shoulders.data.images import IMAGE_EXTENSIONS, Size, decode_many, height_and_width
from shoulders.data.splits import (
    BadFile,
    DataError,
    Duplicate,
    SplitRecord,
    SplitSettings,
    Wording,
    class_folders,
    deduplicate,
    files_under,
    find_layout,
    fingerprint,
    split_note,
    split_rows,
    unlabelled_files,
)

IMAGE_WORDING = Wording("image", "images", "images", "add images to it or remove the folder", useful_count=20)


@dataclass
class PreparedData(SplitRecord):
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
    hashes: tuple[str, ...] = ()  # each row's file sha256 (none for the embedded digits)

    def content_hashes(self) -> tuple[str, ...]:
        return self.hashes

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self.splits[split]
        if isinstance(self.images, np.memmap) and len(rows) and np.all(np.diff(rows) == 1):
            return self.images[rows[0] : rows[-1] + 1], self.labels[rows]  # contiguous: stay memory-mapped
        return self.images[rows], self.labels[rows]

    def summary(self) -> dict:
        suspicious = [{"path": item.path, "note": item.reason} for item in self.suspicious]
        return {**super().summary(), "suspicious_files": suspicious}


@dataclass(frozen=True)
class _Candidate:
    path: Path
    name: str  # relative to the data root, with forward slashes
    label: int
    split: str  # the given split folder ("train", "val", "test") or "pool" for class folders


def prepare(
    data: str | os.PathLike,
    image_size: Size,
    *,
    crop_fraction: float = 1.0,
    split: SplitSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> PreparedData:
    """Scan, validate, deduplicate, decode once (cached) and split ``data``; see the module docstring.

    Args:
        data: a folder of class subfolders, or of train/ (+ val/ or validation/) (+ test/) folders.
        image_size: the decoded size, an int or an (height, width) pair.
        crop_fraction: the centre crop before the resize (1.0: none).
        split: the fractions carved for validation and test, and the seed (default: 15%, 15%, seed 0).
        cache_dir: where decoded images are cached (default: $SHOULDERS_CACHE, else ~/.cache/shoulders).
        progress: show a progress bar while decoding (in a terminal only).
    """
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Give a folder of class subfolders (photos/cats, photos/dogs, ...).")
    size = height_and_width(image_size)  # validates before any work
    split = split or SplitSettings()
    folders = find_layout(root)
    classes, candidates, bad = _scan(root, folders)
    if not candidates:
        raise DataError(f"no image files found under {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}).")
    kept, hashes, duplicates = _unique(candidates)
    key = cache_key(list(zip((c.name for c in kept), hashes)), size, crop_fraction)
    paths = [c.path for c in kept]
    images, failures, warnings, path, decoded = cached_images(
        key, len(kept), size, lambda out: decode_many(paths, size, crop_fraction, out=out, progress=progress)[1:], cache_dir
    )
    failed = {index for index, _ in failures}
    labels = np.array([c.label for c in kept], dtype=np.int64)
    given = np.array(["undecodable" if i in failed else c.split for i, c in enumerate(kept)], dtype=str)
    splits, _, _ = split_rows(labels, given, classes, _message_names(folders), split, IMAGE_WORDING)
    names = tuple(c.name for c in kept)
    return PreparedData(
        classes=classes,
        images=images,
        labels=labels,
        names=names,
        splits=splits,
        bad_files=sorted(bad + [BadFile(names[index], reason) for index, reason in failures], key=lambda b: b.path),
        suspicious=[BadFile(names[index], warning) for index, warning in warnings],
        duplicates=duplicates,
        split_note=split_note(_displays(folders), splits, split, IMAGE_WORDING),
        source=str(data),
        fingerprint=fingerprint(sorted(zip(names, hashes, labels.tolist()))),
        cache_path=path,
        decoded_now=decoded,
        hashes=tuple(hashes),
    )


def _scan(root: Path, folders: dict[str, Path]) -> tuple[tuple[str, ...], list[_Candidate], list[BadFile]]:
    """The classes (the first folder's subfolders, the same in every split folder), the image files to
    decode, and the files skipped before decoding."""
    reference = next(iter(folders.values()))
    classes = tuple(p.name for p in class_folders(reference))
    if len(classes) < 2:
        found = f" ({', '.join(classes)})" if classes else ""
        raise DataError(
            f"found {len(classes)} class folder in {reference}{found}; need at least 2, e.g. "
            f"{reference}/cats and {reference}/dogs, each holding that class's images."
        )
    candidates: list[_Candidate] = []
    bad: list[BadFile] = []
    for folder in sorted({root, *folders.values()}):
        bad += unlabelled_files(folder, root, IMAGE_EXTENSIONS)
    for split, folder in folders.items():
        here = tuple(p.name for p in class_folders(folder))
        if set(here) != set(classes):
            raise DataError(
                f"{folder} has class folders {sorted(here)} but {reference} has {sorted(classes)}: every split folder "
                "needs the same classes. Add the missing folders or remove the extra ones."
            )
        for label, name in enumerate(classes):
            for path in files_under(folder / name):
                relative = path.relative_to(root).as_posix()
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    bad.append(BadFile(relative, f"not an image file ({path.suffix or 'no extension'})"))
                elif path.stat().st_size == 0:  # else every empty file would be a "duplicate" of the others
                    bad.append(BadFile(relative, "empty file (0 bytes): remove it or copy the image again"))
                else:
                    candidates.append(_Candidate(path, relative, label, split))
    return classes, candidates, bad


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _unique(candidates: list[_Candidate]) -> tuple[list[_Candidate], list[str], list[Duplicate]]:
    """The candidates left once exact copies (same bytes) are resolved, their content hashes, and the copies."""
    with ThreadPoolExecutor() as pool:  # hashlib releases the GIL on large reads
        hashes = list(pool.map(_sha256, [c.path for c in candidates]))
    keep, duplicates = deduplicate(candidates, hashes, "within_class", tiebreak=lambda i: candidates[i].name)
    return [candidates[i] for i in keep], [hashes[i] for i in keep], duplicates


def _message_names(folders: dict[str, Path]) -> dict[str, str]:
    """How the class-size messages name each source (the split note names them by folder)."""
    if "pool" in folders:
        return {"pool": "the data"}
    return {split: "train/" if split == "train" else f"{folder.name}/" for split, folder in folders.items()}


def _displays(folders: dict[str, Path]) -> dict[str, str]:
    """How the split note names each source."""
    if "pool" in folders:
        return {"pool": "Class folders" if folders["pool"].name.lower() != "train" else "Only train/"}
    return {split: f"{folder.name}/" for split, folder in folders.items()}


def load_labelled_folder(
    folder: Path, image_size: Size, crop_fraction: float, classes: list[str] | tuple[str, ...], progress: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every image of a folder of class subfolders, labelled by ``classes`` (for evaluating on other data),
    and each image's file sha256 (to find images a run has already seen)."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of class subfolders.")
    present = [p.name for p in class_folders(folder)]
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise DataError(f"{folder} has classes the model does not know: {unknown}. It knows {list(classes)}.")
    paths, labels = [], []
    for name in present:
        files = [p for p in files_under(folder / name) if p.suffix.lower() in IMAGE_EXTENSIONS]
        paths += files
        labels += [list(classes).index(name)] * len(files)
    if not paths:
        raise DataError(f"no images under {folder}.")
    images, failures, _ = decode_many(paths, image_size, crop_fraction, progress=progress)
    failed = {index for index, _ in failures}
    good = np.array([i for i in range(len(paths)) if i not in failed], dtype=np.int64)
    with ThreadPoolExecutor() as pool:
        hashes = list(pool.map(_sha256, [paths[i] for i in good]))
    return images[good], np.array(labels, dtype=np.int64)[good], hashes
