"""``liftlab strategy pace``: spread a strategy's budget over its period, day by day."""

from __future__ import annotations

import json
from typing import Any

import click

from experiments.cli.context import FORMAT_OPTION, transaction
from experiments.cli.strategy_commands import strategy


@strategy.command()
@click.argument("key")
@click.option("--start", help="First day of the paced period, YYYY-MM-DD (UTC).")
@click.option(
    "--schedule",
    help="'even' (the default), or one comma-separated weight per day of the budget period "
    "(e.g. more on weekends).",
)
@click.option(
    "--daily-units",
    type=float,
    help="Expected new units decided online per day: the forecast until there is history.",
)
@click.option("--off", is_flag=True, help="Stop pacing: the whole budget caps again.")
@FORMAT_OPTION
def pace(
    key: str,
    start: str | None,
    schedule: str | None,
    daily_units: float | None,
    off: bool,
    output_format: str,
) -> None:
    """Pace strategy KEY's budget over its budget period (`strategy set --period-days`), or,
    with no option, show the pacing and today's cap and lambda.

    Each day's cap is the spend at the day's start plus the day's share of what is left; the
    online model prices the day's units with the lambda at which the plan spends that much
    (experiments.services.strategy_pacing).
    """
    from experiments.services import strategies, strategy_pacing

    if off and (start or daily_units is not None or schedule is not None):
        raise click.UsageError("--off takes no other option")
    changing = start is not None or daily_units is not None or schedule is not None
    if changing and (start is None or daily_units is None):
        raise click.UsageError("give both --start and --daily-units to pace (or --off)")
    with transaction() as session:
        row = strategies.get_strategy(session, key)
        if off:
            strategy_pacing.clear_pacing(session, row, actor="cli")
        elif changing:
            strategy_pacing.set_pacing(
                session,
                row,
                start=start,
                schedule=schedule or "even",
                daily_units=daily_units,
                actor="cli",
            )
        status = strategy_pacing.pacing_status(session, row)
        budget, days = row.budget, row.budget_period_days
    if output_format == "json":
        click.echo(json.dumps({"strategy": key, "pacing": status}, indent=2))
        return
    click.echo(_describe(key, status, budget, days))


def _describe(key: str, status: dict[str, Any] | None, budget: float, days: int) -> str:
    if status is None:
        return f"{key}: not paced (the budget {budget:,.2f} caps the whole ledger)"
    schedule = status["schedule"] if isinstance(status["schedule"], str) else "custom weights"
    lines = [
        f"{key}: budget {budget:,.2f} paced over {days} days, {status['start']} to "
        f"{status['end']} (UTC), schedule {schedule}; forecast {status['daily_units']:g} "
        "units/day until there is history"
    ]
    today = status["today"]
    if today is None:
        lines.append(f"today: {status['state'].replace('_', ' ')}, not paced")
    else:
        lam = "the plan's" if today["lambda"] is None else f"{today['lambda']:.4g}"
        lines.append(
            f"today (day {today['index'] + 1} of {days}): target {today['target']:,.2f}, "
            f"cap {today['cap']:,.2f} of planned spend, spent today {status['spent_today']:,.2f}; "
            f"forecast {today['forecast']:,.1f} units ({today['forecast_basis']}); lambda {lam}"
        )
    return "\n".join(lines)
