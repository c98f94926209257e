"""Bulk logging of a batch run's decisions: PostgreSQL COPY, the driver's executemany on SQLite.

Layer: ``experiments.services`` (inside the caller's transaction; never commits). Both batch
engines log through it: ``run_strategy`` (the single-process run) and the Spark loader
(``experiments.jobs.spark_load``), so their rows are the same, column for column: a new ``decision_id`` (uuid4 hex) each, the
strategy, the run's ``batch_run``, one ``decided_at`` and one ``context`` for the whole run.
Only the per-user columns vary (unit, incentive, bucket, propensity, expected value and cost).

- PostgreSQL: ``COPY decisions (...) FROM STDIN`` fed row by row by psycopg (text format: each
  value is parsed by the column's own input function, floats are written in their shortest
  round-trip form, so they come back bit for bit).
- SQLite: one prepared ``INSERT`` and ``executemany`` on the driver's cursor. The values that
  need SQLAlchemy's conversion (the timestamp, the JSON context) are the same for every row and
  converted once by the columns' own bind processors, so the stored text is what an ORM insert
  stores.
- any other dialect: SQLAlchemy's executemany.

Measured on the development machine (200,000 rows, the table's five indexes): SQLAlchemy's
executemany took 14.4 s on PostgreSQL and 6.7 s on SQLite, COPY 6.2 s and the driver's
executemany 4.3 s; most of what is left is the database's index maintenance.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from experiments.db import Decision

COLUMNS = (
    "decision_id",
    "strategy_id",
    "unit_id",
    "incentive_id",
    "bucket",
    "propensity",
    "expected_value",
    "expected_cost",
    "decided_at",
    "batch_run",
    "context",
)
_COPY = f"COPY decisions ({', '.join(COLUMNS)}) FROM STDIN"
_INSERT_QMARK = (
    f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


@dataclass(frozen=True)
class RunRows:
    """What all rows of one batch run share."""

    strategy_id: int
    batch_run: int
    decided_at: dt.datetime
    context: dict[str, Any]


@dataclass(frozen=True)
class UserRows:
    """The per-user columns of a chunk of decisions (equal lengths)."""

    unit_id: Sequence[str]
    incentive_id: Sequence[int | None]
    bucket: Sequence[str]
    propensity: Sequence[float]
    expected_value: Sequence[float]
    expected_cost: Sequence[float]

    def __len__(self) -> int:
        return len(self.unit_id)


def _tuples(run: RunRows, users: UserRows, decided_at: Any, context: Any) -> list[tuple]:  # type: ignore[type-arg]
    sid, number = run.strategy_id, run.batch_run
    return [
        (uuid.uuid4().hex, sid, u, i, b, p, v, c, decided_at, number, context)
        for u, i, b, p, v, c in zip(
            users.unit_id,
            users.incentive_id,
            users.bucket,
            users.propensity,
            users.expected_value,
            users.expected_cost,
            strict=True,
        )
    ]


def insert_decisions(session: Session, run: RunRows, users: UserRows) -> int:
    """Log one chunk of a run's decisions; returns the number of rows written."""
    if not len(users):
        return 0
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        rows = _tuples(run, users, run.decided_at, json.dumps(run.context))
        raw: Any = connection.connection.driver_connection  # a psycopg connection
        with raw.cursor() as cursor, cursor.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)
    elif dialect.name == "sqlite":
        table = Decision.__table__
        constants = []
        for name, value in (("decided_at", run.decided_at), ("context", run.context)):
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            constants.append(process(value) if process else value)
        connection.exec_driver_sql(_INSERT_QMARK, _tuples(run, users, *constants))
    else:
        rows = _tuples(run, users, run.decided_at, run.context)
        session.execute(insert(Decision), [dict(zip(COLUMNS, r, strict=True)) for r in rows])
    return len(users)
