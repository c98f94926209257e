"""The Spark strategy job in local mode decides exactly like the single-process strategy run.

Reference: the single-process path (``experiments.jobs.strategy_run``: the functions that
``run_strategy`` chains, and ``run_strategy`` itself with its database log). Identity means the
same arm, bucket and propensity for every user, and the same lambda and spend.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from experiments.jobs.strategy_run import (
    StrategyInputs,
    allocate_population,
    calibrate,
    calibration_shifts,
    mean_effects,
    population_economics,
    raw_outcomes,
)
from experiments.strategy.economics import fixed_coupon, percent_discount

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

    decisions, summary = decide_population(spark, inputs, read_population(spark, str(path)))
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


def test_the_spark_run_logs_what_liftlab_strategy_run_logs(
    spark, shop_model, db_session, tmp_path_factory
):  # type: ignore[no-untyped-def]
    """Both backends: the strategy, model run and catalog come from the database; the single
    run's decision table and the Spark run's Parquet log agree user for user."""
    from sqlalchemy import select

    from experiments.db import Decision, Incentive, ModelRun
    from experiments.jobs.spark_strategy import run_strategy_spark
    from experiments.jobs.strategy_run import run_strategy
    from experiments.services import catalog, demo_data, strategies

    folder, features = shop_model
    path = population_folder(tmp_path_factory, 20_000, seed=6)
    catalog.ensure_defaults(db_session, demo_data.default_incentive_specs())
    run = ModelRun(
        architecture="dragonnet",
        status="succeeded",
        artifact_path=str(folder),
        metrics={"features": features},
    )
    db_session.add(run)
    db_session.flush()
    strategies.create_strategy(
        db_session,
        {
            "key": "spark-db",
            "budget": 15_000.0,
            "objective": "revenue",
            "approved_incentives": ARMS,
            "holdout_share": 0.05,
            "explore_share": 0.05,
            "model_run_id": run.id,
            "config": {"calibration": {"discount_20": {"experiment_ate": 0.03}}},
        },
        actor="test",
    )
    output = str(tmp_path_factory.mktemp("decisions") / "spark-db")
    plan_spark = run_strategy_spark(
        db_session, "spark-db", spark, output=output, population=str(path)
    )
    strategy = strategies.get_strategy(db_session, "spark-db")
    assert strategy.config["engine"] == "spark" and strategy.config["decisions_path"] == output
    assert "frontier" not in strategy.config
    # the Parquet folder is the Spark run's log: the table and the ledger's run are untouched
    assert strategy.batch_run == 0
    assert (
        db_session.scalars(select(Decision).where(Decision.strategy_id == strategy.id)).all() == []
    )
    plan_single = run_strategy(db_session, "spark-db", pd.read_parquet(path))
    assert strategy.batch_run == 1

    keys = {i.id: i.key for i in db_session.scalars(select(Incentive))}
    logged = pd.DataFrame(
        [
            (d.unit_id, keys.get(d.incentive_id), d.bucket, d.propensity, d.expected_cost)
            for d in db_session.scalars(select(Decision).where(Decision.strategy_id == strategy.id))
        ],
        columns=["unit_id", "incentive", "bucket", "propensity", "expected_cost"],
    )
    written = pd.read_parquet(output)
    assert len(written) == len(logged) == 20_000
    both = logged.merge(written, on="unit_id", suffixes=("_single", "_spark"), validate="1:1")
    for column in ("incentive", "bucket", "propensity", "expected_cost"):
        single, spread = both[f"{column}_single"], both[f"{column}_spark"]
        assert ((single == spread) | (single.isna() & spread.isna())).all(), column
    assert set(written["strategy"]) == {"spark-db"} and set(written["model_run_id"]) == {run.id}
    for key in ("lambda", "spend", "count_by_arm", "count_by_bucket"):
        assert plan_spark[key] == plan_single[key], key
    assert plan_single["lambda"] > 0  # the budget binds
