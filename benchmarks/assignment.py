"""Benchmark of assignment (issue 3), one function per section.

Section 1, batch assignment: ``bucket_hash_many`` + ``choose_variation_many`` (vectorized numpy
over UTF-16 code units) against a Python loop over the ``growthbook`` SDK's own functions
(``gbhash`` + ``chooseVariation``) on the same unit ids, with identical results asserted in the
run. The SDK loop runs on a prefix of the ids and its per-id rate is extrapolated (the table says
so). Later sections (``/api/v1/assign`` latency under gunicorn, event ingestion into PostgreSQL)
are added by the issue's lead as further ``section_*`` functions.

Run: ``.venv/bin/python benchmarks/assignment.py`` (``--quick`` for a few-second smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # `benchmarks.support` when run as a script

from experiments.assignment import (
    bucket_hash,
    bucket_hash_many,
    bucket_ranges,
    choose_variation,
    choose_variation_many,
)

SEED = "checkout-incentives-2026"
WEIGHTS = [0.25, 0.25, 0.25, 0.25]
COVERAGE = 0.8


@dataclass(frozen=True)
class Row:
    method: str
    ids: str
    timed_ids: int
    seconds: float
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.timed_ids / self.seconds


def uuid_ids(n: int, rng: np.random.Generator, non_ascii_share: float = 0.0) -> np.ndarray:
    """``n`` random uuid4-formatted ids, built without a per-id Python loop.

    With ``non_ascii_share``, that share of ids gets an accented character and an emoji.
    """
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).astype(np.uint32)
    nibbles = rng.integers(0, 16, size=(n, 32), dtype=np.uint8)
    chars = hex_digits[nibbles]
    out = np.full((n, 36), ord("-"), dtype=np.uint32)
    out[:, [i for i in range(36) if i not in (8, 13, 18, 23)]] = chars
    ids = out.view("<U36").reshape(n)
    if non_ascii_share > 0:
        pick = rng.random(n) < non_ascii_share
        ids = ids.astype("<U38")
        ids[pick] = np.char.add(np.char.add("é", ids[pick]), "😀")
    return ids


def best_of(repeats: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """Shortest wall time of ``repeats`` calls, and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def section_batch_assignment(n_ids: int, n_loop: int, repeats: int, seed: int = 3) -> list[Row]:
    """Users/s of batch assignment vs Python loops, identical results asserted."""
    import growthbook.core as gb_core  # the peer; a dev dependency

    rng = np.random.default_rng(seed)
    ids = uuid_ids(n_ids, rng)
    mixed = uuid_ids(n_ids, rng, non_ascii_share=0.01)
    ranges = bucket_ranges(len(WEIGHTS), COVERAGE, WEIGHTS)
    sdk_ranges = gb_core.getBucketRanges(len(WEIGHTS), COVERAGE, WEIGHTS)
    assert ranges == sdk_ranges

    def batch(values: np.ndarray, version: int) -> np.ndarray:
        buckets = bucket_hash_many(SEED, values, version)
        assert buckets is not None
        return choose_variation_many(buckets, ranges)

    batch(ids[:100], 2)  # warm-up: builds the hash tables once per process, outside the timing
    rows: list[Row] = []
    results: dict[tuple[str, int], np.ndarray] = {}
    for label, values in (("uuid", ids), ("uuid, 1% non-ASCII", mixed)):
        for version in (2, 1):
            if label != "uuid" and version == 1:
                continue
            seconds, chosen = best_of(repeats, lambda v=values, ver=version: batch(v, ver))
            results[(label, version)] = chosen
            rows.append(Row(f"liftlab batch (numpy), hash v{version}", label, n_ids, seconds))

    prefix = ids[:n_loop].tolist()
    for version in (2, 1):

        def sdk_loop(ver: int = version) -> list[int]:
            return [
                gb_core.chooseVariation(gb_core.gbhash(SEED, u, ver), sdk_ranges) for u in prefix
            ]

        seconds, sdk_chosen = best_of(1, sdk_loop)
        assert results[("uuid", version)][:n_loop].tolist() == sdk_chosen, "results differ from SDK"
        note = f"timed on the first {n_loop:,} ids, rate extrapolated"
        rows.append(Row(f"growthbook SDK loop, hash v{version}", "uuid", n_loop, seconds, note))

    mixed_prefix = mixed[:n_loop].tolist()
    sdk_mixed = [
        gb_core.chooseVariation(gb_core.gbhash(SEED, u, 2), sdk_ranges) for u in mixed_prefix
    ]
    assert results[("uuid, 1% non-ASCII", 2)][:n_loop].tolist() == sdk_mixed

    def scalar_loop() -> list[int]:
        return [choose_variation(bucket_hash(SEED, u, 2), ranges) for u in prefix]  # type: ignore[arg-type]

    seconds, scalar_chosen = best_of(1, scalar_loop)
    assert scalar_chosen == results[("uuid", 2)][:n_loop].tolist()
    note = f"timed on the first {n_loop:,} ids, rate extrapolated"
    rows.append(Row("liftlab scalar loop, hash v2", "uuid", n_loop, seconds, note))
    return rows


def format_batch_assignment(rows: list[Row], n_ids: int) -> str:
    sdk = {r.method[-2:]: r.per_second for r in rows if r.method.startswith("growthbook")}
    lines = [
        f"### Batch assignment: {n_ids:,} unit ids, 4 variations, coverage {COVERAGE}",
        "",
        "| method | ids | timed ids | seconds | users/s | x growthbook SDK loop (same hash version) | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = r.per_second / sdk[r.method[-2:]]
        lines.append(
            f"| {r.method} | {r.ids} | {r.timed_ids:,} | {r.seconds:.3f} | {r.per_second:,.0f} "
            f"| {ratio:.1f}x | {r.note} |"
        )
    lines += [
        "",
        "Identical variation indexes asserted in the run: batch vs SDK loop vs liftlab scalar loop "
        f"on the first {rows[-1].timed_ids:,} ids (both hash versions, and the non-ASCII ids).",
    ]
    return "\n".join(lines)


def _setup_serving_database(url: str) -> dict[str, str]:
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


def _load(port: int, key: str, n_requests: int, concurrency: int) -> tuple[float, list[float]]:
    """``concurrency`` keep-alive clients POSTing /api/v1/assign; wall time and latencies (s)."""
    import http.client
    import json
    import threading

    latencies: list[float] = []
    lock = threading.Lock()
    per_client = n_requests // concurrency

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        mine = []
        for i in range(per_client):
            body = json.dumps({"unit_id": f"c{index}-u{i}", "attributes": {"country": "DE"}})
            start = time.perf_counter()
            connection.request("POST", "/api/v1/assign", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            assert response.status == 200, response.status
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies


def section_api_and_ingest(n_requests: int, n_events: int) -> str:
    """/api/v1/assign under gunicorn (PostgreSQL), and event ingestion rates into PostgreSQL."""
    import subprocess
    import tempfile
    import urllib.request

    import pandas as pd

    from benchmarks.support import free_port, scratch_postgres
    from experiments.db import make_engine, make_session_factory
    from experiments.services import events as event_service
    from experiments.services.event_import import import_events

    lines = []
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        keys = _setup_serving_database(url)
        port = free_port()
        env = {
            **os.environ,
            "LIFTLAB_DATABASE_URL": url,
            "LIFTLAB_INSTANCE_DIR": tmp,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "3",
            "GUNICORN_ACCESSLOG": "/dev/null",
            "GUNICORN_LOGLEVEL": "warning",
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = subprocess.Popen(
            [str(gunicorn), "-c", "platform/gunicorn.conf.py", "web:create_app()"],
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            _load(port, keys["assign"], 60, 2)  # warm-up: pools, imports
            wall, latencies = _load(port, keys["assign"], n_requests, 8)
        finally:
            server.terminate()
            server.wait(timeout=30)
        p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
        lines += [
            "### /api/v1/assign under gunicorn (3 gthread workers, PostgreSQL, 8 keep-alive clients "
            "on the same 2 cores)",
            "",
            "| requests | requests/s | p50 ms | p99 ms |",
            "|---:|---:|---:|---:|",
            f"| {len(latencies):,} | {len(latencies) / wall:,.0f} | {p50:.1f} | {p99:.1f} |",
            "",
        ]
        frame = pd.DataFrame(
            {
                "event_id": [f"b{i}" for i in range(n_events)],
                "unit_id": [f"u{i % 50_000}" for i in range(n_events)],
                "name": np.where(np.arange(n_events) % 10 == 0, "order", "view"),
                "value": np.where(np.arange(n_events) % 10 == 0, 42.5, np.nan),
                "occurred_at": pd.Timestamp("2026-11-01T00:00:00Z")
                + pd.to_timedelta(np.arange(n_events) % 86400, unit="s"),
            }
        )
        path = Path(tmp) / "events.parquet"
        frame.to_parquet(path)
        engine = make_engine(url)
        started = time.perf_counter()
        result = import_events(engine, path, chunk_size=100_000)
        bulk = time.perf_counter() - started
        assert result.inserted == n_events
        n_api = min(n_events, 50_000)
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
        started = time.perf_counter()
        sessions = make_session_factory(engine)
        for start in range(0, n_api, 5_000):
            with sessions.begin() as session:
                event_service.ingest(session, rows[start : start + 5_000])
        batched = time.perf_counter() - started
        engine.dispose()
        lines += [
            "### Event ingestion into PostgreSQL",
            "",
            "| path | events | seconds | events/s | x API batches |",
            "|---|---:|---:|---:|---:|",
            f"| bulk import (COPY + INSERT … ON CONFLICT DO NOTHING) | {n_events:,} | {bulk:.2f} | "
            f"{n_events / bulk:,.0f} | {(n_events / bulk) / (n_api / batched):.1f}x |",
            f"| service batches of 5,000 (the /api/v1/events path) | {n_api:,} | {batched:.2f} | "
            f"{n_api / batched:,.0f} | 1.0x |",
        ]
    return "\n".join(lines)


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--ids", type=int, default=1_000_000, help="unit ids for the batch forms")
    parser.add_argument("--loop-ids", type=int, default=50_000, help="ids for the Python loops")
    parser.add_argument("--output", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    n_ids, n_loop, repeats = (50_000, 5_000, 1) if args.quick else (args.ids, args.loop_ids, 3)
    started = time.perf_counter()
    sections = [format_batch_assignment(section_batch_assignment(n_ids, n_loop, repeats), n_ids)]
    n_requests, n_events = (400, 20_000) if args.quick else (4_000, 1_000_000)
    sections.append(section_api_and_ingest(n_requests, n_events))
    report = "\n\n".join(sections)
    print(report)
    print(f"\n({machine()}; total {time.perf_counter() - started:.1f} s)")
    if args.output is not None:
        command = "  ".join([".venv/bin/python", *(["benchmarks/assignment.py"] + sys.argv[1:])])
        args.output.write_text(
            "# Assignment benchmark\n\n"
            f"Command: `{command.replace('  ', ' ')}`\n\nMachine: {machine()}\n\n{report}\n"
        )


if __name__ == "__main__":
    main()
