"""Will it fit? The memory a run's decoded images and one batch's activations need, checked before any work.

Decoded images are a uint8 cache (N x H x W x 3 bytes, memory-mapped, but read whole into memory by the
steps that gather rows); one training batch of a CNN holds, for its backward pass, activations of about
`ACTIVATION_FACTOR` float32 values per input value (EfficientNet-Lite0 at 224 px, batch 32: ~1.2 GB). A run
that cannot fit is refused up front with what it would need, instead of growing until the system kills it.
"""

from __future__ import annotations

from pathlib import Path

from shoulders.errors import ShouldersError

ACTIVATION_FACTOR = 64  # float32 activations per input value kept for the backward pass (an estimate)
FLOAT_BYTES = 4


class MemoryNeedError(ShouldersError, MemoryError):
    """The run's images or a batch's activations need more memory than the machine has available."""


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable, within a cgroup's limit); None when unknown."""
    available = _meminfo_available()
    limit = _cgroup_room()
    if available is None or limit is None:
        return available if limit is None else limit
    return min(available, limit)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """What a cgroup v2 memory limit leaves (a container's limit is often below the host's free memory)."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        return int(limit) - int(used) if limit.isdigit() and used.isdigit() else None
    except (OSError, ValueError):
        return None


def cache_bytes(count: int, size: tuple[int, int]) -> int:
    """The uint8 cache of ``count`` decoded images of ``size`` (height, width)."""
    return count * size[0] * size[1] * 3


def activation_bytes(batch_size: int, size: tuple[int, int]) -> int:
    """An estimate of one training batch's float32 activations at ``size``."""
    return batch_size * size[0] * size[1] * 3 * FLOAT_BYTES * ACTIVATION_FACTOR


def readable(count: float) -> str:
    """Bytes as "1.2 GB" (powers of 1000, as `df -H` and most people count)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} PB"


def check_batch_fits(batch_size: int, size: tuple[int, int], available: int | None = None) -> None:
    """Refuse an image size (or batch) whose batch activations alone exceed the available memory."""
    need, have = activation_bytes(batch_size, size), available if available is not None else available_memory()
    if have is not None and need > have:
        raise MemoryNeedError(
            f"--image-size {size[0]} needs about {readable(need)} of memory for the activations of one batch of "
            f"{batch_size} images, but {readable(have)} is available: lower --image-size (a backbone's own size, "
            "e.g. 224, is what its weights were trained at) or --batch-size."
        )


def check_cache_fits(count: int, size: tuple[int, int], available: int | None = None) -> None:
    """Refuse decoding ``count`` images at ``size`` when their uint8 cache exceeds the available memory."""
    need, have = cache_bytes(count, size), available if available is not None else available_memory()
    if have is not None and need > have:
        raise MemoryNeedError(
            f"--image-size {size[0]} needs {readable(need)} of memory for the decoded images ({count} images of "
            f"{size[0]}x{size[1]}x3 bytes), but {readable(have)} is available: lower --image-size (e.g. the "
            "backbone's own, 224) or train on fewer images."
        )
