"""Sections 2 and 3 of the assignment benchmark (issue 3): serving and ingestion on PostgreSQL.

Section 2, ``/api/v1/assign`` under gunicorn (3 gthread workers of 2 threads, PostgreSQL, 8
keep-alive clients on the same machine): first the units are new (one first exposure recorded per
request), then the same units come back (sticky: nothing written).

Section 3, events into PostgreSQL, each bulk import into a fresh database: ``liftlab events
import``'s service with 2 loader connections (the default) and with 1, the same file imported a
second time (every id stored: the conflict-skipping path), and the REST API's path (service
batches of 5,000, as ``/api/v1/events`` does) as the peer. Every imported event is counted.

Run through ``benchmarks/assignment.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def setup_serving_database(url: str) -> dict[str, str]:
    """Migrate, load the catalog, start one 3-arm experiment; return API keys by scope."""
    from experiments.db import make_engine, make_session_factory
    from experiments.db.migrate import upgrade
    from experiments.services import accounts, catalog, demo_data, experiments

    upgrade(url)
    engine = make_engine(url)
    keys = {}
    with make_session_factory(engine).begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        experiments.create_experiment(
            session,
            {
                "key": "bench",
                "name": "Benchmark",
                "variants": [
                    {"key": "control", "weight": 0.34},
                    {"key": "ten", "weight": 0.33, "incentive": "discount_10"},
                    {"key": "ship", "weight": 0.33, "incentive": "free_shipping"},
                ],
                "metrics": {"primary": "conversion"},
            },
            actor="bench",
        )
        experiments.transition(session, "bench", "running", actor="bench")
        for scope in ("assign", "ingest"):
            keys[scope] = accounts.create_api_key(
                session, name=scope, scopes=[scope], actor="bench", account_id=None
            )[1]
    engine.dispose()
    return keys


def load(
    port: int, key: str, n_requests: int, concurrency: int, prefix: str
) -> tuple[float, list[float], int]:
    """``concurrency`` keep-alive clients POSTing /api/v1/assign: wall s, latencies s, sticky."""
    import http.client
    import json
    import threading

    latencies: list[float] = []
    sticky = [0]
    lock = threading.Lock()
    per_client = n_requests // concurrency

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        mine, returning = [], 0
        for i in range(per_client):
            body = json.dumps({"unit_id": f"{prefix}{index}-u{i}", "attributes": {"c": "DE"}})
            start = time.perf_counter()
            connection.request("POST", "/api/v1/assign", body=body, headers=headers)
            response = connection.getresponse()
            payload = json.loads(response.read())
            mine.append(time.perf_counter() - start)
            assert response.status == 200, response.status
            returning += sum(a["reason"] == "sticky" for a in payload["assignments"])
        connection.close()
        with lock:
            latencies.extend(mine)
            sticky[0] += returning

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, sticky[0]


def section_api(n_requests: int) -> str:
    from benchmarks.support import gunicorn_app, scratch_postgres

    rows = []
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        keys = setup_serving_database(url)
        with gunicorn_app(url, tmp) as port:
            load(port, keys["assign"], 60, 2, "warm")  # pools, imports, the serving cache
            for label in ("new units (first exposure recorded)", "returning units (sticky)"):
                wall, latencies, sticky = load(port, keys["assign"], n_requests, 8, "c")
                expected = len(latencies) if label.startswith("returning") else 0
                assert sticky == expected, (label, sticky)
                rows.append((label, wall, latencies))
    lines = [
        "### /api/v1/assign under gunicorn (3 gthread workers x 2 threads, PostgreSQL, 8 "
        "keep-alive clients on the same 2 cores)",
        "",
        "| units | requests | requests/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, wall, latencies in rows:
        p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
        lines.append(
            f"| {label} | {len(latencies):,} | {len(latencies) / wall:,.0f} | {p50:.1f} | "
            f"{p99:.1f} |"
        )
    lines += [
        "",
        "Statements per request: 4 for a new unit (API key, serving rows, stored exposures, one "
        "insert), 3 when sticky, plus BEGIN/COMMIT and the pool's ping.",
    ]
    return "\n".join(lines)


def event_frame(n_events: int) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "event_id": [f"b{i}" for i in range(n_events)],
            "unit_id": [f"u{i % 50_000}" for i in range(n_events)],
            "name": np.where(np.arange(n_events) % 10 == 0, "order", "view"),
            "value": np.where(np.arange(n_events) % 10 == 0, 42.5, np.nan),
            "occurred_at": pd.Timestamp("2026-11-01T00:00:00Z")
            + pd.to_timedelta(np.arange(n_events) % 86400, unit="s"),
        }
    )


def _timed_import(url: str, path: Path, workers: int, expect_new: int) -> float:
    from experiments.db import make_engine
    from experiments.services.event_import import import_events

    engine = make_engine(url)
    try:
        started = time.perf_counter()
        result = import_events(engine, path, chunk_size=100_000, workers=workers)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    assert result.inserted == expect_new, (result, expect_new)
    return seconds


def _timed_api_batches(url: str, frame: Any, n_api: int) -> float:
    from experiments.db import make_engine, make_session_factory
    from experiments.services import events as event_service

    rows = [
        {
            "event_id": f"a{i}",
            "unit_id": r["unit_id"],
            "name": r["name"],
            "value": None if r["value"] != r["value"] else r["value"],
            "occurred_at": r["occurred_at"].isoformat(),
        }
        for i, r in enumerate(frame.iloc[:n_api].to_dict("records"))
    ]
    engine = make_engine(url)
    try:
        sessions = make_session_factory(engine)
        started = time.perf_counter()
        inserted = 0
        for start in range(0, n_api, 5_000):
            with sessions.begin() as session:
                inserted += event_service.ingest(session, rows[start : start + 5_000]).inserted
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    assert inserted == n_api
    return seconds


def section_ingest(n_events: int) -> str:
    from benchmarks.support import scratch_postgres
    from experiments.db.migrate import upgrade

    frame = event_frame(n_events)
    n_api = min(n_events, 50_000)
    timed: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        frame.to_parquet(path)
        for workers in (2, 1):
            with scratch_postgres() as url:
                upgrade(url)
                seconds = _timed_import(url, path, workers, n_events)
                label = f"bulk import, {workers} connection{'s' if workers > 1 else ''} (COPY)"
                timed.append((label, n_events, seconds))
                if workers == 2:
                    again = _timed_import(url, path, workers, 0)
                    timed.append(
                        ("same file again (all stored: ON CONFLICT path)", n_events, again)
                    )
                    # the API path into the same table (1M events already stored)
                    api = _timed_api_batches(url, frame, n_api)
    api_rate = n_api / api
    lines = [
        "### Event ingestion into PostgreSQL",
        "",
        "| path | events | seconds | events/s | x API batches |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, n, seconds in timed:
        rate = n / seconds
        lines.append(f"| {label} | {n:,} | {seconds:.2f} | {rate:,.0f} | {rate / api_rate:.1f}x |")
    lines += [
        f"| service batches of 5,000 (the /api/v1/events path) | {n_api:,} | {api:.2f} | "
        f"{api_rate:,.0f} | 1.0x |",
        "",
        "Bulk import times are end to end: validating the whole file first, loading it in chunks "
        "of 100,000, ANALYZE at the end; each in a fresh database migrated to head.",
    ]
    return "\n".join(lines)
