"""Bulk event import from CSV, JSON Lines or Parquet: validated first, then loaded chunk by chunk.

Pass 1 checks the whole file (``event_frames.clean_chunk``: columns, ids, timestamps with a time
zone, finite values, properties) and refuses it, naming the row and the column, before anything is
written. Pass 2 loads it in chunks, each committed before the next starts, skipping event ids
already stored: a killed import started again ends with every event exactly once, and so do two
imports of the same file running at the same time. While the database writes one chunk, a
background thread reads, cleans and serializes the next one. On PostgreSQL each chunk is cut into
consecutive ``event_id`` ranges that several connections COPY at once, one transaction per range
(``event_copy`` has the loaders).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from experiments.db import utcnow
from experiments.db.session import refresh_planner_statistics
from experiments.errors import ValidationError
from experiments.services import event_copy
from experiments.services.event_frames import OPTIONAL, REQUIRED, clean_chunk

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "OPTIONAL", "REQUIRED", "ImportResult", "clean_chunk", "import_events"]

FORMATS = ("csv", "jsonl", "parquet")
DEADLOCK_RETRIES = 3


@dataclass(frozen=True)
class ImportResult:
    rows: int
    inserted: int
    chunks: int

    @property
    def duplicates(self) -> int:
        return self.rows - self.inserted


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise ValidationError(
                "format", f"{given!r} is unknown; use one of {', '.join(FORMATS)}"
            )
        return given
    suffix = path.name.lower().removesuffix(".gz").rsplit(".", 1)[-1]
    fmt = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "parquet": "parquet"}
    if suffix not in fmt:
        raise ValidationError("format", f"cannot tell the format of {path.name}; pass --format")
    return fmt[suffix]


def read_chunks(path: Path, fmt: str, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    if not path.exists():
        raise ValidationError("path", f"{path} does not exist")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
            yield batch.to_pandas()
    elif fmt == "csv":
        yield from pd.read_csv(
            path,
            chunksize=chunk_size,
            dtype={"event_id": str, "unit_id": str, "name": str, "occurred_at": str},
        )
    else:
        # timestamps stay text (checked for a time zone later; pandas 3 deprecates the keyword);
        # precise_float: the default parser can be off in the last digits
        dates = {"convert_dates": False} if int(pd.__version__.split(".")[0]) < 3 else {}
        yield from pd.read_json(
            path, lines=True, chunksize=chunk_size, dtype=False, precise_float=True, **dates
        )


def validate_file(path: Path, fmt: str, chunk_size: int) -> int:
    rows = 0
    for chunk in read_chunks(path, fmt, chunk_size):
        clean_chunk(chunk, rows)
        rows += len(chunk)
    if rows == 0:
        raise ValidationError("path", f"{path} holds no events")
    return rows


class _Prefetch:
    """Iterate ``items`` computed by a background thread up to ``depth`` items ahead.

    Leaving the ``with`` block early (an error, an interrupted import) stops the thread; an error
    raised by the producer is raised again in the consumer.
    """

    _END = object()

    def __init__(self, items: Iterator[Any], depth: int = 1) -> None:
        self._items = items
        self._queue: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="event-import", daemon=True)

    def _put(self, entry: tuple[bool, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put((True, item)):
                    return
            self._put((True, self._END))
        except BaseException as exc:  # noqa: BLE001 - handed over to the consumer, raised there
            self._put((False, exc))

    def __enter__(self) -> Iterator[Any]:
        self._thread.start()
        return self._consume()

    def _consume(self) -> Iterator[Any]:
        while True:
            ok, item = self._queue.get()
            if not ok:
                raise item
            if item is self._END:
                return
            yield item

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


def _load_part(engine: Engine, payload: event_copy.CopyPayload) -> int:
    """One range of a chunk, in its own transaction: COPY, or skip the stored ids if some are."""
    import psycopg

    try:
        with engine.begin() as connection:
            return event_copy.copy_new_events(connection, payload)
    except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
        pass  # that transaction was rolled back: load the range again, skipping stored ids
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            with engine.begin() as connection:
                return event_copy.insert_skipping_stored(connection, payload)
        except psycopg.errors.DeadlockDetected:
            if attempt == DEADLOCK_RETRIES:
                raise
    raise AssertionError("unreachable")


class _PostgresLoader:
    """Load each chunk's ranges on ``workers`` connections at once; return when all committed.

    The ranges of one chunk hold different ids, so its loaders never wait for each other; the
    next chunk starts only when this one is committed, so no transaction of the import ever waits
    for the importer itself (PostgreSQL sees every wait and resolves any deadlock) and an
    interrupted import leaves whole chunks only.
    """

    def __init__(self, workers: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="event-copy")

    def __call__(self, engine: Engine, parts: list[event_copy.CopyPayload]) -> int:
        futures = [self.pool.submit(_load_part, engine, part) for part in parts]
        return sum(future.result() for future in futures)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _load_generic(engine: Engine, rows: list[dict[str, Any]]) -> int:
    with engine.begin() as connection:
        return event_copy.insert_rows(connection, rows)


def import_events(
    engine: Engine,
    path: Path,
    *,
    fmt: str | None = None,
    chunk_size: int = 100_000,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Validate the whole file, then load it chunk by chunk, each chunk committed before the next.

    On PostgreSQL ``workers`` connections load consecutive ranges of each chunk at once (one
    transaction each); SQLite has one writer and loads each chunk in one transaction.
    """
    if chunk_size < 1:
        raise ValidationError("chunk_size", "must be at least 1")
    if workers < 1:
        raise ValidationError("workers", "must be at least 1")
    if engine.dialect.name not in ("postgresql", "sqlite"):
        raise ValidationError(
            "database", f"bulk import supports PostgreSQL and SQLite, not {engine.dialect.name}"
        )
    fmt = detect_format(path, fmt)
    total = validate_file(path, fmt, chunk_size)
    received_at = utcnow()
    postgres = engine.dialect.name == "postgresql"
    loader = _PostgresLoader(workers) if postgres else None

    def prepare(frame: pd.DataFrame) -> Any:
        if postgres:
            return event_copy.prepare_copy(frame, received_at, parts=workers)
        return event_copy.prepare_rows(frame, received_at)

    def payloads() -> Iterator[tuple[int, Any]]:
        done = 0
        for chunk in read_chunks(path, fmt, chunk_size):
            yield len(chunk), prepare(clean_chunk(chunk, done))
            done += len(chunk)

    done = inserted = chunks = 0
    try:
        with _Prefetch(payloads()) as prepared:
            for rows, payload in prepared:
                inserted += loader(engine, payload) if loader else _load_generic(engine, payload)
                done += rows
                chunks += 1
                if progress:
                    progress(done, total)
    finally:
        if loader:
            loader.close()
    with engine.begin() as connection:
        refresh_planner_statistics(connection, ["events"])
    return ImportResult(rows=total, inserted=inserted, chunks=chunks)
