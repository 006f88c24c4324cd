"""Decode once: a memory-mapped uint8 cache of images, keyed by what was decoded and how.

Key: the relative file list, each file's content sha256, the image size, the crop fraction and
`CACHE_VERSION`. A later epoch, phase or run on the same data maps the file instead of decoding.
Entries appear atomically (written as ``.partial``, renamed when complete), so a killed run never
leaves a half-written cache that looks valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from shoulders.data.memory import check_cache_fits

CACHE_VERSION = "2"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """--cache-dir, else $SHOULDERS_CACHE, else ~/.cache/shoulders."""
    return Path(cache_dir or os.environ.get("SHOULDERS_CACHE") or Path.home() / ".cache" / "shoulders")


def cache_key(entries: Sequence[tuple[str, str]], size: tuple[int, int], crop_fraction: float) -> str:
    """Hash of (name, content hash) pairs and the decode settings."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{size}|{crop_fraction:.6f}".encode())
    for name, content in entries:
        digest.update(f"\n{name}\t{content}".encode())
    return digest.hexdigest()[:40]


def cached_images(
    key: str,
    count: int,
    size: tuple[int, int],
    decode: Callable[[np.ndarray], tuple[list, list]],
    cache_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, list[tuple[int, str]], list[tuple[int, str]], Path, int]:
    """The (count, H, W, 3) uint8 array for ``key``: mapped from disk, or filled by ``decode(out)`` first.

    ``decode`` writes into the array it is given and returns (failures, warnings), each [(index, text)];
    both are cached with the pixels, so a cache hit still reports them.
    Returns (images, failures, warnings, path, how many images were decoded now).
    """
    check_cache_fits(count, size)  # before a byte is decoded or a cache file is made
    folder = cache_root(cache_dir) / "images"
    path = folder / f"{key}.npy"
    hit = _read(path, folder / f"{key}.json", (count, size[0], size[1], 3))
    if hit is not None:
        images, meta = hit
        failures = [tuple(entry) for entry in meta["failures"]]
        return images, failures, [tuple(entry) for entry in meta["warnings"]], path, 0
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(folder, key)
    partial = folder / f"{key}.{os.getpid()}.partial.npy"
    meta_partial = folder / f"{key}.{os.getpid()}.partial.json"
    try:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(count, size[0], size[1], 3))
        failures, warnings = decode(out)
        out.flush()
        del out
        meta = {"failures": failures, "warnings": warnings, "count": count, "size": list(size)}
        meta_partial.write_text(json.dumps(meta))
        # Metadata first, pixels last: a complete .npy always has its .json beside it.
        os.replace(meta_partial, folder / f"{key}.json")
        os.replace(partial, path)
    except BaseException:  # a killed or failed decode leaves nothing behind, not even a partial file
        partial.unlink(missing_ok=True)
        meta_partial.unlink(missing_ok=True)
        raise
    return np.load(path, mmap_mode="r"), failures, warnings, path, count


def _read(path: Path, meta_path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, dict] | None:
    """The mapped pixels and metadata of a complete entry; None when absent or unreadable (then rebuilt)."""
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        images = np.load(path, mmap_mode="r")
        meta = json.loads(meta_path.read_text())
        complete = images.shape == shape and images.dtype == np.uint8 and {"failures", "warnings"} <= set(meta)
    except (OSError, ValueError):  # truncated or foreign file (json.JSONDecodeError is a ValueError)
        return None
    return (images, meta) if complete else None


def _remove_stale_partials(folder: Path, key: str, older_than_s: float = 3600) -> None:
    """Partial files of this key left by killed runs; recent ones may belong to a run still writing."""
    now = time.time()
    for leftover in folder.glob(f"{key}.*.partial.*"):
        try:
            if now - leftover.stat().st_mtime > older_than_s:
                leftover.unlink()
        except OSError:
            pass  # another run removed it first
