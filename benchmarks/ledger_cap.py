"""Benchmark of the hard budget cap's cost per new online decision against the ledger's size.

Every new decision ``POST /api/v1/decide`` logs for a strategy reads the spend its cap sees under
the strategy's lock (``experiments.services.strategy_ledger.cap_spend``), so its cost decides how
many new decisions per second one strategy can issue: the lock serializes them. This benchmark
builds, in a scratch PostgreSQL database (and an SQLite file), a strategy whose current batch run
holds LEDGER decisions (bulk-inserted by SQL), then times ``strategies.decide`` for NEW units that
the batch never decided (the fallback path: no model work, so the time is the ledger's), each in
its own transaction as the API runs it, next to the same strategy with an empty ledger.

Run: ``.venv/bin/python benchmarks/ledger_cap.py`` (1,000,000 decisions, 200 new units) or
``--ledger 100000 --units 50`` for a quick run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.support import footer, scratch_postgres  # noqa: E402

STRATEGY = {
    "status": "active",
    "budget": 1e9,
    "approved_incentives": ["discount_10", "free_shipping"],
    "fallback": "discount_10",
    "holdout_share": 0.05,
    "explore_share": 0.10,
}
CHUNK = 200_000


def _seed(url: str, ledger: int) -> None:
    """Migrate; strategies "empty" and "full"; ``ledger`` batch decisions of run 1 for "full"."""
    from sqlalchemy import select, text, update

    from experiments.db import Incentive, Strategy, make_engine, make_session_factory
    from experiments.db.migrate import upgrade
    from experiments.services import catalog, demo_data, strategies

    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        for key in ("empty", "full"):
            strategies.create_strategy(session, {"key": key, **STRATEGY}, actor="bench")
        full = session.scalar(select(Strategy.id).where(Strategy.key == "full"))
        ten = session.scalar(select(Incentive.id).where(Incentive.key == "discount_10"))
        session.execute(update(Strategy).where(Strategy.id == full).values(batch_run=1))
    series = (
        "generate_series(:lo, :hi)"
        if engine.dialect.name == "postgresql"
        else "(WITH RECURSIVE s(value) AS (SELECT :lo UNION ALL SELECT value + 1 FROM s "
        "WHERE value < :hi) SELECT value FROM s)"
    )
    column = "g" if engine.dialect.name == "postgresql" else "value"
    alias = " AS g" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as connection:
        for lo in range(1, ledger + 1, CHUNK):
            connection.execute(
                text(
                    "INSERT INTO decisions (decision_id, strategy_id, unit_id, incentive_id, "
                    "bucket, propensity, expected_value, expected_cost, context, decided_at, "
                    f"batch_run) SELECT 'b' || {column}, :sid, 'batch-' || {column}, :ten, "
                    "'exploit', 0.85, 2.0, 1.5, '{\"source\": \"batch\"}', CURRENT_TIMESTAMP, 1 "
                    f"FROM {series}{alias}"
                ),
                {"lo": lo, "hi": min(lo + CHUNK - 1, ledger), "sid": full, "ten": ten},
            )
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE decisions"))
    engine.dispose()


def _time_new_decisions(url: str, key: str, units: int) -> np.ndarray:
    from experiments.db import make_engine, make_session_factory
    from experiments.services import strategies

    engine = make_engine(url)
    factory = make_session_factory(engine)
    seconds = []
    for i in range(units + 5):
        start = time.perf_counter()
        with factory.begin() as session:
            strategies.decide(session, key, f"new-{key}-{i}")
        if i >= 5:  # the first few warm the caches
            seconds.append(time.perf_counter() - start)
    engine.dispose()
    return np.array(seconds)


def run(ledger: int, units: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres("liftlab_ledger") as pg:
        for name, url in (("PostgreSQL", pg), ("SQLite", f"sqlite:///{tmp}/ledger.db")):
            _seed(url, ledger)
            empty = _time_new_decisions(url, "empty", units)
            full = _time_new_decisions(url, "full", units)
            for label, t in (("empty ledger", empty), (f"{ledger:,} decisions", full)):
                rows.append(
                    f"| {name} | {label} | {len(t)} | {np.median(t) * 1000:.1f} | "
                    f"{np.percentile(t, 99) * 1000:.1f} | {1 / np.median(t):,.0f} | "
                    f"{np.median(t) / np.median(empty):.2f} |"
                )
    return [
        "| database | ledger | new decisions | p50 ms | p99 ms | new decisions/s (1 / p50) | "
        "p50 / empty ledger |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=int, default=1_000_000, help="batch decisions")
    parser.add_argument("--units", type=int, default=200, help="new units timed per strategy")
    args = parser.parse_args(argv)
    lines = [
        "Hard budget cap: one new online decision (`strategies.decide`, fallback path, its own "
        "transaction) against the size of the strategy's current ledger",
        "",
        *run(args.ledger, args.units),
        *footer("ledger_cap.py", argv),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
