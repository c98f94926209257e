"""Event ingestion: validated, idempotent (``event_id`` is the key), all-or-nothing per batch.

Every row of a batch is checked before anything is written, so a bad row leaves the database as it
was. Duplicates (same ``event_id``, already stored or repeated in the batch) are skipped, never
double-counted, using the database's own conflict handling (``ON CONFLICT DO NOTHING``), which is
safe when several processes ingest the same events at once.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from experiments.db import Event, utcnow
from experiments.errors import ValidationError

MAX_BATCH = 10_000
MAX_PROPERTIES_BYTES = 8_192
MAX_FUTURE = dt.timedelta(hours=1)  # clock skew allowed for client timestamps
_CHUNK = 5_000


@dataclass(frozen=True)
class IngestResult:
    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def _timestamp(index: int, value: Any) -> dt.datetime:
    field = f"events[{index}].occurred_at"
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                field, f"{value!r} is not an ISO-8601 timestamp; use e.g. 2026-01-31T12:00:00Z"
            ) from None
    else:
        raise ValidationError(field, "give an ISO-8601 timestamp with a time zone")
    if parsed.tzinfo is None:
        raise ValidationError(field, f"{value!r} has no time zone; add 'Z' or an offset")
    return parsed.astimezone(dt.UTC)


def _text(index: int, row: Mapping[str, Any], name: str, limit: int) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"events[{index}].{name}", "is required and must be a non-empty string"
        )
    if len(value) > limit:
        raise ValidationError(f"events[{index}].{name}", f"is longer than {limit} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it here, not with a 500 there
        raise ValidationError(f"events[{index}].{name}", "contains a NUL character; remove it")
    return value


def validate_event(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """Check one raw event and return the row to insert (raises ValidationError naming the field)."""
    if not isinstance(row, Mapping):
        raise ValidationError(f"events[{index}]", "each event must be a JSON object")
    unknown = set(row) - {"event_id", "unit_id", "name", "value", "occurred_at", "properties"}
    if unknown:
        raise ValidationError(
            f"events[{index}].{sorted(unknown)[0]}",
            "unknown field; allowed: event_id, unit_id, name, value, occurred_at, properties",
        )
    value = row.get("value")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"events[{index}].value", "must be a number or null")
        if not math.isfinite(float(value)):
            raise ValidationError(f"events[{index}].value", "must be finite (no NaN or infinity)")
        value = float(value)
    properties = row.get("properties")
    if properties is not None:
        if not isinstance(properties, Mapping):
            raise ValidationError(f"events[{index}].properties", "must be a JSON object or null")
        if len(json.dumps(properties, default=str)) > MAX_PROPERTIES_BYTES:
            raise ValidationError(
                f"events[{index}].properties", f"is larger than {MAX_PROPERTIES_BYTES} bytes"
            )
    occurred_at = _timestamp(index, row.get("occurred_at"))
    if occurred_at > utcnow() + MAX_FUTURE:
        raise ValidationError(
            f"events[{index}].occurred_at", "is in the future; send the time the event happened"
        )
    return {
        "event_id": _text(index, row, "event_id", 200),
        "unit_id": _text(index, row, "unit_id", 200),
        "name": _text(index, row, "name", 100),
        "value": value,
        "occurred_at": occurred_at,
        "properties": dict(properties) if properties is not None else None,
    }


def insert_ignoring_duplicates(session: Session | Connection, rows: list[dict[str, Any]]) -> int:
    bind = session if isinstance(session, Connection) else session.get_bind()
    dialect = bind.dialect.name
    table: Any = Event.__table__  # Core insert: an executemany that reports its row count
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    else:  # other dialects: a plain insert; a duplicate fails the whole batch
        statement = insert(table)
    # RETURNING counts what was really inserted (executemany's rowcount is -1 on some drivers)
    result = session.execute(statement.returning(table.c.id), rows)
    return len(result.all())


def ingest(session: Session, events: Iterable[Mapping[str, Any]]) -> IngestResult:
    """Validate every event, then insert the new ones. Never commits (the caller does)."""
    events = list(events)
    if len(events) > MAX_BATCH:
        raise ValidationError("events", f"at most {MAX_BATCH:,} events per batch; split the batch")
    rows: list[dict[str, Any]] = []
    problems: list[dict[str, object]] = []
    first: ValidationError | None = None
    for i, raw in enumerate(events):
        try:
            rows.append(validate_event(i, raw))
        except ValidationError as exc:
            first = first or exc
            field = exc.field.removeprefix(f"events[{i}]").lstrip(".") or "event"
            problems.append({"index": i, "field": field, "reason": exc.message})
    if first is not None:
        raise ValidationError(
            first.field,
            f"{first.message} ({len(problems)} bad row(s) in the batch; nothing was stored)",
            errors=problems,
        )
    received_at = utcnow()
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row["event_id"] not in seen:
            seen.add(row["event_id"])
            row["received_at"] = received_at
            unique.append(row)
    inserted = 0
    for start in range(0, len(unique), _CHUNK):
        inserted += insert_ignoring_duplicates(session, unique[start : start + _CHUNK])
    return IngestResult(received=len(rows), inserted=inserted)
