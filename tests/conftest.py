"""Fixtures shared by every test: shared data, database URLs (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from uplift.datasets import SharedDataMissingError, shared_data_path

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Callable[..., Path]:
    """``shared_data("gbstats", "x.json")`` → path; skips (fails in CI) when the file is absent."""

    def get(*parts: str) -> Path:
        try:
            return shared_data_path(*parts)
        except SharedDataMissingError as exc:
            _missing(str(exc))
            raise  # unreachable: skip/fail raise

    return get


# --- databases: every database test runs on SQLite and on PostgreSQL -------------------------------

POSTGRES_URL = os.environ.get(
    "LIFTLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        engine.dispose()
        _missing(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}")
    return engine


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database on ``backend``; drop it afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'liftlab-test.db'}"
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = _postgres_admin_engine()
    name = f"liftlab_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new empty database (no tables) on each backend."""
    with fresh_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One migrated database per backend for the whole session; tests roll back (see db_session)."""
    from experiments.db import make_engine
    from experiments.db.migrate import upgrade

    with fresh_database(str(request.param), tmp_path_factory.mktemp("db")) as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def db_session(migrated_engine: Engine) -> Iterator[Session]:
    """A session whose every write is rolled back after the test (SQLAlchemy savepoint recipe)."""
    from sqlalchemy.orm import Session as OrmSession

    connection = migrated_engine.connect()
    transaction = connection.begin()
    session = OrmSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()
