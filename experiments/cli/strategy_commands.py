"""``liftlab models`` and ``liftlab strategy``: train uplift models, run budgeted strategies."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.cli.context import FORMAT_OPTION, emit, transaction
from experiments.cli.uplift_commands import POPULATION, list_models, os_user, run_training


@click.group()
def models() -> None:
    """Train and list uplift models (the same code as `liftlab uplift train` and `uplift list`)."""


@models.command()
@click.argument("experiment")
@POPULATION
@click.option("--epochs", type=click.IntRange(1, 1000), default=40, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train(experiment: str, population: Path, epochs: int, seed: int) -> None:
    """Train the uplift model on EXPERIMENT's randomized units and record the run."""
    summary = run_training(
        experiment, population, seed=seed, params={"max_epochs": epochs}, created_by=os_user()
    )
    click.echo(
        f"model run {summary['id']}: {summary['status']}; "
        f"Qini by arm: {summary['metrics'].get('qini')}"
    )


models.add_command(list_models)


@click.group()
def strategy() -> None:
    """Configure and run budgeted incentive strategies."""


@strategy.command("list")
@FORMAT_OPTION
def list_strategies(output_format: str) -> None:
    """List strategies."""
    from experiments.services import strategies

    with transaction() as session:
        rows = [strategies.snapshot(session, s) for s in strategies.list_strategies(session)]
    emit(
        rows,
        output_format,
        [
            "key",
            "status",
            "objective",
            "budget",
            "approved_incentives",
            "fallback",
            "holdout_share",
            "explore_share",
        ],
    )


@strategy.command("set")
@click.argument("key")
@click.option("--budget", type=float)
@click.option("--holdout", "holdout_share", type=float)
@click.option("--explore", "explore_share", type=float)
@click.option(
    "--period-days",
    "budget_period_days",
    type=int,
    help="Days the budget covers (1-366; a paced strategy spreads it over them).",
)
@click.option("--objective", type=click.Choice(["profit", "revenue", "orders"]))
@click.option("--status", type=click.Choice(["draft", "active", "paused"]))
def set_strategy(key: str, **changes: object) -> None:
    """Change a strategy's budget, budget period, shares, objective or status."""
    from experiments.services import strategies

    data = {k: v for k, v in changes.items() if v is not None}
    if not data:
        raise click.UsageError("nothing to change; give at least one option")
    with transaction() as session:
        strategies.update_strategy(session, key, data, actor="cli")
    click.echo(f"updated {key}: {data}")


@strategy.command()
@click.argument("key")
@click.option(
    "--population",
    type=click.Path(path_type=Path),
    help="Parquet file (or, with --engine spark, folder) with unit_id and the user features.",
)
@click.option(
    "--margin-rate",
    type=click.FloatRange(0, 1),
    default=0.4,
    show_default=True,
    help="Contribution margin on gross order value.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="local: this process, decisions into the database; spark: Apache Spark, decisions "
    "as Parquet into --output (same decisions, user for user).",
)
@click.option("--output", help="Spark: folder for the decisions (Parquet).")
@click.option("--table", help="Spark: a Parquet-backed table instead of --population.")
@click.option("--spark-master", help="Spark: master URL, e.g. local[4] (default: spark-submit's).")
@click.option(
    "--load",
    is_flag=True,
    help="Spark: then log the decisions into the database as the strategy's next batch run, "
    "its current ledger (as `liftlab strategy load` does), in the same transaction.",
)
def run(
    key: str,
    population: Path | None,
    margin_rate: float,
    engine: str,
    output: str | None,
    table: str | None,
    spark_master: str | None,
    load: bool,
) -> None:
    """Decide for a whole population in batch and log every decision."""
    if engine == "spark":
        plan = _run_on_spark(key, population, table, output, margin_rate, spark_master, load)
    else:
        if population is None or table or output or load:
            raise click.UsageError(
                "--engine local takes --population FILE (--table, --output and --load are for "
                "spark)"
            )
        from experiments.jobs.strategy_run import run_strategy
        from experiments.jobs.training_data import load_population

        with transaction() as session:
            plan = run_strategy(
                session, key, load_population(population), margin_rate=margin_rate, actor="cli"
            )
    click.echo(
        f"lambda {plan['lambda']:.4g}; spend {plan['spend']:,.2f} of {plan['budget']:,.2f}; "
        f"value {plan['value']:,.2f}; duality gap {plan['gap']:.3g}"
    )
    for arm, users, spend in zip(
        plan["arms"], plan["count_by_arm"], plan["spend_by_arm"], strict=True
    ):
        click.echo(f"  {arm}: {users:,} users, spend {spend:,.2f}")


def _run_on_spark(key, population, table, output, margin_rate, master, load):  # type: ignore[no-untyped-def]
    if (population is None) == (table is None) or not output:
        raise click.UsageError("--engine spark takes --output and one of --population, --table")
    if population is not None and not population.exists():
        raise click.BadParameter(f"{population} not found", param_hint="--population")
    try:
        from experiments.jobs.spark_session import get_session
        from experiments.jobs.spark_strategy import run_strategy_spark

        spark = get_session(master, app_name=f"liftlab-strategy-{key}")
    except ImportError as exc:
        raise click.ClickException(str(exc)) from exc
    with transaction() as session:
        plan = run_strategy_spark(
            session,
            key,
            spark,
            output=output,
            population=None if population is None else str(population),
            table=table,
            margin_rate=margin_rate,
            actor="cli",
        )
        if load:
            from experiments.jobs.spark_load import load_decisions

            loaded = load_decisions(session, key, output, actor="cli", option="--output")
    click.echo(f"decisions written to {output}")
    if load:
        _echo_loaded(loaded, output)
    return plan


def _echo_loaded(loaded, path: str) -> None:  # type: ignore[no-untyped-def]
    click.echo(
        f"loaded {loaded.users:,} decisions from {path} as batch run {loaded.batch_run}, the "
        f"current ledger; planned spend {loaded.spend:,.2f}"
    )


@strategy.command("load")
@click.argument("key")
@click.option(
    "--decisions",
    "path",
    required=True,
    help="Folder written by `liftlab strategy run KEY --engine spark --output DIR`.",
)
def load_spark_decisions(key: str, path: str) -> None:
    """Log a Spark run's decisions (Parquet and its manifest) as KEY's next batch run.

    They become the current ledger: /decide repeats them, the budget cap counts them, `liftlab
    strategy ledger` shows them. The folder is checked first (files, rows, the plan, and that
    the strategy is configured as it was planned); nothing is written unless all of it checks.
    """
    from experiments.jobs.spark_load import load_decisions

    with transaction() as session:
        loaded = load_decisions(session, key, path, actor="cli", option="--decisions")
    _echo_loaded(loaded, path)


@strategy.command()
@click.argument("key")
@click.option(
    "--run",
    "batch_run",
    type=click.IntRange(0),
    help="An earlier batch run's ledger (default: the current one, the latest run's decisions "
    "plus the online decisions after it).",
)
@FORMAT_OPTION
def ledger(key: str, batch_run: int | None, output_format: str) -> None:
    """Planned spend by incentive and bucket, from the decision log."""
    from experiments.services import strategies

    with transaction() as session:
        summary = strategies.spend_summary(session, key, batch_run)
    emit(
        summary["ledger"],
        output_format,
        ["incentive", "bucket", "users", "expected_cost", "expected_value"],
    )
    if output_format == "table":
        run = f"batch run {summary['batch_run']}" + ("" if summary["current"] else " (superseded)")
        click.echo(
            f"\n{run}: planned spend {summary['planned_spend']:,.2f} of budget "
            f"{summary['budget']:,.2f}"
        )
        if summary["variant_spend"]:
            click.echo(
                f"experiment variants drew {summary['variant_spend']:,.2f} more in this run "
                "(counted by the budget cap)"
            )


@strategy.command()
@click.argument("key")
@click.argument("unit_id")
@FORMAT_OPTION
def history(key: str, unit_id: str, output_format: str) -> None:
    """Every decision of strategy KEY for UNIT_ID, newest first: all batch runs, online and
    through experiment variants (superseded ones included)."""
    from sqlalchemy import select

    from experiments.db import Experiment, Incentive
    from experiments.services import strategies
    from experiments.services.strategy_ledger import unit_history

    with transaction() as session:
        strategy = strategies.get_strategy(session, key)
        names = {i.id: i.key for i in session.scalars(select(Incentive))}
        experiments = {e.id: e.key for e in session.scalars(select(Experiment))}
        rows = [
            {
                "decided_at": d.decided_at.isoformat(timespec="seconds"),
                "decision_id": d.decision_id,
                "batch_run": d.batch_run,
                "current": d.experiment_id is None and d.batch_run == strategy.batch_run,
                "experiment": experiments.get(d.experiment_id) if d.experiment_id else None,
                "source": (d.context or {}).get("source", "batch"),
                "incentive": names.get(d.incentive_id, "none") if d.incentive_id else "none",
                "bucket": d.bucket,
                "propensity": d.propensity,
                "expected_cost": d.expected_cost,
            }
            for d in unit_history(session, strategy, unit_id)
        ]
    emit(rows, output_format, list(rows[0]) if rows else ["decided_at"])


@strategy.command("experiment")
@click.argument("key")
@click.option("--strategy", "strategy_key", required=True, help="The strategy to test.")
@click.option(
    "--weights",
    default="0.34,0.33,0.33",
    show_default=True,
    help="Shares of holdout, winner for everyone and strategy, comma-separated (sum 1).",
)
@click.option("--name", help="Experiment name (default: from the strategy).")
def strategy_experiment(key: str, strategy_key: str, weights: str, name: str | None) -> None:
    """Create draft experiment KEY: the strategy vs its winner for everyone vs no incentive.

    Start it with `liftlab experiments start KEY`; apps then ask POST /api/v1/decide with
    {"experiment": KEY, "unit_id": ...}; its results are the experiment's ordinary results.
    """
    from experiments.services.strategy_experiments import create_strategy_experiment

    try:
        shares = [float(w) for w in weights.split(",")]
    except ValueError:
        raise click.BadParameter(
            "give three numbers such as 0.34,0.33,0.33", param_hint="--weights"
        ) from None
    with transaction() as session:
        experiment = create_strategy_experiment(
            session, key, strategy_key, actor="cli", name=name, weights=shares
        )
        variants = [(v.key, v.weight) for v in experiment.variants]
    click.echo(f"created draft experiment {key}: " + ", ".join(f"{k} {w:g}" for k, w in variants))


@strategy.command("served")
@click.argument("experiment")
@FORMAT_OPTION
def served(experiment: str, output_format: str) -> None:
    """Decisions served through EXPERIMENT, by variant, incentive and bucket."""
    from experiments.services.strategy_experiments import decision_summary

    with transaction() as session:
        summary = decision_summary(session, experiment)
    emit(
        summary["decisions"],
        output_format,
        ["variant", "incentive", "bucket", "units", "expected_cost"],
    )
