"""``liftlab simulate``: a simulated shop with known truth, to Parquet files or into the database."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.cli.context import transaction


@click.command()
@click.option("--users", "n_users", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=365),
    default=14,
    show_default=True,
    help="Days of behaviour events to simulate.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write users.parquet, truth.parquet and events.parquet into this folder.",
)
@click.option("--to-db", is_flag=True, help="Load the events into the configured database.")
def simulate(n_users: int, seed: int, days: int, output: Path | None, to_db: bool) -> None:
    """Simulate a shop: users with features, the true effect of every incentive, events by day."""
    if output is None and not to_db:
        raise click.UsageError("say where the data goes: --output FOLDER and/or --to-db")
    import pandas as pd

    from experiments.simulation import simulate_shop

    shop = simulate_shop(n_users=n_users, seed=seed)
    click.echo(f"simulated {n_users} users, arms: {', '.join(shop.arms)}")
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        shop.users.to_parquet(output / "users.parquet", index=False)
        truth = pd.DataFrame({"unit_id": shop.users["unit_id"]})
        for outcome in ("conversion", "revenue", "margin"):
            effects = shop.true_effect(outcome)
            for j, arm in enumerate(shop.arms[1:]):
                truth[f"{outcome}__{arm}"] = effects[:, j]
        truth.to_parquet(output / "truth.parquet", index=False)
        frames = list(shop.traffic(days=days, seed=seed, assign=lambda ids: ["none"] * len(ids)))
        events = pd.concat(frames, ignore_index=True)
        events.to_parquet(output / "events.parquet", index=False)
        click.echo(f"wrote {len(events)} events and the truth to {output}")
    if to_db:
        from experiments.services import demo_data

        with transaction() as session:
            stored = demo_data.load_history(session, shop, days=days, seed=seed)
        click.echo(f"stored {stored} new events in the database")
