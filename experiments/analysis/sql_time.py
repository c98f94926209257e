"""Dialect-neutral timestamp arithmetic for the analysis SQL (layer: experiments.analysis).

``shift_hours(ts, 72)`` is ``ts + 72 hours`` rendered in each database's own syntax, so that a
metric window ``first_exposure_at <= occurred_at < first_exposure_at + window`` compiles on SQLite,
PostgreSQL and the warehouses liftlab targets:

- default (ANSI SQL: PostgreSQL, Trino, Spark SQL, MySQL, Snowflake): ``ts + INTERVAL '72' HOUR``;
- PostgreSQL: ``ts + INTERVAL '72 hours'`` (its native spelling);
- BigQuery: ``TIMESTAMP_ADD(ts, INTERVAL 72 HOUR)``; SQL Server: ``DATEADD(hour, 72, ts)``;
- SQLite has no timestamp type. SQLAlchemy stores ``DateTime`` values as text
  ``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts like time. ``strftime`` shifts the whole seconds and
  the original fraction is appended again, so the result is exact to the microsecond and still
  compares correctly, as text, with the stored timestamps.

The number of hours is an integer rendered into the SQL (it comes from a metric definition, never
from a request), and it is part of the statement's cache key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class shift_hours(FunctionElement[Any]):  # noqa: N801 - reads like the SQL function it renders
    """``timestamp`` plus ``hours`` (an int, may be negative), keeping the timestamp's type."""

    name = "shift_hours"
    inherit_cache = True

    def __init__(self, timestamp: ColumnElement[Any], hours: int) -> None:
        if isinstance(hours, bool) or int(hours) != hours:
            raise ValueError(f"shift_hours: hours must be a whole number of hours, got {hours!r}")
        # The hours travel as a literal clause so that they belong to the cache key.
        super().__init__(timestamp, literal_column(str(int(hours))))
        self.type = timestamp.type


def _parts(element: shift_hours, compiler: Any, **kw: Any) -> tuple[str, int]:
    timestamp, hours = element.clauses.clauses
    return compiler.process(timestamp, **kw), int(hours.name)


@compiles(shift_hours)
def _compile_ansi(element: shift_hours, compiler: Any, **kw: Any) -> str:
    timestamp, hours = _parts(element, compiler, **kw)
    sign = "+" if hours >= 0 else "-"
    return f"({timestamp} {sign} INTERVAL '{abs(hours)}' HOUR)"


@compiles(shift_hours, "postgresql")
def _compile_postgresql(element: shift_hours, compiler: Any, **kw: Any) -> str:
    timestamp, hours = _parts(element, compiler, **kw)
    sign = "+" if hours >= 0 else "-"
    return f"({timestamp} {sign} INTERVAL '{abs(hours)} hours')"


@compiles(shift_hours, "sqlite")
def _compile_sqlite(element: shift_hours, compiler: Any, **kw: Any) -> str:
    timestamp, hours = _parts(element, compiler, **kw)
    fmt = compiler.process(literal_column("'%Y-%m-%d %H:%M:%S'"), **kw)
    return f"(strftime({fmt}, {timestamp}, '{hours:+d} hours') || substr({timestamp}, 20))"


@compiles(shift_hours, "bigquery")
def _compile_bigquery(element: shift_hours, compiler: Any, **kw: Any) -> str:
    timestamp, hours = _parts(element, compiler, **kw)
    return f"TIMESTAMP_ADD({timestamp}, INTERVAL {hours} HOUR)"


@compiles(shift_hours, "mssql")
def _compile_mssql(element: shift_hours, compiler: Any, **kw: Any) -> str:
    timestamp, hours = _parts(element, compiler, **kw)
    return f"DATEADD(hour, {hours}, {timestamp})"
