"""Benchmark: a Spark batch run's decisions loaded as the strategy's batch run
(``liftlab strategy run --engine spark --load``, ``liftlab strategy load``).

USERS simulated users and the model of ``benchmarks/scale.py`` part (a) (64-32 / 32 units, 2
incentives, holdout 5 %, explore 5 %, a binding budget); the same strategy in a new SQLite file
and a new PostgreSQL database. The Spark job (``run_strategy_spark``, ``local[2]``) writes the
decisions and their manifest once; then, on each backend, ``spark_load.check_files`` alone (pass
1: digests, every row, the plan's totals, unique unit ids) and the whole ``load_decisions`` in one
committed transaction (pass 1 again, the lock, pass 2 with the inserts: COPY on PostgreSQL, the
driver's executemany on SQLite). The loaded ledger is checked against the output (rows, spend).
``--local`` also times ``run_strategy`` (score, allocate and log, through the same bulk logger)
on SQLite.

Run: ``flock /tmp/liftlab-heavy.lock .venv/bin/python benchmarks/spark_load.py`` (1,000,000
users) or ``--users 100000`` for a quick run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.assignment import machine  # noqa: E402
from benchmarks.support import register_model, scratch_postgres, shop_model  # noqa: E402

ARMS = ["discount_20", "coupon_5"]
KEY = "scale"


def setup_database(url: str, folder: Path, model: tuple[list[str], str], n_users: int):  # type: ignore[no-untyped-def]
    """A migrated database with the catalog, the model run and strategy KEY; its engine."""
    from experiments.db import make_engine, make_session_factory
    from experiments.db.migrate import upgrade
    from experiments.services import catalog, demo_data, strategies

    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        run = register_model(session, folder, *model)
        data = {
            "key": KEY,
            "approved_incentives": ARMS,
            "holdout_share": 0.05,
            "explore_share": 0.05,
            "objective": "revenue",
            "budget": 0.75 * n_users,
            "status": "active",
            "model_run_id": run.id,
            "config": {"calibration": {"discount_20": {"experiment_ate": 0.03}}},
        }
        strategies.create_strategy(session, data, actor="benchmark")
    return engine


def time_load(engine, output: str) -> tuple[float, float, int, float]:  # type: ignore[no-untyped-def]
    """Seconds of pass 1 alone and of the whole committed load; rows and spend logged."""
    from sqlalchemy import func, select

    from experiments.db import Decision, make_session_factory
    from experiments.jobs import spark_load
    from experiments.jobs.spark_output import open_folder, read_manifest

    factory = make_session_factory(engine)
    filesystem, folder = open_folder(output)
    manifest = read_manifest(filesystem, folder, output, "--decisions")
    expect = spark_load.expect_from(manifest, KEY, output, "--decisions")
    started = time.perf_counter()
    spark_load.check_files(filesystem, folder, manifest, expect)
    check_s = time.perf_counter() - started
    started = time.perf_counter()
    with factory.begin() as session:
        loaded = spark_load.load_decisions(session, KEY, output, actor="benchmark")
    load_s = time.perf_counter() - started
    with factory.begin() as session:
        rows, spend = session.execute(
            select(func.count(), func.sum(Decision.expected_cost)).where(
                Decision.batch_run == loaded.batch_run
            )
        ).one()
    return check_s, load_s, int(rows), float(spend)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--local", action="store_true", help="also time run_strategy (SQLite)")
    args = parser.parse_args(argv)
    import pandas as pd

    from experiments.db import make_session_factory
    from experiments.jobs.spark_session import get_session
    from experiments.jobs.spark_strategy import run_strategy_spark
    from experiments.simulation import simulate_shop

    load_before = os.getloadavg()
    lines = [f"### Loading a Spark batch run: {args.users:,} users", ""]
    with tempfile.TemporaryDirectory() as tmp_name, scratch_postgres() as pg_url:
        tmp = Path(tmp_name)
        model = shop_model(  # (features, architecture)
            tmp / "model", ARMS, 5000, representation=(64, 32), head=(32,), max_epochs=3
        )
        population = tmp / "population.parquet"
        simulate_shop(n_users=args.users, seed=5).users.to_parquet(
            population, row_group_size=131_072
        )
        engines = {
            "SQLite": setup_database(
                f"sqlite:///{tmp / 'liftlab.db'}", tmp / "model", model, args.users
            ),
            "PostgreSQL": setup_database(pg_url, tmp / "model", model, args.users),
        }
        os.environ["PYSPARK_PYTHON"] = sys.executable
        spark = get_session(
            "local[2]",
            app_name="liftlab-spark-load",
            conf={
                "spark.sql.shuffle.partitions": "8",
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.executorEnv.OMP_NUM_THREADS": "1",
                "spark.driver.memory": "4g",
            },
        )
        spark.sparkContext.setLogLevel("ERROR")
        output = str(tmp / "decisions")
        started = time.perf_counter()
        with make_session_factory(engines["SQLite"]).begin() as session:
            plan = run_strategy_spark(
                session, KEY, spark, output=output, population=str(population)
            )
        spark_s = time.perf_counter() - started
        spark.stop()
        size = sum(p.stat().st_size for p in Path(output).glob("part-*"))
        lines += [
            f"Spark run (`--engine spark`, local[2], Parquet and manifest written): "
            f"{spark_s:.1f} s; output {size / 1e6:.1f} MB in "
            f"{len(list(Path(output).glob('part-*')))} part files; spend {plan['spend']:,.2f}.",
            "",
            "| backend | checks (pass 1) s | whole load s | users/s | rows | spend equal |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for name, engine in engines.items():
            check_s, load_s, rows, spend = time_load(engine, output)
            same = rows == args.users and abs(spend - plan["spend"]) <= 1e-6 * plan["spend"]
            lines.append(
                f"| {name} | {check_s:.1f} | {load_s:.1f} | {args.users / load_s:,.0f} | "
                f"{rows:,} | {same} |"
            )
        if args.local:
            from experiments.jobs.strategy_run import run_strategy

            frame = pd.read_parquet(population)
            started = time.perf_counter()
            with make_session_factory(engines["SQLite"]).begin() as session:
                run_strategy(session, KEY, frame)
            local_s = time.perf_counter() - started
            lines += ["", f"Local run on SQLite (score, allocate, log): {local_s:.1f} s."]
        for engine in engines.values():
            engine.dispose()
    load_after = os.getloadavg()
    command = " ".join(
        [
            "flock /tmp/liftlab-heavy.lock .venv/bin/python benchmarks/spark_load.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    lines += [
        "",
        f"Machine: {machine()}; load average (1 min) {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after.",
        "",
        f"Command: `{command}`",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
