"""``liftlab models`` and ``liftlab strategy``: train uplift models, run budgeted strategies."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.cli.context import FORMAT_OPTION, emit, settings, transaction

POPULATION = click.option(
    "--population",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parquet file with unit_id and the user features.",
)


@click.group()
def models() -> None:
    """Train and list uplift models."""


@models.command()
@click.argument("experiment")
@POPULATION
@click.option("--epochs", type=click.IntRange(1, 1000), default=40, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train(experiment: str, population: Path, epochs: int, seed: int) -> None:
    """Train the uplift model on EXPERIMENT's randomized units and record the run."""
    from experiments.jobs.train import train_on_experiment
    from experiments.jobs.training_data import load_population

    config = settings()
    with transaction() as session:
        run = train_on_experiment(
            session,
            experiment,
            load_population(population),
            config.artifact_dir,
            params={"max_epochs": epochs},
            seed=seed,
        )
        click.echo(f"model run {run.id}: {run.status}; Qini by arm: {run.metrics.get('qini')}")


@models.command("list")
@FORMAT_OPTION
def list_models(output_format: str) -> None:
    """List model runs."""
    from sqlalchemy import select

    from experiments.db import ModelRun

    with transaction() as session:
        rows = [
            {
                "id": r.id,
                "experiment_id": r.experiment_id,
                "architecture": r.architecture,
                "status": r.status,
                "promoted": r.promoted,
                "qini": r.metrics.get("qini"),
                "created_at": r.created_at,
            }
            for r in session.scalars(select(ModelRun).order_by(ModelRun.id.desc()))
        ]
    emit(
        rows,
        output_format,
        ["id", "experiment_id", "architecture", "status", "promoted", "qini", "created_at"],
    )


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
@click.option("--objective", type=click.Choice(["profit", "revenue", "orders"]))
@click.option("--status", type=click.Choice(["draft", "active", "paused"]))
def set_strategy(key: str, **changes: object) -> None:
    """Change a strategy's budget, shares, objective or status."""
    from experiments.services import strategies

    data = {k: v for k, v in changes.items() if v is not None}
    if not data:
        raise click.UsageError("nothing to change; give at least one option")
    with transaction() as session:
        strategies.update_strategy(session, key, data, actor="cli")
    click.echo(f"updated {key}: {data}")


@strategy.command()
@click.argument("key")
@POPULATION
@click.option(
    "--margin-rate",
    type=click.FloatRange(0, 1),
    default=0.4,
    show_default=True,
    help="Contribution margin on gross order value.",
)
def run(key: str, population: Path, margin_rate: float) -> None:
    """Decide for a whole population in batch and log every decision."""
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


@strategy.command()
@click.argument("key")
@FORMAT_OPTION
def ledger(key: str, output_format: str) -> None:
    """Planned spend by incentive and bucket, from the decision log."""
    from experiments.services import strategies

    with transaction() as session:
        summary = strategies.spend_summary(session, key)
    emit(
        summary["ledger"],
        output_format,
        ["incentive", "bucket", "users", "expected_cost", "expected_value"],
    )
    if output_format == "table":
        click.echo(
            f"\nplanned spend {summary['planned_spend']:,.2f} of budget {summary['budget']:,.2f}"
        )
