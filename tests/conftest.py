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


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logins dominate web tests' time: hash with the cheapest argon2id parameters.

    Still argon2id (the storage test checks the prefix); production keeps argon2-cffi's defaults.
    """
    from argon2 import PasswordHasher

    from experiments.services import accounts

    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


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


# --- migrated databases for tests that open their own sessions (web app, CLI) ----------------------


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(backend, url) of a database migrated once per session; tests get copies of it."""
    from experiments.db.migrate import upgrade

    backend = str(request.param)
    with fresh_database(backend, tmp_path_factory.mktemp("template")) as url:
        upgrade(url)
        yield backend, url


@pytest.fixture
def db_url(migrated_template: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    """A private, migrated database for one test (a file copy on SQLite, TEMPLATE on PostgreSQL)."""
    import shutil

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    backend, template_url = migrated_template
    if backend == "sqlite":
        source = make_url(template_url).database
        target = tmp_path / "copy.db"
        shutil.copyfile(str(source), target)
        yield f"sqlite:///{target}"
        return
    admin = _postgres_admin_engine()
    template = make_url(template_url).database
    name = f"liftlab_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from experiments.settings import load_settings

    return load_settings(
        {
            "LIFTLAB_INSTANCE_DIR": str(tmp_path / "instance"),
            "LIFTLAB_DATABASE_URL": db_url,
        }
    )


@pytest.fixture
def app(settings):  # type: ignore[no-untyped-def]
    from web import create_app

    app = create_app({"TESTING": True, "LIFTLAB_SETTINGS": settings})
    yield app
    app.extensions["liftlab.engine"].dispose()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


def make_account(app, email: str, role: str, password: str = "correct horse battery") -> str:  # type: ignore[no-untyped-def]
    from experiments.services import accounts

    with app.extensions["liftlab.sessions"].begin() as session:
        accounts.create_account(session, email=email, password=password, role=role)
    return password


class AuthActions:
    """Logs in through the real form, CSRF token included."""

    def __init__(self, app, client) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.client = client

    def csrf_token(self, path: str = "/auth/login") -> str:
        import re

        page = self.client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', page
        )
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def create(self, email: str, role: str, password: str = "correct horse battery") -> str:
        return make_account(self.app, email, role, password)

    def login(self, email: str = "admin@example.com", role: str = "admin"):  # type: ignore[no-untyped-def]
        password = make_account(self.app, email, role)
        return self.client.post(
            "/auth/login",
            data={"email": email, "password": password, "csrf_token": self.csrf_token()},
        )


@pytest.fixture
def auth(app, client) -> AuthActions:  # type: ignore[no-untyped-def]
    return AuthActions(app, client)


@pytest.fixture
def report_experiment():  # type: ignore[no-untyped-def]
    """A factory: ``report_experiment(session, key)`` creates a running two-arm experiment with
    400 exposed units and orders from a third of them (no population file, so its report is the
    light one: design, data quality, average effects); returns the key."""
    import datetime as dt

    from sqlalchemy import insert

    from experiments.db import Assignment, Event
    from experiments.services import catalog, demo_data, experiments

    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)

    def create(session: Session, key: str) -> str:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        experiments.create_experiment(
            session,
            {
                "key": key,
                "name": f"Report of {key}",
                "variants": [
                    {"key": "control", "weight": 0.5},
                    {"key": "coupon", "weight": 0.5, "incentive": "coupon_5"},
                ],
                "metrics": {"primary": "conversion"},
            },
            actor="test",
        )
        experiments.transition(session, key, "running", actor="test")
        exp = experiments.get_experiment(session, key)
        ids = [v.id for v in exp.variants]
        session.execute(
            insert(Assignment),
            [
                {"experiment_id": exp.id, "unit_id": f"user-{i:04d}", "variant_id": ids[i % 2],
                 "first_exposure_at": start + dt.timedelta(minutes=i)}
                for i in range(400)
            ],
        )  # fmt: skip
        session.execute(
            insert(Event),
            [
                {"event_id": f"{key}-o{i}", "unit_id": f"user-{i:04d}", "name": "order",
                 "value": 20.0, "occurred_at": start + dt.timedelta(hours=5, minutes=i)}
                for i in range(0, 400, 3)
            ],
        )  # fmt: skip
        return key

    return create
