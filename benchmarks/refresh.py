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
EVENT_INDEXES = {  # the migration's indexes on events, rebuilt after the bulk load
    "ix_events_unit_name_at": "CREATE INDEX ix_events_unit_name_at "
    "ON events (unit_id, name, occurred_at)",
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
        cur.execute("ALTER TABLE events DROP CONSTRAINT IF EXISTS uq_events_event_id")
        for name in EVENT_INDEXES:
            cur.execute(f"DROP INDEX IF EXISTS {name}")
        unit_ids = np.char.add("user", np.arange(users).astype(str))
        assignments = pd.DataFrame(
            {
                "experiment_id": experiment_id,
                "unit_id": unit_ids,
                "variant_id": np.asarray(variant_ids)[arm],
                "first_exposure_at": _timestamps(exposure),
            }
        )
        _copy_csv(
            cur, "assignments", "experiment_id, unit_id, variant_id, first_exposure_at", assignments
        )
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
            _copy_csv(
                cur, "events", "event_id, unit_id, name, value, occurred_at, received_at", frame
            )
        cur.execute("ALTER TABLE events ADD CONSTRAINT uq_events_event_id UNIQUE (event_id)")
        for ddl in EVENT_INDEXES.values():
            cur.execute(ddl)
        cur.execute("VACUUM ANALYZE events")
        cur.execute("VACUUM ANALYZE assignments")


# --- the methods, each run in a child process -----------------------------------------------------


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image, in MB.

    Linux's ``ru_maxrss`` survives ``execve`` (a child started by a big parent inherits the
    parent's high-water mark), so ``VmHWM`` of ``/proc/self/status``, which starts afresh with
    the new program, is read where it exists.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run_pushdown(url: str, experiment_id: int) -> dict[str, Any]:
    from experiments.analysis import experiment_statistics
    from experiments.db import make_engine

    engine = make_engine(url)
    imported = _peak_rss_mb()
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = experiment_statistics(connection, experiment_id)
    seconds = time.perf_counter() - started
    stats = {
        f"{r.metric_key}/{r.variant_id}": _stats_of(r.__dict__, r.kind, r.pre_sum is not None)
        for r in rows
    }
    return {"seconds": seconds, "imported_mb": imported, "stats": stats, "rows_loaded": 0}


def _stats_of(values: dict[str, Any], kind: str, cuped: bool) -> dict[str, float]:
    names = ["n", "sum", "sum_squares"]
    if kind == "ratio":
        names += ["denominator_sum", "denominator_sum_squares", "sum_of_products"]
    if cuped:
        names += ["pre_sum", "pre_sum_squares", "post_pre_sum_of_products"]
    return {name: float(values[name]) for name in names}


def _load_frames(url: str, experiment_id: int, loader: str) -> tuple[Any, Any]:
    import pandas as pd
    import psycopg
    from sqlalchemy import create_engine

    names = sorted(
        {m["event_name"] for m in METRICS}
        | {m.get("denominator_event") or "" for m in METRICS} - {""}
    )
    name_list = ", ".join(f"'{n}'" for n in names)
    exposures_sql = (
        "SELECT unit_id, variant_id, first_exposure_at FROM assignments "
        f"WHERE experiment_id = {int(experiment_id)}"
    )
    events_sql = f"SELECT unit_id, name, value, occurred_at FROM events WHERE name IN ({name_list})"
    if loader == "read_sql":
        engine = create_engine(url)
        with engine.connect() as connection:
            exposures = pd.read_sql_query(exposures_sql, connection)
            events = pd.read_sql_query(events_sql, connection)
        engine.dispose()
        return exposures, events
    frames = []
    with psycopg.connect(_psycopg_url(url)) as conn, conn.cursor() as cur:
        for sql in (exposures_sql, events_sql):
            buffer = io.BytesIO()
            with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for block in copy:
                    buffer.write(block)
            buffer.seek(0)
            frame = pd.read_csv(buffer, engine="pyarrow")
            del buffer
            for column in ("first_exposure_at", "occurred_at"):
                if column in frame:
                    frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
            frames.append(frame)
    return frames[0], frames[1]


def _naive_utc(series: Any) -> np.ndarray:
    import pandas as pd

    return pd.to_datetime(series, utc=True).dt.tz_localize(None).to_numpy()  # type: ignore[no-any-return]


def pandas_statistics(exposures: Any, events: Any) -> dict[str, dict[str, float]]:
    """The same statistics as the SQL, from the rows, with pandas and numpy (vectorized)."""
    units = exposures.unit_id.to_numpy()
    code = exposures.reset_index(drop=True).index.to_series(index=units)
    unit_code = code.reindex(events.unit_id.to_numpy()).to_numpy()
    keep = ~np.isnan(unit_code)
    events = events[keep]
    unit_code = unit_code[keep].astype(np.int64)
    first = _naive_utc(exposures.first_exposure_at)[unit_code]
    hours = (_naive_utc(events.occurred_at) - first) / np.timedelta64(1, "h")
    name = events.name.to_numpy()
    value = events.value.to_numpy(dtype=float)
    n_units = len(exposures)

    def per_unit(event: str, low: float, high: float, kind: str, cap: float | None) -> np.ndarray:
        mask = (name == event) & (hours >= low) & (hours < high)
        if kind in ("binary", "count"):
            weights = np.ones(int(mask.sum()))
        else:
            weights = np.nan_to_num(value[mask], nan=0.0 if kind == "sum" else 1.0)
        totals = np.bincount(unit_code[mask], weights=weights, minlength=n_units)
        if kind == "binary":
            return np.minimum(totals, 1.0)
        return np.minimum(totals, cap) if cap is not None else totals

    variant = exposures.variant_id.to_numpy()
    out: dict[str, dict[str, float]] = {}
    for m in METRICS:
        window, cap, kind = m["window_hours"], m.get("cap"), m["kind"]
        y = per_unit(m["event_name"], 0, window, kind, cap)
        d = per_unit(m["denominator_event"], 0, window, kind, None) if kind == "ratio" else None
        cuped = m.get("cuped", True) and kind != "ratio"
        x = per_unit(m["event_name"], -window, 0, kind, cap) if cuped else None
        for v in np.unique(variant):
            sel = variant == v
            stats = {"n": float(sel.sum()), "sum": y[sel].sum(), "sum_squares": (y[sel] ** 2).sum()}
            if d is not None:
                stats |= {
                    "denominator_sum": d[sel].sum(),
                    "denominator_sum_squares": (d[sel] ** 2).sum(),
                    "sum_of_products": (y[sel] * d[sel]).sum(),
                }
            if x is not None:
                stats |= {
                    "pre_sum": x[sel].sum(),
                    "pre_sum_squares": (x[sel] ** 2).sum(),
                    "post_pre_sum_of_products": (y[sel] * x[sel]).sum(),
                }
            out[f"{m['key']}/{int(v)}"] = {k: float(val) for k, val in stats.items()}
    return out


def run_pandas(url: str, experiment_id: int, loader: str) -> dict[str, Any]:
    import pandas  # noqa: F401 - imported before the clock starts, like the pushdown's imports
    import psycopg  # noqa: F401

    imported = _peak_rss_mb()
    started = time.perf_counter()
    exposures, events = _load_frames(url, experiment_id, loader)
    rows_loaded = len(exposures) + len(events)
    stats = pandas_statistics(exposures, events)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "imported_mb": imported, "stats": stats, "rows_loaded": rows_loaded}


def child(method: str, url: str, experiment_id: int) -> None:
    if method == "pushdown":
        result = run_pushdown(url, experiment_id)
    else:
        result = run_pandas(url, experiment_id, loader=method.removeprefix("pandas-"))
    result["peak_mb"] = _peak_rss_mb()
    print(json.dumps(result))


METHODS = {
    "pushdown": "SQL pushdown (`experiment_statistics`)",
    "pandas-read_sql": "pandas `read_sql_query` + pandas/numpy",
    "pandas-copy": "pandas via `COPY ... TO STDOUT` CSV + pandas/numpy",
}


def run_child(method: str, url: str, experiment_id: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", method, "--url", url]
    command += ["--experiment-id", str(experiment_id)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def max_relative_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    if set(a) != set(b):
        return float("inf")
    worst = 0.0
    for key, stats in a.items():
        for name, value in stats.items():
            other = b[key].get(name, float("nan"))
            worst = max(worst, abs(value - other) / max(abs(value), abs(other), 1e-12))
    return worst


# --- driver ---------------------------------------------------------------------------------------


def benchmark(users: int, events: int, repeat: int, methods: list[str], seed: int) -> str:
    from sqlalchemy import create_engine, text

    from experiments.db.migrate import upgrade

    url = create_database()
    try:
        upgrade(url)
        experiment_id, variant_ids = create_experiment(url)
        started = time.perf_counter()
        load_rows(url, experiment_id, variant_ids, users, events, seed)
        load_seconds = time.perf_counter() - started
        engine = create_engine(url)
        with engine.connect() as connection:  # warm-up scan, so no method pays a cold cache
            connection.execute(text("SELECT count(*), sum(value) FROM events")).one()
            connection.execute(text("SELECT count(*) FROM assignments")).one()
        engine.dispose()
        results: dict[str, list[dict[str, Any]]] = {}
        for _ in range(repeat):
            for method in methods:
                results.setdefault(method, []).append(run_child(method, url, experiment_id))
                print(f"  {method}: {results[method][-1]['seconds']:.2f} s", file=sys.stderr)
    finally:
        drop_database(url)
    return format_table(users, events, load_seconds, results)


def format_table(
    users: int, events: int, load_seconds: float, results: dict[str, list[dict[str, Any]]]
) -> str:
    pushdown = results.get("pushdown")
    base = statistics.median(r["seconds"] for r in pushdown) if pushdown else None
    lines = [
        f"Refresh of one experiment: {users:,} users, {events:,} events, 2 variants, "
        f"{len(METRICS)} metrics (PostgreSQL; load with COPY + indexes: {load_seconds:.0f} s; "
        f"median of {len(next(iter(results.values())))} run(s)).",
        "",
        "| method | refresh time (s) | vs pushdown | peak RSS (MB) | RSS after imports (MB) "
        "| rows into Python | max rel. diff vs pushdown |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        ratio = f"{seconds / base:.1f}x" if base else "-"
        diff = (
            f"{max_relative_difference(runs[0]['stats'], pushdown[0]['stats']):.1e}"
            if pushdown
            else "-"
        )
        lines.append(
            f"| {METHODS[method]} | {seconds:.2f} | {ratio} | "
            f"{max(r['peak_mb'] for r in runs):.0f} | {runs[0]['imported_mb']:.0f} | "
            f"{runs[0]['rows_loaded']:,} | {diff} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 users, 200,000 events")
    parser.add_argument("--repeat", type=int, default=None, help="runs per method (median)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--write", type=Path, help="also write the table to this markdown file")
    parser.add_argument("--child", choices=list(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--experiment-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.experiment_id)
        return
    users, events = (20_000, 200_000) if args.quick else (args.users, args.events)
    repeat = args.repeat or (3 if args.quick else 1)
    started = time.perf_counter()
    table = benchmark(users, events, repeat, args.methods.split(","), args.seed)
    total = time.perf_counter() - started
    command = " ".join(["benchmarks/refresh.py", *sys.argv[1:]])
    footer = (
        f"\nCommand: `.venv/bin/python {command}` — whole run {total / 60:.1f} min on "
        f"{os.cpu_count()} CPU(s), {platform.python_implementation()} {platform.python_version()}."
    )
    print(table + "\n" + footer)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(f"# Refresh benchmark (issue 4, part b)\n\n{table}\n{footer}\n")


if __name__ == "__main__":
    main()
