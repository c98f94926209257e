"""Engines and session factories. Callers own transactions (``with factory.begin() as session``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text, update
from sqlalchemy.orm import Session, sessionmaker

from experiments.db.base import Base


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA analysis_limit=1000")  # ANALYZE samples: milliseconds on any size
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout on every connection."""
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def refresh_planner_statistics(connection: Connection | Session, tables: Sequence[str]) -> None:
    """ANALYZE ``tables`` so the query planner knows their size and picks the per-unit index.

    Without statistics SQLite joins events to exposures through the (name, time) index and a
    refresh of a few thousand units takes a minute instead of a fraction of a second.
    """
    for table in tables:
        if table not in Base.metadata.tables:
            raise ValueError(f"unknown table {table!r}")
        connection.execute(text(f"ANALYZE {table}"))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def take_sqlite_write_lock(session: Session, model: Any, row_id: int) -> None:
    """Take SQLite's database write lock now, until the transaction ends: a no-op write of
    ``model``'s row ``row_id`` (``updated_at`` kept, so its onupdate does not fire). The callers'
    reads after it see every committed row; PostgreSQL callers lock rows instead."""
    session.execute(
        update(model)
        .where(model.id == row_id)
        .values(updated_at=model.updated_at)
        .execution_options(synchronize_session=False)
    )
