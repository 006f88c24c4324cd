"""Prediction rows written as they come: ``.jsonl`` and ``.csv`` are appended a line at a time (a killed job
leaves every finished row readable); ``.parquet`` rows go to a JSON-lines journal beside the file and
become the Parquet file at the end. ``resume`` keeps what a file (or journal) already holds and reports
its keys, so those inputs are not scored again.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from shoulders.errors import ShouldersError

FORMATS = (".parquet", ".csv", ".jsonl")
VALUE_COLUMNS = ("label", "probability", "top_k_labels", "top_k_probabilities", "error", "worker")
PARQUET_CHUNK = 4096  # journal rows per Parquet row group: bounded memory at the end of a job


class PredictOutputError(ShouldersError, ValueError):
    """An --out file that cannot be written (format, an existing file without --resume)."""


def columns(key: str) -> tuple[str, ...]:
    return (key, *VALUE_COLUMNS)


class LineSink:
    """``.jsonl`` (a JSON object per line) or ``.csv`` (lists as JSON arrays in their cells)."""

    def __init__(self, path: Path, key: str, resume: bool) -> None:
        self.path, self.key = path, key
        self.done = _line_keys(path, key) if resume else set()
        self._fresh = not (resume and path.exists() and path.stat().st_size)
        self._handle = None  # opened at the first write: a job refused while reading its inputs creates nothing
        self._csv = None

    def write(self, rows: Iterable[dict]) -> None:
        self._open()
        for row in rows:
            if self._csv:
                self._csv.writerow({**row, **{name: json.dumps(row[name]) for name in ("top_k_labels", "top_k_probabilities")}})
            else:
                self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()

    def _open(self) -> None:
        if self._handle is not None:
            return
        self._handle = self.path.open("w" if self._fresh else "a", encoding="utf-8", newline="")
        if self.path.suffix == ".csv":
            self._csv = csv.DictWriter(self._handle, columns(self.key))
            if self._fresh:
                self._csv.writeheader()

    def close(self) -> None:
        self._open()  # a job with no rows still leaves its (empty) file
        self._handle.close()

    def abort(self) -> None:
        """Stopped early: every row written is already in the file."""
        if self._handle is not None:
            self._handle.close()


class ParquetSink:
    """Rows to ``FILE.partial.jsonl`` while the job runs; at the end, the earlier file's rows (``resume``)
    and the journal's become FILE, written to a temporary name and renamed."""

    def __init__(self, path: Path, key: str, resume: bool) -> None:
        self.path, self.key = path, key
        self.journal = path.with_name(path.name + ".partial.jsonl")
        self.done = (_parquet_keys(path, key) | _line_keys(self.journal, key)) if resume else set()
        if not resume:
            self.journal.unlink(missing_ok=True)
        self._lines = LineSink(self.journal, key, resume=resume)

    def write(self, rows: Iterable[dict]) -> None:
        self._lines.write(rows)

    def abort(self) -> None:
        """Stopped early: the journal keeps the rows for ``--resume``."""
        self._lines.abort()

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._lines.close()
        schema = _schema(self.key)
        partial = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        with pq.ParquetWriter(partial, schema) as writer:
            if self.path.exists():
                for batch in pq.ParquetFile(self.path).iter_batches(PARQUET_CHUNK):
                    writer.write_batch(batch)
            for chunk in chunks(_journal_rows(self.journal), PARQUET_CHUNK):
                writer.write_table(pa.Table.from_pylist(chunk, schema))
        os.replace(partial, self.path)
        self.journal.unlink()


def open_sink(path: Path, key: str, resume: bool) -> LineSink | ParquetSink:
    """The writer for ``--out``'s extension; refuses to overwrite a file unless resuming it."""
    if path.suffix.lower() not in FORMATS:
        raise PredictOutputError(f"--out {path}: give a file ending in {', '.join(FORMATS)} (the output format).")
    if path.is_dir():
        raise PredictOutputError(f"--out {path} is a folder: give a file name, e.g. {path / 'predictions.parquet'}.")
    journal = path.with_name(path.name + ".partial.jsonl")
    if not resume and (path.exists() or journal.exists()):
        raise PredictOutputError(
            f"--out {path} already exists{' (from a job that did not finish)' if journal.exists() else ''}: add --resume "
            "to keep its rows and score only the inputs not in it yet, or choose another --out."
        )
    if not path.parent.is_dir():
        raise PredictOutputError(f"--out {path}: the folder {path.parent} does not exist; create it first.")
    sink = ParquetSink if path.suffix.lower() == ".parquet" else LineSink
    return sink(path, key, resume)


def _line_keys(path: Path, key: str) -> set[str]:
    """Keys of the complete rows of a ``.jsonl``/``.csv`` file; a last line cut short by a kill is dropped."""
    if not path.exists():
        return set()
    _drop_partial_line(path)
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            return {row[key] for row in csv.DictReader(handle)}
        return {json.loads(line)[key] for line in handle if line.strip()}


def _drop_partial_line(path: Path) -> None:
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def _parquet_keys(path: Path, key: str) -> set[str]:
    if not path.exists():
        return set()
    import pyarrow.parquet as pq

    return set(pq.read_table(path, columns=[key]).column(key).to_pylist())


def _journal_rows(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _schema(key: str):
    import pyarrow as pa

    return pa.schema([
        (key, pa.string()), ("label", pa.string()), ("probability", pa.float64()),
        ("top_k_labels", pa.list_(pa.string())), ("top_k_probabilities", pa.list_(pa.float64())),
        ("error", pa.string()), ("worker", pa.string()),
    ])
