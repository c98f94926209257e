"""``liftlab incentives``: the incentive catalog."""

from __future__ import annotations

import click

from experiments.cli.context import FORMAT_OPTION, emit, transaction


@click.group()
def incentives() -> None:
    """Show and load the incentive catalog."""


@incentives.command("list")
@FORMAT_OPTION
def list_incentives(output_format: str) -> None:
    """List incentives with their kind, parameters and cost model."""
    from experiments.services import catalog

    with transaction() as session:
        rows = [
            {
                "key": i.key,
                "name": i.name,
                "kind": i.kind,
                "params": i.params,
                "cost_model": i.cost_model,
                "active": i.active,
            }
            for i in catalog.list_incentives(session)
        ]
    emit(rows, output_format, ["key", "name", "kind", "params", "cost_model", "active"])


@incentives.command("load-defaults")
def load_defaults() -> None:
    """Add the default catalog (the simulator's incentives) and metrics where missing."""
    from experiments.services import catalog, demo_data

    with transaction() as session:
        added, metrics = catalog.ensure_defaults(
            session, demo_data.default_incentive_specs(), actor="cli"
        )
    click.echo(f"added {added} incentives and {metrics} metrics")
