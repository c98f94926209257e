"""The batch strategy run on Apache Spark: score, price, allocate and log a whole population.

Layer: ``experiments.jobs`` (entry point; pyspark is imported lazily, the ``spark`` extra).
The result is the single-process ``liftlab strategy run``'s, user for user — same arm, bucket
and propensity — for populations that do not fit one machine:

1. read the population (Parquet or a Parquet-backed table), numbered in file order;
2. score it in the single run's chunks with the model broadcast once
   (``experiments.jobs.spark_scoring``), add up the exact calibration means, price every user
   and build its hull; the exact mean cost of each arm completes the serving state, so that
   ``/decide`` scores a unit the run never saw as a single-process plan would; the profit
   frontier is computed on the driver from a uniform sample of the priced users (all of them up
   to ``FRONTIER_USERS``);
3. find lambda by distributed bisection (``experiments.jobs.spark_lambda``), then the fill, the
   drops and the budget checks (``experiments.jobs.spark_allocation``);
4. write the decisions with their propensities as Parquet, sorted by row, with a manifest
   beside them (``experiments.jobs.spark_output``), and record the plan.

The run itself never touches the ``decisions`` table: the Parquet folder is its decision log
(``config["decisions_path"]``). Loading that folder (``experiments.jobs.spark_load``:
``liftlab strategy run --engine spark --load``, or ``liftlab strategy load KEY --decisions DIR``
later) logs the decisions as the strategy's next batch run, as a local run would have logged
them, and they become its current ledger (``experiments.services.strategy_ledger``: what
``/decide`` repeats, the spend summary shows and the budget cap counts). Without the load, the
strategy's batch run number and current ledger stay as they were.

Run it with ``liftlab strategy run KEY --engine spark --population PATH --output PATH [--load]``
or through ``spark-submit`` (``platform/spark/submit-strategy.sh``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from experiments.jobs import spark_allocation as sa
from experiments.jobs.spark_output import (
    build_manifest,
    open_folder,
    spark_plan_config,
    write_manifest,
)
from experiments.jobs.spark_plan import plan_summary, solve_plan
from experiments.jobs.spark_scoring import (
    BATCH,
    cost_units,
    effect_units,
    model_payload,
    price_partition,
    priced_schema,
    score_chunk,
    scored_schema,
    value_cost_rows,
)
from experiments.jobs.spark_session import ROW, get_session, partition_pass, read_population
from experiments.jobs.strategy_run import (
    StrategyInputs,
    calibration_shifts,
    profit_frontier,
    record_plan,
    serving_state,
    strategy_inputs,
)
from experiments.strategy import spend_curve
from experiments.strategy.exact import to_float

FRONTIER_USERS = 200_000  # the frontier's sample: 11 allocations of it run on the driver

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from sqlalchemy.orm import Session


def score_and_price(spark: SparkSession, inputs: StrategyInputs, population: DataFrame):  # type: ignore[no-untyped-def]
    """Per user: value, cost, bucket and hull (persisted), scored in the single run's chunks;
    the scored frame (persisted) and the calibration shifts."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812 - the pyspark convention

    from uplift.trainer import EVAL_CHUNK

    k = len(inputs.arms)
    payload = spark.sparkContext.broadcast(model_payload(inputs.artifact_path))
    chunks = population.select(ROW, "unit_id", *inputs.features).withColumn(
        BATCH, F.expr(f"{ROW} div {EVAL_CHUNK}")
    )
    scored = (
        chunks.groupBy(BATCH)
        .applyInPandas(
            lambda pdf: score_chunk(pdf.drop(columns=[BATCH]), inputs, payload), scored_schema(k)
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    parts = partition_pass(scored, lambda pdf: effect_units(pdf, k))
    n = sum(p["n"] for p in parts)
    if n == 0:
        raise ValueError("the population is empty; give at least one user")
    means = [to_float(sum(p["units"][j] for p in parts), n) for j in range(k)]
    priced = scored.mapInPandas(
        lambda frames: (price_partition(pdf, inputs, means) for pdf in frames), priced_schema(k)
    ).persist(StorageLevel.MEMORY_AND_DISK)
    return priced, scored, calibration_shifts(inputs.calibration_ates, means)


def mean_cost(priced: DataFrame, k: int) -> list[float]:
    """Each arm's exact mean expected spend over the priced users (``strategy_run.mean_costs``)."""
    parts = partition_pass(priced, lambda pdf: cost_units(pdf, k))
    n = sum(p["n"] for p in parts)
    return [to_float(sum(p["units"][j] for p in parts), n) for j in range(k)]


def sampled_frontier(
    priced: DataFrame,
    k: int,
    n: int,
    budget: float,
    max_users: int = FRONTIER_USERS,
    mu: list[float] | None = None,
) -> dict[str, Any] | None:
    """``strategy_run.profit_frontier`` of the ``n`` priced users, from a uniform sample of
    about ``max_users`` of them (all of them when there are no more, which gives the
    single-process frontier): ``{"points", "sample": {"users", "of"}, "spend_curve"}``, None
    for an empty sample. ``spend_curve`` is the plan's spend per user by lambda
    (``experiments.strategy.spend_curve``, with the plan's ``mu``) on the same sample; it goes
    into the serving state, not the frontier.

    The sample is chosen by a hash of the row number, so it does not depend on the partitioning;
    the rows are put back in file order before allocating. It is the one large result this job
    collects on the driver (up to about ``max_users * (2k + 1)`` numbers)."""
    import numpy as np
    from pyspark.sql import functions as F  # noqa: N812 - the pyspark convention

    frame = priced.select(ROW, *[f"v{j}" for j in range(k)], *[f"c{j}" for j in range(k)])
    if n > max_users:
        frame = frame.where(F.pmod(F.xxhash64(ROW), F.lit(n)) < max_users)
    parts = partition_pass(frame, lambda pdf: value_cost_rows(pdf, k))
    rows = np.array([r for p in parts for r in p["row"]], dtype=np.int64)
    if len(rows) == 0:
        return None
    order = np.argsort(rows, kind="stable")
    value = np.array([v for p in parts for v in p["value"]], dtype=np.float64)[order]
    cost = np.array([c for p in parts for c in p["cost"]], dtype=np.float64)[order]
    points = profit_frontier(value, cost, budget, scale=n / len(rows))
    curve = spend_curve(value, cost, mu)
    return {"points": points, "sample": {"users": len(rows), "of": n}, "spend_curve": curve}


def allocate_priced(priced: DataFrame, inputs: StrategyInputs) -> tuple[DataFrame, dict[str, Any]]:
    """``allocate`` on the priced users: the decisions frame (persisted) and the plan summary."""
    from pyspark import StorageLevel

    plan = solve_plan(
        lambda fn: partition_pass(priced, fn),
        priced.rdd.getNumPartitions(),
        len(inputs.arms),
        inputs.budget,
    )
    holdout, explore, arms = inputs.holdout, inputs.explore, list(inputs.arms)
    decisions = priced.mapInPandas(
        lambda frames: (
            sa.decide_frame(pdf, arms, plan.lam, plan.overrides, holdout, explore) for pdf in frames
        ),
        sa.decisions_schema(),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    parts = partition_pass(decisions, lambda pdf: sa.summary_stats(pdf, len(arms)))
    return decisions, plan_summary(plan, parts, arms, inputs.budget)


def decide_population(
    spark: SparkSession, inputs: StrategyInputs, population: DataFrame
) -> tuple[DataFrame, dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """Decisions (persisted frame: row, unit_id, arm, incentive, bucket, propensity, expected
    value and cost), the plan summary, the serving state (``strategy_run.serving_state``) and
    the sampled profit frontier (``sampled_frontier``) for ``population`` (with its ``row``
    numbering)."""
    priced, scored, shifts = score_and_price(spark, inputs, population)
    decisions, summary = allocate_priced(priced, inputs)
    k = len(inputs.arms)
    n = sum(summary["count_by_bucket"])
    frontier = sampled_frontier(priced, k, n, inputs.budget, mu=summary["mu"])
    curve = frontier.pop("spend_curve") if frontier is not None else None
    online = serving_state(inputs, shifts, mean_cost(priced, k), curve)
    scored.unpersist()
    priced.unpersist()
    return decisions, summary, online, frontier


def write_decisions(decisions: DataFrame, inputs: StrategyInputs, output: str) -> None:
    """The decision log as Parquet, sorted by row (overwriting ``output``; columns
    ``spark_output.COLUMNS``)."""
    from pyspark.sql import functions as F  # noqa: N812 - the pyspark convention

    incentive_id = F.lit(None).cast("long")
    for j, ident in enumerate(inputs.incentive_ids):
        incentive_id = F.when(F.col("arm") == j, F.lit(ident).cast("long")).otherwise(incentive_id)
    decisions.select(
        ROW,
        "unit_id",
        "incentive",
        incentive_id.alias("incentive_id"),
        "bucket",
        "propensity",
        "expected_value",
        "expected_cost",
        F.lit(inputs.key).alias("strategy"),
        F.lit(inputs.model_run_id).cast("long").alias("model_run_id"),
    ).orderBy(ROW).write.mode("overwrite").parquet(output)


def run_strategy_spark(
    session: Session,
    key: str,
    spark: SparkSession,
    *,
    output: str,
    population: str | None = None,
    table: str | None = None,
    margin_rate: float = 0.4,
    actor: str = "job",
) -> dict[str, Any]:
    """``run_strategy`` on Spark: decisions to ``output`` (Parquet and its manifest), the plan
    into the strategy. ``spark_load.load_decisions`` makes them the current ledger."""
    from experiments.services.strategies import get_strategy
    from experiments.services.strategy_ledger import lock_ledger

    open_folder(output)  # an output pyarrow cannot open fails now, not after the run
    frame = read_population(spark, population, table)
    columns = [c for c in frame.columns if c != ROW]
    inputs, _ = strategy_inputs(session, key, columns, margin_rate=margin_rate)
    decisions, summary, online, frontier = decide_population(spark, inputs, frame)
    write_decisions(decisions, inputs, output)
    users = sum(summary["count_by_bucket"])
    decisions.unpersist()
    strategy = get_strategy(session, key)
    lock_ledger(session, strategy)  # reloads the config: what was written during the job is kept
    manifest = build_manifest(
        inputs,
        strategy_id=strategy.id,
        approved=list(strategy.approved_incentives),
        plan=summary,
        rows=users,
        online=online,
        frontier=frontier,
    )
    write_manifest(output, manifest)
    config = spark_plan_config(
        strategy.config,
        summary,
        model_run_id=inputs.model_run_id,
        margin_rate=margin_rate,
        output=output,
        online=online,
        frontier=frontier,
    )
    record_plan(session, strategy, config, users=users, actor=actor)
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("key", help="strategy key")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--population", help="Parquet file or folder with unit_id + features")
    source.add_argument("--table", help="a Parquet-backed Spark table instead")
    parser.add_argument("--output", required=True, help="folder for the decisions (Parquet)")
    parser.add_argument("--margin-rate", type=float, default=0.4)
    parser.add_argument(
        "--load",
        action="store_true",
        help="log the decisions as the strategy's next batch run (its current ledger)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: ``spark_strategy.py KEY --population PATH --output PATH
    [--load]``.

    The database is ``LIFTLAB_DATABASE_URL`` (the strategy is read and its plan recorded there;
    with ``--load`` the decisions are logged there too, in the same transaction).
    """
    from experiments.db import make_engine, make_session_factory
    from experiments.jobs.spark_load import load_decisions
    from experiments.settings import load_settings

    args = parse_args(argv)
    spark = get_session(app_name=f"liftlab-strategy-{args.key}")
    engine = make_engine(load_settings().database_url)
    with make_session_factory(engine).begin() as session:
        plan = run_strategy_spark(
            session,
            args.key,
            spark,
            output=args.output,
            population=args.population,
            table=args.table,
            margin_rate=args.margin_rate,
            actor="spark",
        )
        if args.load:
            loaded = load_decisions(
                session, args.key, args.output, actor="spark", option="--output"
            )
    engine.dispose()
    print(f"lambda {plan['lambda']:.6g}; spend {plan['spend']:,.2f} of {plan['budget']:,.2f}")
    if args.load:
        print(f"loaded {loaded.users:,} decisions as batch run {loaded.batch_run}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
