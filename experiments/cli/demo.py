"""``liftlab demo``: build the embedded database, an admin, the catalog and a simulated shop; serve."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from experiments.cli.context import domain_errors, settings, transaction
from experiments.cli.serve import run_server

DEMO_ADMIN = "admin@liftlab.local"
T = TypeVar("T")


def run_demo_experiment(shop: Any, start: dt.datetime, seed: int) -> dict[str, Any]:
    """Create and run the demo experiment once; a later demo run leaves it as it is."""
    from experiments.errors import NotFoundError
    from experiments.services import demo_data, experiments, results, simulated_experiment

    key = demo_data.DEMO_EXPERIMENT
    with transaction() as session:
        try:
            experiment = experiments.get_experiment(session, key)
        except NotFoundError:
            experiment = None
        if experiment is not None:
            latest = results.latest(session, key) or {}
            return {
                "status": experiment.status,
                "recommendation": latest.get(
                    "recommendation", {"action": "-", "reason": "already in the database"}
                ),
            }
        experiments.create_experiment(
            session, demo_data.demo_experiment_spec(n_star=shop.n_users), actor="demo"
        )
        experiments.transition(session, key, "running", actor="demo")
    with transaction() as session:
        last = simulated_experiment.run_on_shop(
            session, shop, key, days=21, enroll_days=14, seed=seed, start=start
        )
    assert last is not None
    return {"status": "running", "recommendation": last["recommendation"]}


def declare_winner(summary: dict[str, Any]) -> None:
    from experiments.services import demo_data, experiments

    action = summary["recommendation"]["action"]
    if summary["status"] != "running" or not action.startswith("ship "):
        return
    winner = action.removeprefix("ship ")
    key = demo_data.DEMO_EXPERIMENT
    with transaction() as session:
        experiments.transition(session, key, "stopped", actor="demo")
        experiments.transition(
            session,
            key,
            "concluded",
            actor="demo",
            winner=winner,
            note="declared by the demo, following the engine's recommendation",
        )
    summary["status"] = f"concluded, winner {winner}"


DEMO_MODEL = {"representation": (64, 64), "head": (32,), "max_epochs": 25, "batch_size": 512}


def train_demo_model(shop: Any, artifact_dir: Any) -> int | None:
    """Train once per demo database (a later demo run keeps the first model)."""
    from sqlalchemy import select

    from experiments.cli.uplift_commands import record_failed_run
    from experiments.db import ModelRun
    from experiments.jobs.train import train_on_experiment
    from experiments.services import demo_data, experiments

    with transaction() as session:
        experiment = experiments.get_experiment(session, demo_data.DEMO_EXPERIMENT)
        done = session.scalar(
            select(ModelRun.id).where(
                ModelRun.experiment_id == experiment.id, ModelRun.status == "succeeded"
            )
        )
        if done is not None:
            return int(done)
        run = train_on_experiment(
            session,
            demo_data.DEMO_EXPERIMENT,
            shop.users,
            artifact_dir,
            params=dict(DEMO_MODEL),
            created_by="demo",
            record_failure=record_failed_run,
        )
        run.promoted = True
        return run.id


def run_demo_strategy(shop: Any, run_id: int | None) -> str:
    from experiments.jobs.strategy_run import run_strategy
    from experiments.services import demo_data, strategies

    key = f"from-{demo_data.DEMO_EXPERIMENT}"
    with transaction() as session:
        try:
            strategy = strategies.get_strategy(session, key)
        except Exception:  # noqa: BLE001 - no winner was declared: nothing to run
            return "no strategy (no winner declared)"
        if strategy.budget == 0:
            # a budget of about 0.10 per user in the demo shop
            strategies.update_strategy(
                session,
                key,
                {"budget": 0.10 * shop.n_users, "status": "active", "model_run_id": run_id},
                actor="demo",
            )
        plan = run_strategy(session, key, shop.users, actor="demo")
    return (
        f"{key}: spend {plan['spend']:,.0f} of {plan['budget']:,.0f}, expected incremental "
        f"profit {plan['value']:,.0f}, users by arm {dict(zip(plan['arms'], plan['count_by_arm'], strict=True))}"
    )


def serve_demo_period(shop: Any) -> dict[str, Any] | None:
    from experiments.errors import NotFoundError
    from experiments.services import demo_data
    from experiments.services.strategy_simulation import simulate_period

    with transaction() as session:
        try:
            return simulate_period(session, shop, f"from-{demo_data.DEMO_EXPERIMENT}")
        except NotFoundError:
            return None


def write_demo_report(shop: Any, artifact_dir: Any) -> Any:
    """The demo's report skips the slow DoWhy refutations and EconML cross-check (CLI has them)."""
    from experiments.services import demo_data, reporting

    with transaction() as session:
        report = reporting.generate(
            session,
            demo_data.DEMO_EXPERIMENT,
            artifact_dir=artifact_dir,
            population=shop.users,
            refute=False,
            cross_check=False,
        )
    body, _, _ = reporting.render(report, "html")
    path = artifact_dir / "reports" / f"{demo_data.DEMO_EXPERIMENT}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def step(number: int, total: int, title: str, action: Callable[[], T]) -> T:
    click.echo(f"[{number}/{total}] {title} ...", nl=False)
    started = time.perf_counter()
    result = action()
    click.echo(f" done ({time.perf_counter() - started:.1f}s)")
    return result


@click.command()
@click.option(
    "--users",
    "n_users",
    type=click.IntRange(min=500),
    default=40_000,
    show_default=True,
    help="Simulated shop size.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=90),
    default=7,
    show_default=True,
    help="Days of behaviour history to load.",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--no-serve", is_flag=True, help="Build everything, print the summary and exit.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def demo(n_users: int, days: int, seed: int, no_serve: bool, host: str, port: int) -> None:
    """Run the whole loop on the embedded default, then serve the admin."""
    from experiments.db import migrate
    from experiments.services import accounts, catalog, demo_data
    from experiments.simulation import simulate_shop

    config = settings()
    config.artifact_dir.mkdir(parents=True, exist_ok=True)
    total = 11
    with domain_errors():
        step(1, total, "database schema", lambda: migrate.upgrade(config.database_url))

    def admin() -> str:
        password = accounts.generate_password()
        with transaction() as session:
            existing = {a.email: a for a in accounts.list_accounts(session)}
            if DEMO_ADMIN in existing:
                account = existing[DEMO_ADMIN]
                accounts.set_password(session, account.id, password, actor="demo")
                if account.role != "admin" or not account.active:
                    accounts.update_account(
                        session, account.id, role="admin", active=True, actor="demo"
                    )
            else:
                accounts.create_account(
                    session, email=DEMO_ADMIN, password=password, role="admin", actor="demo"
                )
        return password

    password = step(2, total, "admin account (new password)", admin)

    def load_catalog() -> tuple[int, int]:
        with transaction() as session:
            return catalog.ensure_defaults(
                session, demo_data.default_incentive_specs(), actor="demo"
            )

    added = step(3, total, "incentive catalog and metrics", load_catalog)
    shop = step(
        4,
        total,
        f"simulated shop ({n_users:,} users)",
        lambda: simulate_shop(n_users=n_users, seed=seed),
    )
    shop.users.to_parquet(config.artifact_dir / "demo_population.parquet", index=False)

    experiment_start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)

    def history() -> int:
        with transaction() as session:
            return demo_data.load_history(
                session,
                shop,
                days=days,
                seed=seed,
                start=experiment_start - dt.timedelta(days=days),
            )

    stored = step(5, total, f"{days} days of shop history (pre-period for CUPED)", history)
    summary = step(
        6,
        total,
        "experiment on the shop, 21 simulated days, results refreshed daily",
        lambda: run_demo_experiment(shop, experiment_start, seed),
    )
    step(7, total, "declare the winner the engine recommends", lambda: declare_winner(summary))
    population_path = config.artifact_dir / "demo_population.parquet"
    run_id = step(
        8,
        total,
        "uplift model trained on the experiment's randomized users",
        lambda: train_demo_model(shop, config.artifact_dir),
    )
    plan = step(
        9,
        total,
        "budgeted strategy from the winner, decided for every user",
        lambda: run_demo_strategy(shop, run_id),
    )
    period = step(
        10,
        total,
        "one simulated period served under the hard spend cap",
        lambda: serve_demo_period(shop),
    )
    report_path = step(
        11,
        total,
        "causal report of the experiment (HTML)",
        lambda: write_demo_report(shop, config.artifact_dir),
    )
    click.echo("")
    click.echo(
        f"catalog: {added[0]} incentives and {added[1]} metrics added; events stored: {stored}"
    )
    click.echo(
        f"experiment {demo_data.DEMO_EXPERIMENT}: {summary['status']}; "
        f"{summary['recommendation']['action']} — {summary['recommendation']['reason']}"
    )
    if run_id is not None:
        click.echo(f"uplift model run {run_id}; strategy plan: {plan}")
    if period:
        click.echo(
            f"served period: realized spend {period['realized_spend']:,.0f} of "
            f"{period['budget']:,.0f}; incremental profit vs no incentive: strategy "
            f"{period['strategy_profit']:,.0f} (measured against its holdout: "
            f"{period['strategy_profit_measured_vs_holdout'] or 0:,.0f} ± "
            f"{period['strategy_profit_measured_se'] or 0:,.0f}), blanket winner "
            f"{period['blanket_winner_profit']:,.0f} ({period['blanket_winner_users']:,} users)"
        )
    click.echo(
        f"causal report: {report_path} (refutations: `liftlab report "
        f"{demo_data.DEMO_EXPERIMENT} --format html --output report.html`)"
    )
    click.echo(f"population features: {population_path}")
    click.echo(f"database: {config.database_url}")
    click.echo(f"admin login: {DEMO_ADMIN}")
    click.echo(f"password (shown once): {password}")
    if no_serve:
        click.echo("open the admin with: liftlab serve")
        return
    run_server(host, port)
