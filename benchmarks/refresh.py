"""Benchmark of a results refresh in PostgreSQL: SQL pushdown vs loading the rows into pandas.

Part (b) of the statistics benchmark (issue 4). It creates a private database
``liftlab_bench_<random>`` (dropped at the end, whatever happens), migrates it, creates one
experiment (2 variants, 5 metrics: binary, count, capped sum with CUPED, count, ratio) and loads
USERS assignments and EVENTS events with PostgreSQL COPY (indexes built after the load, as a bulk
load does). Then each method runs in its own Python subprocess, so that its peak resident memory
(``ru_maxrss``) is its own:

- pushdown: ``experiments.analysis.experiment_statistics`` — the database returns one row per
  variant; no event row reaches Python;
- pandas (read_sql): ``pandas.read_sql_query`` of the exposures and of the events the metrics use,
  then the same statistics with vectorized pandas/numpy (the usual notebook path);
- pandas (COPY): the same rows streamed with ``COPY ... TO STDOUT`` as CSV into
  ``pandas.read_csv`` (the fastest way to get rows into pandas; a generous baseline).

Times are wall seconds of the refresh alone (after imports), the median of ``--repeat`` runs,
after one warm-up scan of the tables. The methods' statistics are compared (max relative
difference), so a fast wrong answer cannot pass unnoticed.

Run: ``.venv/bin/python benchmarks/refresh.py`` (1,000,000 users, 10,000,000 events) or
``--quick`` (20,000 users, 200,000 events); ``--write docs/benchmarks/refresh.md`` writes the table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ADMIN_URL = os.environ.get(
    "LIFTLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
START = np.datetime64("2026-03-01T00:00:00", "us")
METRICS: list[dict[str, Any]] = [
    {"key": "conversion", "kind": "binary", "event_name": "order", "window_hours": 168},
    {"key": "orders", "kind": "count", "event_name": "order", "window_hours": 168},
    {"key": "revenue", "kind": "sum", "event_name": "order", "window_hours": 168, "cap": 400.0},
    {"key": "views", "kind": "count", "event_name": "view", "window_hours": 72, "cuped": False},
    {
        "key": "revenue_per_view",
        "kind": "ratio",
        "event_name": "order",
        "denominator_event": "view",
        "window_hours": 168,
    },
]
EVENT_NAMES = np.array(["view", "add_to_cart", "order"])
EVENT_INDEXES = {
    "uq_events_event_id": "CREATE UNIQUE INDEX uq_events_event_id ON events (event_id)",
    "ix_events_unit_name_at": "CREATE INDEX ix_events_unit_name_at "
    "ON events (unit_id, name, occurred_at)",
    "ix_events_name_at": "CREATE INDEX ix_events_name_at ON events (name, occurred_at)",
}


def _psycopg_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- set-up: private database, schema, experiment, COPY of the rows ------------------------------


def create_database() -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"liftlab_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def create_experiment(url: str) -> tuple[int, list[int]]:
    from sqlalchemy.orm import Session

    from experiments.db import Experiment, ExperimentMetric, Metric, Variant, make_engine

    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        experiment = Experiment(key="bench", name="refresh benchmark", seed="bench")
        for position in range(2):
            experiment.variants.append(
                Variant(position=position, key=f"v{position}", name=f"V{position}", weight=0.5)
            )
        session.add(experiment)
        session.flush()
        for m in METRICS:
            metric = Metric(
                key=m["key"],
                name=m["key"],
                kind=m["kind"],
                event_name=m["event_name"],
                denominator_event=m.get("denominator_event"),
                window_hours=m["window_hours"],
                cap_value=m.get("cap"),
                cuped=m.get("cuped", True),
            )
            session.add(metric)
            session.flush()
            experiment.metric_links.append(ExperimentMetric(metric_id=metric.id, role="primary"))
        session.flush()
        ids = (experiment.id, [v.id for v in experiment.variants])
    engine.dispose()
    return ids


def _timestamps(values: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(values, unit="us"), "+00")


def _copy_csv(cursor: Any, table: str, columns: str, frame: Any) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def load_rows(
    url: str, experiment_id: int, variant_ids: list[int], users: int, events: int, seed: int
) -> None:
    """COPY ``users`` assignments and ``events`` events (generated in chunks with numpy)."""
    import pandas as pd
    import psycopg

    rng = np.random.default_rng(seed)
    exposure = START + (rng.uniform(0, 14 * 86400, users) * 1e6).astype("timedelta64[us]")
    arm = rng.integers(0, 2, users)
    activity = rng.gamma(0.7, 1.0, users)  # heavy users and idle ones
    activity /= activity.sum()
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn, conn.cursor() as cur:
        for name in EVENT_INDEXES:
            cur.execute(f"DROP INDEX IF EXISTS {name}")
        cur.execute("ALTER TABLE events DROP CONSTRAINT IF EXISTS uq_events_event_id")
        unit_ids = np.char.add("user", np.arange(users).astype(str))
        assignments = pd.DataFrame(
            {
                "experiment_id": experiment_id,
                "unit_id": unit_ids,
                "variant_id": np.asarray(variant_ids)[arm],
                "first_exposure_at": _timestamps(exposure),
            }
        )
        _copy_csv(cur, "assignments", "experiment_id, unit_id, variant_id, first_exposure_at", assignments)
        chunk = 1_000_000
        for start in range(0, events, chunk):
            size = min(chunk, events - start)
            who = rng.choice(users, size, p=activity)
            kind = rng.choice(3, size, p=[0.6, 0.2, 0.2])
            offset = (rng.uniform(-10, 20, size) * 3600 * 24 * 1e6).astype("timedelta64[us]")
            lift = np.where(arm[who] == 1, 1.05, 1.0)
            value = np.where(kind == 2, np.round(rng.gamma(2.0, 30.0, size) * lift, 2), np.nan)
            frame = pd.DataFrame(
                {
                    "event_id": np.char.add("e", np.arange(start, start + size).astype(str)),
                    "unit_id": unit_ids[who],
                    "name": EVENT_NAMES[kind],
                    "value": value,
                    "occurred_at": _timestamps(exposure[who] + offset),
                    "received_at": "2026-04-01 00:00:00+00",
                }
            )
            _copy_csv(cur, "events", "event_id, unit_id, name, value, occurred_at, received_at", frame)
        cur.execute(
            "ALTER TABLE events ADD CONSTRAINT uq_events_event_id UNIQUE (event_id)"
        )
        for name, ddl in EVENT_INDEXES.items():
            if name != "uq_events_event_id":
                cur.execute(ddl)
        cur.execute("VACUUM ANALYZE events")
        cur.execute("VACUUM ANALYZE assignments")
