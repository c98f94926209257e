"""Benchmark of the causal report of a 1,000,000-user experiment, end to end (issue 8).

Set-up (not timed as part of the report): a private PostgreSQL database (``scratch_postgres``,
dropped at the end), migrated; the simulator's default catalog and one 4-arm experiment (the
demo's: control, discount_20, coupon_5, free_shipping; conversion primary, revenue and orders
secondary, margin guardrail; CUPED on) created through the services; USERS simulated users
(``experiments.simulation.simulate_shop``) assigned with the experiment's own hashing
(``bucket_hash_many``), exposed over 14 days, with their outcomes drawn by the simulator
(``Shop.sample_outcomes``) as order / margin / incentive-cost events inside the 30-day window,
pre-period orders (the CUPED covariate) and page views (some outside every window); loaded with
PostgreSQL COPY (``benchmarks.refresh``'s loader helpers); one results refresh; the population
features written as ``<artifacts>/populations/<key>.parquet``.

Timed: ``liftlab report KEY --format json|html|csv --output PATH`` in its own process (the console
script's ``main``, plus an exit hook printing the process's peak resident memory, ``VmHWM``),
wall time from start to exit, and the report's own phase timings (``appendix.timings_seconds``).
Peers in the same run, each in its own process (``benchmarks/report_peers.py``): the average
effects by statsmodels OLS (HC2) on the rows loaded into pandas, against the report's statistics
phase (numbers compared), and EconML's DRLearner alone on the same training sample as the
report's uplift model, against the report's uplift training + heterogeneity phases.

Run: ``flock /tmp/liftlab-heavy.lock .venv/bin/python benchmarks/report.py`` (1,000,000 users) or
``--users 50000`` while developing; ``--write docs/benchmarks/report.md`` writes the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.refresh import _copy_csv, _psycopg_url, _timestamps  # noqa: E402
from benchmarks.support import scratch_postgres  # noqa: E402

KEY = "report-bench"
START = np.datetime64("2026-10-01T00:00:00", "us")
AS_OF = dt.datetime(2026, 12, 15, tzinfo=dt.UTC)  # after every unit's 30-day window closed
DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000
CHUNK = 1_000_000
# the CLI in its own process, with an exit hook that prints its peak resident memory
CLI = (
    "import atexit, sys\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('PEAK_RSS_KB ' + line.split()[1] + '\\n')\n"
    "atexit.register(_peak)\n"
    "from experiments.cli import main\n"
    "sys.argv = ['liftlab', *sys.argv[1:]]\n"
    "main()\n"
)


# --- set-up ----------------------------------------------------------------------------------------


def create_experiment(url: str, users: int) -> tuple[int, list[int], Any, list[str]]:
    """The demo's 4-arm experiment (CUPED on), running; (id, variant ids, config, arm keys)."""
    from sqlalchemy.orm import Session

    from experiments.db import Incentive, make_engine
    from experiments.services import catalog, demo_data, experiments

    spec = demo_data.demo_experiment_spec(users)
    spec |= {"key": KEY, "name": "Report benchmark: checkout incentives"}
    spec["design"] = {**spec["design"], "cuped": True}
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        experiments.create_experiment(session, spec, actor="benchmark")
        experiments.transition(session, KEY, "running", actor="benchmark")
        experiment = experiments.get_experiment(session, KEY)
        arms = [
            session.get(Incentive, v.incentive_id).key if v.incentive_id else "none"
            for v in experiment.variants
        ]
        out = (
            experiment.id,
            [v.id for v in experiment.variants],
            experiments.assignment_config(experiment),
            arms,
        )
    engine.dispose()
    return out


def _events(prefix: str, units: np.ndarray, name: str, value: np.ndarray, at: np.ndarray) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "event_id": np.char.add(prefix, np.arange(len(units)).astype(str)),
            "unit_id": units,
            "name": name,
            "value": value,
            "occurred_at": _timestamps(at),
            "received_at": "2026-12-15 00:00:00+00",
        }
    )


def simulate_rows(
    shop: Any, config: Any, arms: list[str], views_per_user: float, seed: int
) -> tuple[Any, list[Any]]:
    """(assignments frame without ids, event frames): every user of the shop in the experiment."""
    import pandas as pd

    from experiments.assignment import bucket_hash_many, choose_variation_many

    rng = np.random.default_rng([seed, 3])
    units = np.asarray(shop.users["unit_id"], dtype=str)
    buckets = bucket_hash_many(config.hash_seed, units, config.hash_version)
    pick = choose_variation_many(buckets, config.effective_ranges())
    if (pick < 0).any():
        raise RuntimeError("coverage 1 should put every user in the experiment")
    n = len(units)
    exposure = START + rng.integers(0, 14 * DAY_US, n).astype("timedelta64[us]")
    outcome = shop.sample_outcomes(shop.arm_index(np.asarray(arms)[pick]), seed=seed)
    frames = []
    # the drawn outcomes as per-order events inside the 30-day window (totals kept per unit)
    orders = outcome["orders"].to_numpy()
    owner = np.repeat(np.arange(n), orders)
    share = 1.0 / orders[owner]
    at = exposure[owner] + rng.integers(HOUR_US, 20 * DAY_US, len(owner)).astype("timedelta64[us]")
    for prefix, name, column in (
        ("o", "order", "revenue"),
        ("m", "margin", "margin"),
        ("c", "incentive_cost", "incentive_cost"),
    ):
        value = outcome[column].to_numpy()[owner] * share
        frames.append(_events(prefix, units[owner], name, np.round(value, 6), at))
    # pre-period orders (the CUPED covariate): about a month of each user's order frequency
    frequency = shop.users["frequency"].to_numpy(dtype=float)
    pre_owner = np.repeat(np.arange(n), rng.poisson(frequency / 12))
    pre_at = exposure[pre_owner] - rng.integers(HOUR_US, 29 * DAY_US, len(pre_owner)).astype(
        "timedelta64[us]"
    )
    pre_value = shop.users["avg_order_value"].to_numpy(dtype=float)[pre_owner]
    frames.append(_events("p", units[pre_owner], "order", np.round(pre_value, 2), pre_at))
    frames.append(_events("q", units[pre_owner], "margin", np.round(0.3 * pre_value, 2), pre_at))
    # page views from 10 days before to 40 days after exposure: noise for the scans
    view_owner = np.repeat(np.arange(n), rng.poisson(views_per_user, n))
    offset = rng.integers(-10 * DAY_US, 40 * DAY_US, len(view_owner)).astype("timedelta64[us]")
    views = _events("v", units[view_owner], "view", np.nan, exposure[view_owner] + offset)
    frames += [views.iloc[i : i + CHUNK] for i in range(0, len(views), CHUNK)]
    assignments = pd.DataFrame(
        {"unit_id": units, "pick": pick, "first_exposure_at": _timestamps(exposure)}
    )
    return assignments, frames


def load(url: str, experiment_id: int, variant_ids: list[int], assignments: Any, frames: list[Any]):  # type: ignore[no-untyped-def]
    """COPY the rows, rebuild the event indexes, refresh planner statistics; returns n events."""
    import psycopg

    assignments = assignments.assign(
        experiment_id=experiment_id, variant_id=np.asarray(variant_ids)[assignments["pick"]]
    )[["experiment_id", "unit_id", "variant_id", "first_exposure_at"]]
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn, conn.cursor() as cur:
        # the migrated schema's own secondary indexes on events, rebuilt after the bulk load
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
            "AND indexname NOT IN ('pk_events', 'uq_events_event_id')"
        )
        indexes = cur.fetchall()
        cur.execute("ALTER TABLE events DROP CONSTRAINT IF EXISTS uq_events_event_id")
        for name, _ in indexes:
            cur.execute(f"DROP INDEX {name}")
        _copy_csv(cur, "assignments", ", ".join(assignments.columns), assignments)
        for frame in frames:
            _copy_csv(cur, "events", ", ".join(frame.columns), frame)
        cur.execute("ALTER TABLE events ADD CONSTRAINT uq_events_event_id UNIQUE (event_id)")
        for _, ddl in indexes:
            cur.execute(ddl)
        cur.execute("VACUUM ANALYZE events")
        cur.execute("VACUUM ANALYZE assignments")
    return sum(len(f) for f in frames)


def refresh(url: str) -> None:
    from sqlalchemy.orm import Session

    from experiments.db import make_engine
    from experiments.services import results

    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        results.refresh(session, KEY, actor="benchmark", as_of=AS_OF)
    engine.dispose()


# --- the timed report ------------------------------------------------------------------------------


def run_report(env: dict[str, str], fmt: str, folder: Path) -> dict[str, Any]:
    output = folder / f"report.{'zip' if fmt == 'csv' else fmt}"
    command = [sys.executable, "-c", CLI, "report", KEY, "--format", fmt, "--output", str(output)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"liftlab report --format {fmt} failed:\n{done.stderr[-4000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB ")]
    stored = json.loads((Path(env["LIFTLAB_ARTIFACT_DIR"]) / "reports" / f"{KEY}.json").read_text())
    return {
        "format": fmt,
        "seconds": seconds,
        "peak_mb": int(peak[-1].split()[1]) / 1024 if peak else float("nan"),
        "bytes": output.stat().st_size,
        "said": done.stdout.strip().splitlines()[-1],
        "report": stored,
    }


def run_peer(name: str, url: str, folder: Path) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "benchmarks" / "report_peers.py"), name, url, KEY]
    command.append(str(folder / "artifacts" / "populations" / f"{KEY}.parquet"))
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}  # as `liftlab report` runs
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"peer {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def benchmark(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]], dict]:  # type: ignore[type-arg]
    from experiments.db.migrate import upgrade
    from experiments.simulation import simulate_shop

    setup: dict[str, Any] = {"users": args.users}
    with scratch_postgres("liftlab_report") as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        upgrade(url)
        experiment_id, variant_ids, config, arms = create_experiment(url, args.users)
        shop = simulate_shop(n_users=args.users, seed=args.seed)
        assignments, frames = simulate_rows(shop, config, arms, args.views_per_user, args.seed)
        setup["simulate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        setup["events"] = load(url, experiment_id, variant_ids, assignments, frames)
        setup["load_s"] = time.perf_counter() - started
        started = time.perf_counter()
        refresh(url)
        setup["refresh_s"] = time.perf_counter() - started
        populations = folder / "artifacts" / "populations"
        populations.mkdir(parents=True)
        shop.users.to_parquet(populations / f"{KEY}.parquet")
        setup["true_ate"] = {
            arm: float(shop.true_effect("conversion")[:, shop.arms.index(arm) - 1].mean())
            for arm in arms
            if arm != "none"
        }
        del shop, assignments, frames
        env = {
            **os.environ,
            "LIFTLAB_DATABASE_URL": url,
            "LIFTLAB_INSTANCE_DIR": str(folder / "instance"),
            "LIFTLAB_ARTIFACT_DIR": str(folder / "artifacts"),
        }
        runs = []
        for fmt in args.formats.split(","):
            runs.append(run_report(env, fmt, folder))
            print(f"  report --format {fmt}: {runs[-1]['seconds']:.1f} s", file=sys.stderr)
        peers = {}
        for name in args.peers.split(",") if args.peers else []:
            peers[name] = run_peer(name, url, folder)
            print(f"  peer {name}: {peers[name]['seconds']:.1f} s", file=sys.stderr)
    return setup, runs, peers


if __name__ == "__main__":
    from benchmarks.report_tables import format_tables

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--views-per-user", type=float, default=3.0)
    parser.add_argument("--formats", default="json,html,csv")
    parser.add_argument("--peers", default="ols,drlearner", help="comma-separated; '' for none")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--write", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    begun = time.perf_counter()
    setup, runs, peers = benchmark(args)
    total = time.perf_counter() - begun
    command = " ".join(["benchmarks/report.py", *sys.argv[1:]])
    footer = (
        f"Command: `flock /tmp/liftlab-heavy.lock .venv/bin/python {command}` — whole run "
        f"{total / 60:.1f} min on {os.cpu_count()} CPU(s), {platform.python_implementation()} "
        f"{platform.python_version()}."
    )
    text = format_tables(setup, runs, peers) + "\n\n" + footer
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(f"# Report benchmark (issue 8)\n\n{text}\n")
