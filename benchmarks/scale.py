"""Benchmark of the scale-out paths (issue 9), printed in one run:

(a) batch strategy decisions (score with the uplift model, price, allocate under a budget) for
    USERS simulated users: the Spark job in local mode (``local[2]``) against the single process,
    users per second, with the two decision logs compared user for user;
(b) a results refresh (SQL pushdown, ``experiments.analysis``) in PostgreSQL at EVENTS events,
    with and without the events-table indexes of the migrations (the data generator and COPY
    loader of ``benchmarks/refresh.py``);
(c) ``/api/v1/assign`` and ``/api/v1/decide`` under gunicorn (3 workers, PostgreSQL) with a
    bounded loopback load generator: CLIENTS keep-alive clients sending REQUESTS requests in all,
    requests/s, p50/p99 latency and the error rate (the serving set-up of
    ``benchmarks/assignment.py``). ``/decide`` three ways: a new unit of a strategy without a
    model (the fallback, logged), a new unit with features scored online by the batch plan's
    model (an uplift model with the default settings, logged), and a unit of the batch plan
    (its logged decision, repeated); every new decision passes the hard budget cap.

Run: ``.venv/bin/python benchmarks/scale.py`` (1,000,000 users, 10,000,000 events) or with
``--users 100000 --events 1000000 --requests 600`` for a quick run; ``--write
docs/benchmarks/scale.md`` writes the tables with the command.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import refresh  # noqa: E402
from benchmarks.assignment import machine  # noqa: E402
from benchmarks.assignment_serving import setup_serving_database  # noqa: E402
from benchmarks.support import (  # noqa: E402
    gunicorn_app,
    register_model,
    scratch_postgres,
    shop_model,
)

ARMS = ["discount_20", "coupon_5"]


# --- (a) Spark local mode vs one process -----------------------------------------------------------


def _strategy_inputs(folder: Path, features: list[str], n_users: int):  # type: ignore[no-untyped-def]
    from experiments.jobs.strategy_run import StrategyInputs
    from experiments.strategy.economics import fixed_coupon, percent_discount

    return StrategyInputs(
        key="scale",
        model_run_id=0,
        artifact_path=str(folder),
        features=features,
        arms=ARMS,
        incentive_ids=[1, 2],
        cost_models=[percent_discount("discount_20", 20), fixed_coupon("coupon_5", 5.0)],
        calibration_ates=[0.03, None],
        budget=0.75 * n_users,
        holdout=0.05,
        explore=0.05,
        objective="revenue",
        margin_rate=0.4,
        salt="strategy:scale",
    )


def section_spark(n_users: int, tmp: Path) -> list[str]:
    import pandas as pd

    from experiments.jobs.spark_session import get_session, read_population
    from experiments.jobs.spark_strategy import decide_population
    from experiments.jobs.strategy_run import (
        allocate_population,
        calibrate,
        calibration_shifts,
        mean_effects,
        population_economics,
        raw_outcomes,
    )
    from experiments.simulation import simulate_shop
    from uplift import UpliftModel

    shop = simulate_shop(n_users=5000, seed=4)
    data = shop.randomized_experiment(arms=["none", *ARMS], seed=1)
    data["conversion"] = data["converted"].astype(float)
    features = [c for c in shop.users.columns if c != "unit_id"]
    folder = tmp / "model"
    UpliftModel(
        representation=(64, 32), head=(32,), max_epochs=3, random_state=0, verbose=False
    ).fit(
        data[features],
        data["treatment"].to_numpy(),
        data[["conversion", "revenue"]],
        control="none",
    ).save(folder)
    path = tmp / "population.parquet"
    simulate_shop(n_users=n_users, seed=5).users.to_parquet(path, row_group_size=131_072)
    inputs = _strategy_inputs(folder, features, n_users)

    started = time.perf_counter()
    population = pd.read_parquet(path)
    model = UpliftModel.load(folder)
    p, revenue = raw_outcomes(model, population[features], ARMS)
    p, order_value = calibrate(
        p, revenue, calibration_shifts(inputs.calibration_ates, mean_effects(p))
    )
    economics = population_economics(inputs, p, order_value)
    single = allocate_population(
        inputs, economics.value, economics.cost, population["unit_id"].astype(str).to_numpy()
    )
    single_s = time.perf_counter() - started

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = get_session(
        "local[2]",
        app_name="liftlab-scale",
        conf={
            "spark.sql.shuffle.partitions": "8",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.executorEnv.OMP_NUM_THREADS": "1",
            "spark.driver.memory": "4g",
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter()
    decisions, summary, _, _ = decide_population(spark, inputs, read_population(spark, str(path)))
    decisions.select("row", "unit_id", "incentive", "bucket", "propensity").write.mode(
        "overwrite"
    ).parquet(str(tmp / "decisions"))
    spark_s = time.perf_counter() - started
    decisions.unpersist()
    spark.stop()
    got = pd.read_parquet(tmp / "decisions").sort_values("row")
    names = np.asarray([None, *ARMS], dtype=object)[single.arm + 1]
    same = (
        (got["incentive"].to_numpy(dtype=object) == names)
        | (got["incentive"].isna().to_numpy() & (single.arm < 0))
    ).all() and (got["bucket"].to_numpy() == single.bucket).all()
    same = bool(same and (got["propensity"].to_numpy() == single.propensity).all())
    same = same and summary["lambda"] == single.lambda_ and summary["spend"] == single.spend
    return [
        f"### (a) Batch decisions: score + price + allocate, {n_users:,} users x {len(ARMS)} "
        "incentives (uplift model 64-32/32, holdout 5 %, explore 5 %, binding budget)",
        "",
        "| engine | seconds | users/s | x single process |",
        "|---|---:|---:|---:|",
        f"| single process (`liftlab strategy run` path) | {single_s:.1f} | "
        f"{n_users / single_s:,.0f} | 1.00x |",
        f"| Spark local[2] (`--engine spark`; read Parquet, write Parquet) | {spark_s:.1f} | "
        f"{n_users / spark_s:,.0f} | {single_s / spark_s:.2f}x |",
        "",
        f"Decisions identical user for user (arm, bucket, propensity), lambda and spend equal: "
        f"**{same}** (lambda {single.lambda_:.6g}, spend {single.spend:,.2f} of "
        f"{inputs.budget:,.0f}).",
        "",
    ]


# --- (b) PostgreSQL refresh with and without the events indexes -------------------------------------


def _timed_refresh(url: str, experiment_id: int, repeat: int) -> tuple[float, dict[str, Any]]:
    times, result = [], {}
    for _ in range(repeat):
        result = refresh.run_child("pushdown", url, experiment_id)
        times.append(result["seconds"])
    return float(np.median(times)), result


def section_refresh(users: int, events: int, repeat: int) -> list[str]:
    import psycopg

    url = refresh.create_database()
    try:
        from experiments.db.migrate import upgrade

        upgrade(url)
        experiment_id, variant_ids = refresh.create_experiment(url)
        started = time.perf_counter()
        refresh.load_rows(url, experiment_id, variant_ids, users, events, seed=0)
        load_s = time.perf_counter() - started
        refresh.run_child("pushdown", url, experiment_id)  # warm-up: the tables in the cache
        indexed_s, indexed = _timed_refresh(url, experiment_id, repeat)
        with psycopg.connect(refresh._psycopg_url(url), autocommit=True) as conn:
            for name in refresh.EVENT_INDEXES:
                conn.execute(f"DROP INDEX {name}")
            conn.execute("ANALYZE events")
        plain_s, plain = _timed_refresh(url, experiment_id, repeat)
        diff = refresh.max_relative_difference(indexed["stats"], plain["stats"])
    finally:
        refresh.drop_database(url)
    return [
        f"### (b) Results refresh in PostgreSQL: {users:,} users, {events:,} events "
        f"(5 metrics, 2 variants; loaded by COPY in {load_s:.0f} s)",
        "",
        f"| events table | refresh s (median of {repeat}) | x with indexes |",
        "|---|---:|---:|",
        f"| with {', '.join(f'`{name}`' for name in refresh.EVENT_INDEXES)} | {indexed_s:.2f} | "
        "1.00x |",
        f"| without them (sequential scan) | {plain_s:.2f} | {plain_s / indexed_s:.2f}x |",
        "",
        f"Statistics equal with and without (max relative difference {diff:.1e}).",
        "",
    ]


# --- (c) serving under gunicorn -----------------------------------------------------------------------


def load(port: int, key: str, path: str, bodies: list[bytes], clients: int):  # type: ignore[no-untyped-def]
    """``clients`` keep-alive loopback clients share ``bodies`` (bounded: each request once);
    wall seconds, latencies of the answered requests and the number of errors (non-2xx or
    connection failures)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, failed = [], 0
        for body in share:
            start = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            mine.append(time.perf_counter() - start)
            failed += not ok
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(bodies[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, errors[0]


MODEL_ARMS = ["coupon_5", "discount_20"]


def model_strategy(session, folder: Path, n_batch: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Strategy ``bench-model``: an uplift model with the default settings, trained on 20,000
    simulated randomized users, and a batch plan over ``n_batch`` users (its serving state lets
    ``/decide`` score new units online); returns the unit ids the plan decided."""
    from experiments.jobs.strategy_run import run_strategy
    from experiments.services import strategies
    from experiments.simulation import simulate_shop

    features, architecture = shop_model(folder, MODEL_ARMS)
    run = register_model(session, folder, features, architecture)
    strategies.create_strategy(
        session,
        {
            "key": "bench-model",
            "status": "active",
            "budget": 1e6,
            "approved_incentives": MODEL_ARMS,
            "fallback": "coupon_5",
            "holdout_share": 0.05,
            "explore_share": 0.10,
            "objective": "revenue",
            "model_run_id": run.id,
        },
        actor="bench",
    )
    population = simulate_shop(n_users=n_batch, seed=5).users
    run_strategy(session, "bench-model", population)
    return population["unit_id"].astype(str).tolist()


def newcomer_features(n: int) -> list[dict[str, Any]]:
    """The features of ``n`` simulated users the batch plan never saw, as JSON values."""
    from experiments.simulation import simulate_shop

    users = simulate_shop(n_users=n, seed=11).users.drop(columns=["unit_id"])
    return [
        {c: (v.item() if hasattr(v, "item") else v) for c, v in row.items()}
        for row in users.to_dict(orient="records")
    ]


def section_serving(n_requests: int, clients: int) -> list[str]:
    from experiments.db import make_engine, make_session_factory
    from experiments.services import strategies

    rows = []
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as tmp:
        keys = setup_serving_database(url)
        engine = make_engine(url)
        with make_session_factory(engine).begin() as session:
            batch_units = model_strategy(session, Path(tmp) / "model", 5_000)
        newcomers = newcomer_features(n_requests + 60)
        with make_session_factory(engine).begin() as session:
            strategies.create_strategy(
                session,
                {
                    "key": "bench",
                    "status": "active",
                    "budget": 1e6,
                    "approved_incentives": ["discount_10", "free_shipping"],
                    "fallback": "discount_10",
                    "holdout_share": 0.05,
                    "explore_share": 0.10,
                },
                actor="bench",
            )
        engine.dispose()
        with gunicorn_app(url, tmp) as port:
            for name, path, make in (
                (
                    "/api/v1/assign",
                    "/api/v1/assign",
                    lambda i: {"unit_id": f"u{i}", "attributes": {"country": "DE"}},
                ),
                (
                    "/api/v1/decide (new unit, no model: fallback, logged)",
                    "/api/v1/decide",
                    lambda i: {"strategy": "bench", "unit_id": f"u{i}"},
                ),
                (
                    "/api/v1/decide (new unit with features: scored online, logged)",
                    "/api/v1/decide",
                    lambda i: {
                        "strategy": "bench-model",
                        "unit_id": f"new{i}",
                        "features": newcomers[i],
                    },
                ),
                (
                    "/api/v1/decide (unit in the batch plan: repeated)",
                    "/api/v1/decide",
                    lambda i: {"strategy": "bench-model", "unit_id": batch_units[i % 5_000]},
                ),
            ):
                warm = [json.dumps(make(-i - 1)).encode() for i in range(60)]
                load(port, keys["assign"], path, warm, 2)
                bodies = [json.dumps(make(i)).encode() for i in range(n_requests)]
                wall, latencies, errors = load(port, keys["assign"], path, bodies, clients)
                p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
                rows.append(
                    f"| {name} | {len(bodies):,} | {len(bodies) / wall:,.0f} | {p50:.1f} | "
                    f"{p99:.1f} | {errors / len(bodies):.2%} |"
                )
    return [
        f"### (c) Serving under gunicorn (3 gthread workers, PostgreSQL, {clients} keep-alive "
        "loopback clients on the same 2 cores)",
        "",
        "| endpoint | requests | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000, help="(a) users to decide for")
    parser.add_argument("--refresh-users", type=int, default=1_000_000, help="(b) exposed users")
    parser.add_argument("--events", type=int, default=10_000_000, help="(b) events")
    parser.add_argument("--repeat", type=int, default=3, help="(b) refreshes per variant")
    parser.add_argument("--requests", type=int, default=3000, help="(c) requests per endpoint")
    parser.add_argument("--clients", type=int, default=8, help="(c) concurrent clients")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c")
    parser.add_argument("--write", type=Path, help="write the report (markdown) here")
    args = parser.parse_args(argv)
    skip = set(args.skip.split(",")) - {""}
    load_before = os.getloadavg()
    lines = ["# Scale-out: Spark, PostgreSQL indexes, serving", ""]
    with tempfile.TemporaryDirectory() as tmp:
        if "a" not in skip:
            lines += section_spark(args.users, Path(tmp))
    if "b" not in skip:
        lines += section_refresh(args.refresh_users, args.events, args.repeat)
    if "c" not in skip:
        lines += section_serving(args.requests, args.clients)
    load_after = os.getloadavg()
    command = " ".join(
        [
            "flock /tmp/liftlab-heavy.lock .venv/bin/python benchmarks/scale.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    lines += [
        f"Machine: {machine()}; load average (1 min) {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after.",
        "",
        f"Command: `{command}`",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        args.write.write_text(report + "\n")


if __name__ == "__main__":
    main()
