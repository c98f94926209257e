"""The Spark strategy job in local mode decides exactly like the single-process strategy run.

Reference: the single-process path (``experiments.jobs.strategy_run``: the functions that
``run_strategy`` chains, and ``run_strategy`` itself with its database log). Identity means the
same arm, bucket and propensity for every user, and the same lambda and spend; loaded into the
database (``spark_load``, ``--load``), the Spark run's decisions are the rows ``run_strategy``
logs, column for column and in the same order.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.jobs.strategy_run import (
    SPARK_PLAN_KEYS,
    StrategyInputs,
    allocate_population,
    calibrate,
    calibration_shifts,
    mean_effects,
    population_economics,
    profit_frontier,
    raw_outcomes,
)
from experiments.strategy.economics import fixed_coupon, percent_discount
from experiments.strategy.spend_curve import check_curve, spend_curve

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PANDAS_NOTICE = "ignore:PySpark does not yet fully support pandas:FutureWarning"
pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings(PANDAS_NOTICE)]
ARMS = ["discount_20", "coupon_5"]


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return 'pyspark is not installed (pip install -e ".[spark]")'
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Spark needs Java 17+: no java on the PATH and no JAVA_HOME"
    return None


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    reason = _spark_missing()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI must run the Spark tests)")
        pytest.skip(reason)
    from experiments.jobs.spark_session import get_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = get_session(
        "local[2]",
        app_name="liftlab-test",
        conf={
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.adaptive.coalescePartitions.enabled": "false",  # keep 4 partitions
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.executorEnv.OMP_NUM_THREADS": "1",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def population_folder(tmp_path_factory, n: int, seed: int):  # type: ignore[no-untyped-def]
    """``n`` simulated users in three Parquet files of different sizes (file order matters)."""
    from experiments.simulation import simulate_shop

    users = simulate_shop(n_users=n, seed=seed).users
    folder = tmp_path_factory.mktemp("population") / "users"
    folder.mkdir()
    cuts = [0, n // 2, n // 2 + n // 5, n]
    for i in range(3):
        part = users.iloc[cuts[i] : cuts[i + 1]]
        part.to_parquet(folder / f"part-{i}.parquet", row_group_size=30_000 + 7_000 * i)
    return folder


def single_process(inputs: StrategyInputs, population: pd.DataFrame):  # type: ignore[no-untyped-def]
    """``run_strategy``'s steps on one machine (``liftlab strategy run`` without the log)."""
    from uplift import UpliftModel

    model = UpliftModel.load(inputs.artifact_path)
    p, revenue = raw_outcomes(model, population[inputs.features], inputs.arms)
    p, order_value = calibrate(
        p, revenue, calibration_shifts(inputs.calibration_ates, mean_effects(p))
    )
    economics = population_economics(inputs, p, order_value)
    return allocate_population(
        inputs, economics.value, economics.cost, population["unit_id"].astype(str).to_numpy()
    )


def test_spark_decides_like_the_single_process_run(spark, shop_model, tmp_path_factory):  # type: ignore[no-untyped-def]
    from experiments.jobs.spark_session import read_population
    from experiments.jobs.spark_strategy import decide_population

    n_users = 200_000
    folder, features = shop_model
    path = population_folder(tmp_path_factory, n_users, seed=5)
    population = pd.read_parquet(path)
    inputs = StrategyInputs(
        key="spark-test",
        model_run_id=1,
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
        salt="strategy:spark-test",
    )
    ref = single_process(inputs, population)
    assert ref.lambda_ > 0 and ref.spend > 0.999 * inputs.budget  # the budget binds

    decisions, summary, _, _ = decide_population(spark, inputs, read_population(spark, str(path)))
    written = tmp_path_factory.mktemp("decisions") / "all"
    decisions.drop("dual_term").write.parquet(str(written))  # (toPandas warns under pandas 3)
    decisions.unpersist()
    got = pd.read_parquet(written).sort_values("row").reset_index(drop=True)

    assert got["row"].tolist() == list(range(n_users))
    assert (got["unit_id"].to_numpy() == population["unit_id"].astype(str).to_numpy()).all()
    np.testing.assert_array_equal(got["arm"].to_numpy(), ref.arm)
    np.testing.assert_array_equal(got["bucket"].to_numpy(), ref.bucket)
    np.testing.assert_array_equal(got["propensity"].to_numpy(), ref.propensity)
    np.testing.assert_array_equal(got["expected_cost"].to_numpy(), ref.expected_cost)
    np.testing.assert_array_equal(got["expected_value"].to_numpy(), ref.expected_value)
    expected = ref.summary()
    for key in ("lambda", "spend", "budget", "count_by_arm", "count_by_bucket"):
        assert summary[key] == expected[key], key
    for key in ("value", "dual_bound", "gap"):
        assert summary[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-6), key
    assert set(np.unique(got["bucket"])) == {"holdout", "explore", "exploit"}
    assert got["incentive"].isna().sum() == (ref.arm < 0).sum()


def test_the_sampled_frontier_estimates_the_whole_populations(spark):  # type: ignore[no-untyped-def]
    """Above FRONTIER_USERS the frontier comes from a hashed uniform sample, scaled up: close to
    the exact one, the same whatever the partitioning; at or below it, the exact frontier."""
    from experiments.jobs.spark_strategy import sampled_frontier

    n, k = 120_000, 2
    rng = np.random.default_rng(11)
    cost = rng.gamma(2.0, 1.5, (n, k)) * np.array([1.0, 2.0])
    value = cost * rng.normal([1.3, 1.1], 0.6, (n, k))  # a profitable minority of each arm
    columns = {"row": np.arange(n)} | {f"v{j}": value[:, j] for j in range(k)}
    columns |= {f"c{j}": cost[:, j] for j in range(k)}
    priced = spark.createDataFrame(pd.DataFrame(columns)).repartition(4)
    budget = 0.2 * float(cost.max(axis=1).sum())
    exact = profit_frontier(value, cost, budget)

    whole = sampled_frontier(priced, k, n, budget, max_users=n)
    assert whole["sample"] == {"users": n, "of": n}
    assert whole["spend_curve"] == spend_curve(value, cost)  # the whole population's, exactly
    for got, want in zip(whole["points"], exact, strict=True):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-6)

    sampled = sampled_frontier(priced, k, n, budget, max_users=20_000)
    assert sampled["sample"]["of"] == n and abs(sampled["sample"]["users"] - 20_000) < 600  # 4 s.d.
    top = exact[-1]["value"]
    for got, want in zip(sampled["points"], exact, strict=True):
        assert got["budget"] == pytest.approx(want["budget"], rel=0.05)
        assert got["value"] == pytest.approx(want["value"], abs=0.03 * top)
        assert got["spend"] == pytest.approx(want["spend"], rel=0.05, abs=0.01 * budget)
    again = sampled_frontier(priced.repartition(7), k, n, budget, max_users=20_000)
    assert again == sampled  # the sample is a hash of the row number, not of the partitioning


def spark_db_strategy(online_strategy, session, key: str = "spark-db"):  # type: ignore[no-untyped-def]
    """An active strategy scored by the shop model, from the database, budget binding (the
    shared ``online_strategy`` factory with this file's arms); returns its ModelRun."""
    from experiments.db import ModelRun

    strategy = online_strategy(
        session,
        key=key,
        budget=15_000.0,
        approved_incentives=ARMS,
        holdout_share=0.05,
        config={"calibration": {"discount_20": {"experiment_ate": 0.03}}},
    )
    return session.get(ModelRun, strategy.model_run_id)


def logged_rows(session, strategy_id: int, batch_run: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    """A batch run's decisions as stored, in the order they were logged."""
    from sqlalchemy import select

    from experiments.db import Decision

    session.expire_all()
    query = (
        select(Decision)
        .where(Decision.strategy_id == strategy_id, Decision.batch_run == batch_run)
        .order_by(Decision.id)
    )
    return [
        (
            d.unit_id,
            d.incentive_id,
            d.bucket,
            d.propensity,
            d.expected_value,
            d.expected_cost,
            d.context,
            d.experiment_id,
        )
        for d in session.scalars(query)
    ]


def test_the_spark_run_logs_what_liftlab_strategy_run_logs(
    spark, online_strategy, db_session, tmp_path_factory, features_of
):  # type: ignore[no-untyped-def]
    """Both backends: the strategy, model run and catalog come from the database; the Spark
    run's Parquet log, loaded as a batch run, is the single run's decision log row for row."""
    import json

    from sqlalchemy import select

    from experiments.db import Decision, Incentive
    from experiments.jobs.spark_load import load_decisions
    from experiments.jobs.spark_output import MANIFEST
    from experiments.jobs.spark_strategy import run_strategy_spark
    from experiments.jobs.strategy_run import run_strategy
    from experiments.services import strategies
    from experiments.services.strategy_ledger import cap_spend, latest_decision

    run = spark_db_strategy(online_strategy, db_session)
    path = population_folder(tmp_path_factory, 20_000, seed=6)
    output = str(tmp_path_factory.mktemp("decisions") / "spark-db")
    plan_spark = run_strategy_spark(
        db_session, "spark-db", spark, output=output, population=str(path)
    )
    strategy = strategies.get_strategy(db_session, "spark-db")
    assert strategy.config["engine"] == "spark" and strategy.config["decisions_path"] == output
    # the profit frontier, from all 20,000 users (fewer than FRONTIER_USERS): no sampling
    spark_frontier = strategy.config["frontier"]
    assert strategy.config["frontier_sample"] == {"users": 20_000, "of": 20_000}
    assert len(spark_frontier) == 11 and spark_frontier[0]["value"] == 0.0
    # the Parquet folder is the Spark run's log: the table and the ledger's run are untouched
    assert strategy.batch_run == 0
    assert (
        db_session.scalars(select(Decision).where(Decision.strategy_id == strategy.id)).all() == []
    )
    manifest = json.loads((Path(output) / MANIFEST).read_text())
    spark_online = strategy.config["online"]  # the serving state: in the plan and the manifest
    assert manifest["online"] == spark_online and spark_online["model_run_id"] == run.id
    assert check_curve(spark_online["spend_curve"])  # daily pacing reads its lambdas off it
    assert manifest["frontier"]["points"] == spark_frontier
    assert manifest["strategy"] == {"key": "spark-db", "id": strategy.id}
    assert manifest["rows"] == 20_000 and manifest["plan"]["lambda"] == plan_spark["lambda"]
    written = pd.read_parquet(output)  # the part files in name order: sorted by row
    assert written["row"].tolist() == list(range(20_000))

    loaded = load_decisions(db_session, "spark-db", output, actor="test")
    assert (loaded.batch_run, loaded.users, strategy.batch_run) == (1, 20_000, 1)
    spark_rows = logged_rows(db_session, strategy.id, 1)
    units = written["unit_id"].tolist()
    assert [r[0] for r in spark_rows] == units
    for unit in units[:20]:  # /decide repeats the loaded decisions
        served = strategies.decide(db_session, "spark-db", unit)
        assert served.decision_id == latest_decision(db_session, strategy, unit).decision_id
        assert served.batch_run == 1 and served.context["source"] == "batch"
    assert cap_spend(db_session, strategy) == pytest.approx(plan_spark["spend"], rel=1e-12)
    assert strategies.spend_summary(db_session, "spark-db")["planned_spend"] == pytest.approx(
        plan_spark["spend"], rel=1e-12
    )
    # a unit the Spark run never saw, with features: scored online by the Spark plan
    assert strategy.config["online"] == spark_online  # the load keeps the manifest's
    features = features_of(pd.read_parquet(path), 0, spark_online["features"])
    newcomer = strategies.decide(db_session, "spark-db", "after-the-spark-run", features)
    assert newcomer.context["source"] == "online-model", newcomer.context
    assert newcomer.context["model_run_id"] == run.id and newcomer.batch_run == 1

    plan_single = run_strategy(db_session, "spark-db", pd.read_parquet(path))
    assert strategy.batch_run == 2
    # the single-process run records the same serving state, float for float
    assert strategy.config["online"] == spark_online
    # and the same frontier; the Spark run's own keys are gone from the plan
    for got, want in zip(strategy.config["frontier"], spark_frontier, strict=True):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9)
    assert not set(SPARK_PLAN_KEYS) & set(strategy.config)
    # user for user and column for column (context included), in the same order
    assert logged_rows(db_session, strategy.id, 2) == spark_rows
    assert spark_rows[0][6] == {"source": "batch", "model_run_id": run.id}

    keys = {i.id: i.key for i in db_session.scalars(select(Incentive))}
    logged = pd.DataFrame(
        [(r[0], keys.get(r[1]), r[2], r[3], r[5]) for r in logged_rows(db_session, strategy.id, 2)],
        columns=["unit_id", "incentive", "bucket", "propensity", "expected_cost"],
    )
    assert len(written) == len(logged) == 20_000
    both = logged.merge(written, on="unit_id", suffixes=("_single", "_spark"), validate="1:1")
    for column in ("incentive", "bucket", "propensity", "expected_cost"):
        single, spread = both[f"{column}_single"], both[f"{column}_spark"]
        assert ((single == spread) | (single.isna() & spread.isna())).all(), column
    assert set(written["strategy"]) == {"spark-db"} and set(written["model_run_id"]) == {run.id}
    for key in ("lambda", "spend", "count_by_arm", "count_by_bucket"):
        assert plan_spark[key] == plan_single[key], key
    assert plan_single["lambda"] > 0  # the budget binds


def test_the_cli_runs_on_spark_and_loads_the_ledger(
    spark, online_strategy, run, db_url, tmp_path_factory
):  # type: ignore[no-untyped-def]
    """``liftlab strategy run --engine spark --load`` in one transaction; the ledger shows it."""
    import json

    from experiments.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        spark_db_strategy(online_strategy, session, key="spark-cli")
    engine.dispose()
    path = population_folder(tmp_path_factory, 5_000, seed=9)
    output = str(tmp_path_factory.mktemp("decisions") / "spark-cli")
    args = ["strategy", "run", "spark-cli", "--engine", "spark", "--population", str(path)]
    result = run(*args, "--output", output, "--load")
    assert result.exit_code == 0, result.output
    assert f"loaded 5,000 decisions from {output} as batch run 1" in result.output
    rows = json.loads(run("strategy", "ledger", "spark-cli", "--format", "json").output)
    assert sum(r["users"] for r in rows) == 5_000
    written = pd.read_parquet(output)
    assert sum(r["expected_cost"] for r in rows) == pytest.approx(
        written["expected_cost"].sum(), rel=1e-12
    )
    again = run("strategy", "load", "spark-cli", "--decisions", output)
    assert again.exit_code == 1 and "current ledger already (batch run 1)" in again.output
