"""Bulk event import from CSV, JSON Lines or Parquet: validated first, then loaded chunk by chunk.

Pass 1 checks the whole file (columns, ids, timestamps with a time zone, finite values) and refuses
it, naming the row and the column, before anything is written. Pass 2 loads it in chunks, each its own
transaction, skipping event ids already stored: a killed import started again ends with every event
exactly once, and so do two imports of the same file running at the same time. On PostgreSQL each
chunk goes through COPY into a temporary table and one ``INSERT … SELECT … ORDER BY event_id ON
CONFLICT DO NOTHING`` (the ordering gives concurrent importers the same lock order: no deadlock).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from experiments.db import utcnow
from experiments.db.session import refresh_planner_statistics
from experiments.errors import ValidationError
from experiments.services.events import insert_ignoring_duplicates

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("event_id", "unit_id", "name", "occurred_at")
OPTIONAL = ("value", "properties")
FORMATS = ("csv", "jsonl", "parquet")
_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


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
        yield from pd.read_json(
            path, lines=True, chunksize=chunk_size, dtype=False, convert_dates=False
        )


def clean_chunk(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    """Validate a chunk (vectorized) and return it normalized; rows are numbered from ``offset``."""
    import numpy as np
    import pandas as pd

    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValidationError(
            missing[0], f"column {missing[0]!r} is missing; required: {', '.join(REQUIRED)}"
        )
    unknown = sorted(set(frame.columns) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ValidationError(
            unknown[0], f"unknown column; allowed: {', '.join(REQUIRED + OPTIONAL)}"
        )

    def fail(column: str, mask: np.ndarray, message: str) -> None:
        if mask.any():
            row = offset + int(np.flatnonzero(mask)[0])
            raise ValidationError(f"row {row + 1}.{column}", message)

    out = pd.DataFrame(index=frame.index)
    for column, limit in (("event_id", 200), ("unit_id", 200), ("name", 100)):
        values = frame[column]
        is_text = values.map(lambda v: isinstance(v, str)).to_numpy()
        text_values = values.where(is_text, "")
        fail(
            column,
            ~is_text | (text_values.str.strip() == "").to_numpy(),
            "is required (a non-empty string)",
        )
        fail(
            column, (text_values.str.len() > limit).to_numpy(), f"is longer than {limit} characters"
        )
        out[column] = text_values
    stamps = frame["occurred_at"]
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        parsed = stamps.dt.tz_convert("UTC")
    else:
        fail(
            "occurred_at",
            pd.api.types.is_datetime64_dtype(stamps.dtype) & np.ones(len(frame), bool),
            "has no time zone; store UTC timestamps",
        )
        as_text = stamps.astype("string")
        fail(
            "occurred_at",
            ~as_text.str.contains(_TZ_SUFFIX, regex=True).fillna(False).to_numpy(),
            "needs an ISO-8601 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z",
        )
        parsed = pd.to_datetime(as_text, utc=True, format="ISO8601", errors="coerce")
        fail("occurred_at", parsed.isna().to_numpy(), "is not a valid ISO-8601 timestamp")
    out["occurred_at"] = parsed.dt.floor("us")
    if "value" in frame.columns:
        value = pd.to_numeric(frame["value"], errors="coerce")
        given = frame["value"].notna().to_numpy()
        fail("value", given & value.isna().to_numpy(), "must be a number or empty")
        fail("value", given & ~np.isfinite(value.fillna(0).to_numpy()), "must be finite")
        out["value"] = value
    else:
        out["value"] = np.nan
    if "properties" in frame.columns:
        import json

        def as_json(v: object) -> str | None:
            if v is None or (isinstance(v, float) and v != v):
                return None
            if isinstance(v, dict):
                return json.dumps(v)
            if isinstance(v, str):
                try:
                    loaded = json.loads(v)
                except ValueError:
                    return "!"
                return json.dumps(loaded) if isinstance(loaded, dict) else "!"
            return "!"

        props = frame["properties"].map(as_json)
        fail("properties", (props == "!").to_numpy(), "must be a JSON object or empty")
        out["properties"] = props
    else:
        out["properties"] = None
    return out


def validate_file(path: Path, fmt: str, chunk_size: int) -> int:
    rows = 0
    for chunk in read_chunks(path, fmt, chunk_size):
        clean_chunk(chunk, rows)
        rows += len(chunk)
    if rows == 0:
        raise ValidationError("path", f"{path} holds no events")
    return rows


def _load_postgres(connection, frame: pd.DataFrame) -> int:  # type: ignore[no-untyped-def]
    raw = connection.connection.driver_connection
    connection.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS events_import (event_id text, unit_id text, "
            "name text, value double precision, occurred_at timestamptz, properties json) "
            "ON COMMIT DELETE ROWS"
        )
    )
    buffer = io.StringIO()
    frame.to_csv(
        buffer,
        index=False,
        header=False,
        columns=["event_id", "unit_id", "name", "value", "occurred_at", "properties"],
        date_format="%Y-%m-%dT%H:%M:%S.%fZ",
    )
    with raw.cursor().copy(
        "COPY events_import (event_id, unit_id, name, value, occurred_at, properties) "
        "FROM STDIN WITH (FORMAT csv)"
    ) as copy:
        copy.write(buffer.getvalue())
    result = connection.execute(
        text(
            "INSERT INTO events (event_id, unit_id, name, value, occurred_at, received_at, "
            "properties) SELECT DISTINCT ON (event_id) event_id, unit_id, name, value, "
            "occurred_at, :received_at, properties FROM events_import ORDER BY event_id "
            "ON CONFLICT (event_id) DO NOTHING"
        ),
        {"received_at": utcnow()},
    )
    return int(result.rowcount)


def _load_generic(connection, frame: pd.DataFrame) -> int:  # type: ignore[no-untyped-def]
    import json

    received_at = utcnow()
    frame = frame.drop_duplicates("event_id")
    rows = [
        {
            "event_id": e,
            "unit_id": u,
            "name": n,
            "value": None if v != v else float(v),
            "occurred_at": t.to_pydatetime(),
            "received_at": received_at,
            "properties": json.loads(p) if p else None,
        }
        for e, u, n, v, t, p in frame[
            ["event_id", "unit_id", "name", "value", "occurred_at", "properties"]
        ].itertuples(index=False, name=None)
    ]
    return insert_ignoring_duplicates(connection, rows)


def import_events(
    engine: Engine,
    path: Path,
    *,
    fmt: str | None = None,
    chunk_size: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Validate the whole file, then load it chunk by chunk (one transaction per chunk)."""
    if chunk_size < 1:
        raise ValidationError("chunk_size", "must be at least 1")
    fmt = detect_format(path, fmt)
    total = validate_file(path, fmt, chunk_size)
    loader = _load_postgres if engine.dialect.name == "postgresql" else _load_generic
    if engine.dialect.name not in ("postgresql", "sqlite"):
        raise ValidationError(
            "database", f"bulk import supports PostgreSQL and SQLite, not {engine.dialect.name}"
        )
    done = inserted = chunks = 0
    for chunk in read_chunks(path, fmt, chunk_size):
        frame = clean_chunk(chunk, done)
        with engine.begin() as connection:
            inserted += loader(connection, frame)
        done += len(frame)
        chunks += 1
        if progress:
            progress(done, total)
    with engine.begin() as connection:
        refresh_planner_statistics(connection, ["events"])
    return ImportResult(rows=total, inserted=inserted, chunks=chunks)
