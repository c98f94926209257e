"""The analysis pushdown runs unchanged on another SQLAlchemy dialect: DuckDB (duckdb-engine).

The experiment, its metrics, assignments and events are written to a migrated SQLite database
by the pushdown test's own loader, then copied row for row into DuckDB tables, as an ETL job
fills a warehouse. The same ``experiment_statistics`` call must give the same numbers on both:
counts exactly, sums to 1e-12 (the engines add in different orders), and both equal the
independent pandas reference of ``test_analysis_pushdown.py``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Column, Double, Float, MetaData, Table, create_engine, insert, select
from sqlalchemy.orm import Session

from experiments.analysis import experiment_statistics, experiment_statistics_sql
from experiments.db import Base
from experiments.db.migrate import upgrade

try:
    import duckdb_engine  # noqa: F401 - registers the duckdb:// dialect
except ImportError:  # pragma: no cover - the dev extra installs it
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        raise
    pytest.skip('DuckDB is a dev dependency: pip install -e ".[dev]"', allow_module_level=True)

TABLES = ("experiments", "variants", "metrics", "experiment_metrics", "assignments", "events")


def pushdown_test_module() -> ModuleType:
    path = Path(__file__).with_name("test_analysis_pushdown.py")
    spec = importlib.util.spec_from_file_location("analysis_pushdown_cases", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def warehouse_tables() -> MetaData:
    """The analysed tables as a warehouse holds them: same columns, no foreign keys or
    sequences (DuckDB has no SERIAL), and DOUBLE for floats (DuckDB's FLOAT is 32-bit)."""
    meta = MetaData()
    for name in TABLES:
        columns = [
            Column(
                c.name,
                Double() if isinstance(c.type, Float) else c.type,
                primary_key=c.primary_key,
                autoincrement=False,
            )
            for c in Base.metadata.tables[name].columns
        ]
        Table(name, meta, *columns)
    return meta


def test_duckdb_statistics_equal_sqlite_and_pandas(tmp_path: Path) -> None:
    cases = pushdown_test_module()
    source_url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(source_url)
    source = create_engine(source_url)
    with Session(source) as session:
        experiment_id, _, exposures, events = cases.load(session)
        session.commit()
        on_sqlite = experiment_statistics(session, experiment_id)

    meta = warehouse_tables()
    warehouse = create_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    meta.create_all(warehouse)
    with source.connect() as rows_from, warehouse.begin() as rows_to:
        for name in TABLES:
            rows = [dict(r._mapping) for r in rows_from.execute(select(Base.metadata.tables[name]))]
            rows_to.execute(insert(meta.tables[name]), rows)
    with Session(warehouse) as session:
        on_duckdb = experiment_statistics(session, experiment_id)
        sql = experiment_statistics_sql(session, experiment_id)
    source.dispose()
    warehouse.dispose()

    assert len(on_duckdb) == len(on_sqlite) > 0
    for got, want in zip(on_duckdb, on_sqlite, strict=True):
        assert (got.variant_id, got.metric_key, got.n) == (want.variant_id, want.metric_key, want.n)
        for field in ("sum", "sum_squares", "pre_sum", "denominator_sum", "sum_of_products"):
            a, b = getattr(got, field), getattr(want, field)
            assert (a is None) == (b is None), field
            if a is not None:
                assert a == pytest.approx(b, rel=1e-12, abs=1e-9), (got.metric_key, field)
    cases.assert_matches(
        on_duckdb, cases.reference_statistics(exposures, events, cases.METRICS, experiment_id)
    )
    assert "INTERVAL '72' HOUR" in sql  # the ANSI spelling; DuckDB is not PostgreSQL here
