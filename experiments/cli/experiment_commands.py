"""``liftlab experiments``: list, refresh and read results from the command line."""

from __future__ import annotations

import click

from experiments.cli.context import FORMAT_OPTION, emit, transaction


@click.group("experiments")
def experiments_group() -> None:
    """List experiments, refresh and show their results."""


@experiments_group.command("list")
@click.option(
    "--status", type=click.Choice(["draft", "running", "stopped", "concluded", "archived"])
)
@FORMAT_OPTION
def list_experiments(status: str | None, output_format: str) -> None:
    """List experiments (newest first)."""
    from experiments.services import experiments

    with transaction() as session:
        rows = [
            {
                "key": e.key,
                "name": e.name,
                "status": e.status,
                "coverage": e.coverage,
                "variants": len(e.variants),
                "winner": e.winner_variant_key,
                "started_at": e.started_at,
            }
            for e in experiments.list_experiments(session, status=status)
        ]
    emit(
        rows,
        output_format,
        ["key", "name", "status", "coverage", "variants", "winner", "started_at"],
    )


def _result_rows(results: dict) -> list[dict]:  # type: ignore[type-arg]
    rows = []
    for metric in results["metrics"]:
        for v in metric["variants"]:
            rows.append(
                {
                    "metric": metric["metric"],
                    "role": metric["role"],
                    "variant": v["variant"],
                    "n": v["n"],
                    "mean": v["mean"],
                    "lift": v.get("lift"),
                    "ci_low": (v.get("ci") or [None, None])[0],
                    "ci_high": (v.get("ci") or [None, None])[1],
                    "p_value": v.get("p_value_running_min"),
                    "p_adjusted": v.get("p_value_adjusted"),
                    "chance_to_win": v.get("chance_to_win"),
                    "error": v.get("error"),
                }
            )
    return rows


COLUMNS = [
    "metric",
    "role",
    "variant",
    "n",
    "mean",
    "lift",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "chance_to_win",
    "error",
]


@experiments_group.command()
@click.argument("key")
@FORMAT_OPTION
def refresh(key: str, output_format: str) -> None:
    """Recompute KEY's results inside the database and store a snapshot."""
    from experiments.services import results

    with transaction() as session:
        data = results.refresh(session, key, actor="cli")
    _show(data, output_format)


@experiments_group.command()
@click.argument("key")
@FORMAT_OPTION
def results(key: str, output_format: str) -> None:
    """Show KEY's latest stored results."""
    from experiments.services import results as service

    with transaction() as session:
        data = service.latest(session, key)
    if data is None:
        raise click.ClickException(
            f"no results for {key} yet; run `liftlab experiments refresh {key}`"
        )
    _show(data, output_format)


def _show(data: dict, output_format: str) -> None:  # type: ignore[type-arg]
    import json

    if output_format == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    emit(_result_rows(data), "table", COLUMNS)
    srm = data["srm"]
    click.echo(f"\nSRM p = {srm['p_value']}{'  ALERT' if srm['alert'] else ''}")
    click.echo(
        f"recommendation: {data['recommendation']['action']} — {data['recommendation']['reason']}"
    )


@experiments_group.command()
@click.argument("key")
@FORMAT_OPTION
def show(key: str, output_format: str) -> None:
    """Show KEY's configuration."""
    import json

    from experiments.services import experiments

    with transaction() as session:
        data = experiments.snapshot(session, experiments.get_experiment(session, key))
    if output_format == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for field in (
        "key",
        "name",
        "status",
        "coverage",
        "namespace",
        "condition",
        "design",
        "metrics",
        "winner",
        "started_at",
    ):
        click.echo(f"{field:>11}: {json.dumps(data[field], default=str)}")
    emit(data["variants"], "table", ["key", "name", "weight", "incentive"])


@experiments_group.command()
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="JSON file with the experiment (the same body as POST /api/v1/experiments).",
)
def create(path: str) -> None:
    """Create a draft experiment from a JSON file."""
    import json

    from experiments.services import experiments

    try:
        with open(path) as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{path} must hold one JSON object")
    with transaction() as session:
        experiment = experiments.create_experiment(session, data, actor="cli")
        click.echo(f"created {experiment.key} (draft)")


def _move(key: str, status: str, winner: str | None = None) -> None:
    from experiments.services import experiments

    with transaction() as session:
        experiments.transition(session, key, status, actor="cli", winner=winner)
    click.echo(f"{key} is now {status}" + (f" (winner {winner})" if winner else ""))


@experiments_group.command()
@click.argument("key")
def start(key: str) -> None:
    """Start KEY (draft or stopped → running)."""
    _move(key, "running")


@experiments_group.command()
@click.argument("key")
def stop(key: str) -> None:
    """Stop KEY (running → stopped)."""
    _move(key, "stopped")


@experiments_group.command()
@click.argument("key")
@click.option("--winner", help="Variant key of the winner (feeds the strategy).")
def conclude(key: str, winner: str | None) -> None:
    """Conclude KEY (stopped → concluded), optionally declaring a winner."""
    _move(key, "concluded", winner)
