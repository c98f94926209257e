"""Daily pacing of a strategy's budget in serving: each day's cap and lambda, re-solved from the
ledger (layer: experiments.services; it never commits).

Without pacing, serving spends the budget as fast as units arrive: every online decision is priced
with the batch plan's lambda and issued while the ledger's planned spend stays within the budget
(the hard cap of ``strategy_serving``), so the first days can take all of it. A paced strategy
spreads what is left over its budget period (``Strategy.budget_period_days``, days counted in UTC
from the pacing's ``start``) after a daily schedule (``"even"``, or one weight per day), with the
re-solving rule of ``experiments.strategy.daily_pacing`` (Jasin & Kumar 2012):

1. **The day's budget.** On the first decision of day ``d`` the planned spend of the ledger is
   the spend at the day's start, ``S``; the day's target is
   ``T_d = (budget - S) * w_d / sum_{j >= d} w_j`` (``daily_pacing.day_target``), and the day's
   cap ``min(budget, S + T_d)`` replaces the budget in the hard cap for the rest of the day. A
   day that spent less than its target leaves more to every later day, one that could not stop
   at it (it never can: the cap is hard) leaves less.
2. **The day's lambda.** ``T_d`` over the day's forecast of new decisions is the spend each one
   may take on average; removing the holdout (no incentive) and the exploration bucket (each
   approved arm's mean spend, equally likely) leaves the exploit bucket's share, and the lambda
   at which the plan's exploit rule spends that much per user is read off the plan's spend curve
   (``experiments.strategy.spend_curve``, recorded by the batch run). The online model prices the
   day's units with it. A plan without a curve (a Spark folder written before it was recorded)
   keeps the plan's lambda and is paced by the daily cap alone; the decision's context says which
   (``lambda_source``).
3. **The forecast.** The mean number of new online decisions per day (the strategy's own, and
   its experiment variants' new draws) over the last ``HISTORY_DAYS`` days of the period before
   today; before there is one, the configured ``daily_units``.

The day's state (``config["pacing_day"]``) is written under the ledger lock by the first decision
of the day (``roll_day``), and again after a new batch run (which resets the ledger's planned
spend). Before ``start`` and after the period, pacing does not apply: the budget is the cap, and
the plan's lambda prices units. The ledger's planned (expected) spend stands for what was spent:
realized costs arrive later, as ``incentive_cost`` events over the offer's 30-day window, so
``BudgetPacer``'s correction of the cost model by realized spend is not applied here.

Experiment variants that serve a strategy (``strategy_experiments``) draw and cap the same way
(``strategy_serving.candidate`` and ``issue``): the day's lambda, the day's cap; their new draws
count in the forecast like the strategy's own online decisions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from experiments.db import Decision, Strategy, utcnow
from experiments.errors import ValidationError
from experiments.services import audit
from experiments.services.strategy_ledger import LedgerLock, lock_ledger
from experiments.strategy import day_target, lambda_for_spend, schedule_weights
from experiments.strategy.spend_curve import check_curve

PACING = "pacing"  # config key: {"start", "schedule", "daily_units"}
DAY = "pacing_day"  # config key: the current day's state (``PacedDay.state``)
HISTORY_DAYS = 7


@dataclass(frozen=True)
class PacedDay:
    """One day of a paced period, as serving applies it."""

    index: int  # day of the period, 0-based
    date: str  # ISO date (UTC)
    batch_run: int  # the ledger the spend was read from
    spend_at_start: float  # the ledger's planned spend when the day began
    target: float  # the day's budget T_d
    cap: float  # the spend the hard cap allows by the end of the day
    forecast: float  # expected new decisions today
    forecast_basis: str  # "history" or "configured"
    lambda_: float | None  # None: no spend curve, the plan's lambda prices units

    def state(self) -> dict[str, Any]:
        """Plain JSON (``config["pacing_day"]``; ``lambda_`` stored as ``lambda``)."""
        state = dataclasses.asdict(self)
        state["lambda"] = state.pop("lambda_")
        return state

    def context(self) -> dict[str, Any]:
        """What a decision's context records of the day."""
        return {
            "day": self.index,
            "date": self.date,
            "daily_cap": self.cap,
            "target": self.target,
            "lambda_source": "plan" if self.lambda_ is None else "paced",
        }


def today() -> dt.date:
    """The current UTC date (one function, so that tests can move the clock)."""
    return utcnow().date()


def _parse_start(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError("start", f"{value!r} is not a date; give YYYY-MM-DD") from None


def _parse_schedule(value: Any, days: int) -> str | list[float]:
    if isinstance(value, str) and value != "even":
        try:
            value = [float(v) for v in value.split(",")]
        except ValueError:
            raise ValidationError(
                "schedule", f"{value!r}: use 'even' or {days} comma-separated daily weights"
            ) from None
    try:
        schedule_weights(days, value)
    except ValueError as err:
        raise ValidationError("schedule", f"{err} (the budget period is {days} days)") from None
    return value if isinstance(value, str) else [float(v) for v in value]


def _parse_units(value: Any) -> float:
    try:
        units = float(value)
    except (TypeError, ValueError):
        units = math.nan
    if not (math.isfinite(units) and units > 0):
        raise ValidationError(
            "daily_units", f"{value!r}: give the expected new units per day, a number above 0"
        )
    return units


def set_pacing(
    session: Session,
    strategy: Strategy,
    *,
    start: Any,
    schedule: Any = "even",
    daily_units: Any,
    actor: str,
) -> dict[str, Any]:
    """Pace ``strategy``'s budget from ``start`` over its budget period (module doc); returns
    the stored pacing. Bad input raises ``ValidationError`` naming the field; nothing is written."""
    pacing = {
        "start": _parse_start(start).isoformat(),
        "schedule": _parse_schedule(schedule, strategy.budget_period_days),
        "daily_units": _parse_units(daily_units),
    }
    _store(session, strategy, pacing, actor)
    return pacing


def clear_pacing(session: Session, strategy: Strategy, *, actor: str) -> None:
    """Stop pacing: serving caps by the whole budget and prices with the plan's lambda again."""
    _store(session, strategy, None, actor)


def _store(session: Session, strategy: Strategy, pacing: dict[str, Any] | None, actor: str) -> None:
    """Write (or remove) the pacing under the ledger lock, dropping the day's state (the day
    restarts from the ledger's spend now), and audit the change."""
    lock_ledger(session, strategy)  # reloads the config; batch runs and new days write under it
    config = {k: v for k, v in (strategy.config or {}).items() if k not in (PACING, DAY)}
    before = (strategy.config or {}).get(PACING)
    strategy.config = config if pacing is None else {**config, PACING: pacing}
    audit.record(
        session,
        actor=actor,
        action="strategy.pacing",
        entity_type="strategy",
        entity_id=strategy.key,
        before={"pacing": before},
        after={"pacing": pacing},
    )
    session.flush()


def day_index(strategy: Strategy, date: dt.date) -> int | None:
    """The day of the paced period that ``date`` is (0-based), None when not paced that day."""
    pacing = (strategy.config or {}).get(PACING)
    if not pacing:
        return None
    d = (date - dt.date.fromisoformat(pacing["start"])).days
    return d if 0 <= d < strategy.budget_period_days else None


def _forecast(session: Session, strategy: Strategy, d: int, date: dt.date) -> tuple[float, str]:
    pacing = strategy.config[PACING]
    days = min(d, HISTORY_DAYS)
    if days > 0:
        end = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
        own = Decision.experiment_id.is_(None) & Decision.context["source"].as_string().like(
            "online%"
        )
        drawn_in_variant = (
            Decision.experiment_id.is_not(None)
            & Decision.reused_decision_id.is_(None)
            & Decision.context["variant_source"].as_string().like("online%")
        )
        count = session.scalar(
            select(func.count(Decision.id)).where(
                Decision.strategy_id == strategy.id,
                Decision.decided_at >= end - dt.timedelta(days=days),
                Decision.decided_at < end,
                own | drawn_in_variant,
            )
        )
        if count:
            return count / days, "history"
    return float(pacing["daily_units"]), "configured"


def _lambda(strategy: Strategy, target: float, forecast: float) -> float | None:
    """The day's lambda from the plan's spend curve (module doc, 2), None without a curve."""
    config = strategy.config or {}
    state = config.get("online") or {}
    curve = state.get("spend_curve")
    if not config.get("plan") or not check_curve(curve):
        return None
    h, e = strategy.holdout_share, strategy.explore_share
    approved = [
        c
        for a, c in zip(state["arms"], state["mean_cost"], strict=True)
        if a in strategy.approved_incentives
    ]
    explore_cost = float(np.mean(approved)) if approved else 0.0
    per_exploit = (target / forecast - e * explore_cost) / (1 - h - e)
    return lambda_for_spend(curve, max(0.0, per_exploit))


def _compute(
    session: Session, strategy: Strategy, d: int, date: dt.date, ledger: LedgerLock
) -> PacedDay:
    pacing = strategy.config[PACING]
    weights = schedule_weights(strategy.budget_period_days, pacing["schedule"])
    budget, spend = ledger.budget, ledger.planned_spend
    target = day_target(budget - spend, weights, d)
    forecast, basis = _forecast(session, strategy, d, date)
    return PacedDay(
        index=d,
        date=date.isoformat(),
        batch_run=ledger.batch_run,
        spend_at_start=float(spend),
        target=float(target),
        cap=float(min(budget, spend + target)),
        forecast=float(forecast),
        forecast_basis=basis,
        lambda_=_lambda(strategy, target, forecast),
    )


def _stored(strategy: Strategy, date: dt.date, batch_run: int) -> PacedDay | None:
    state = (strategy.config or {}).get(DAY)
    if not state or state["date"] != date.isoformat() or state["batch_run"] != batch_run:
        return None
    return PacedDay(**{("lambda_" if k == "lambda" else k): v for k, v in state.items()})


def current_day(
    session: Session, strategy: Strategy, date: dt.date | None = None
) -> PacedDay | None:
    """Today's paced day without writing: the stored state, or what the first decision of the
    day will store (read with the ledger's spend now). None when the strategy is not paced today."""
    date = date or today()
    d = day_index(strategy, date)
    if d is None:
        return None
    stored = _stored(strategy, date, strategy.batch_run)
    if stored is not None:
        return stored
    now = LedgerLock(strategy.budget, strategy.batch_run, strategy.planned_spend)
    return _compute(session, strategy, d, date, now)


def roll_day(
    session: Session, strategy: Strategy, lock: LedgerLock, date: dt.date | None = None
) -> PacedDay | None:
    """Today's paced day; the first decision of the day (or after a new batch run) stores it.
    Call under ``lock_ledger`` (``lock``). None when the strategy is not paced today.

    ``lock_ledger`` reloaded the config, so a concurrent batch run's or first decision's config is
    never overwritten by an older copy."""
    date = date or today()
    d = day_index(strategy, date)
    if d is None:
        return None
    day = _stored(strategy, date, lock.batch_run)
    if day is None:
        day = _compute(session, strategy, d, date, lock)
        config = {**strategy.config, DAY: day.state()}
        session.execute(
            update(Strategy)
            .where(Strategy.id == strategy.id)
            # updated_at kept: a new day does not change the strategy's configuration
            .values(config=config, updated_at=Strategy.updated_at)
            .execution_options(synchronize_session=False)
        )
        session.expire(strategy, ["config"])
    return day


def pacing_status(session: Session, strategy: Strategy) -> dict[str, Any] | None:
    """The pacing and today's day, for the admin and the CLI (None when not paced)."""
    pacing = (strategy.config or {}).get(PACING)
    if not pacing:
        return None
    date = today()
    day = current_day(session, strategy, date)
    start = dt.date.fromisoformat(pacing["start"])
    end = start + dt.timedelta(days=strategy.budget_period_days - 1)
    return {
        **pacing,
        "end": end.isoformat(),
        "state": "before_start" if date < start else ("ended" if date > end else "pacing"),
        "today": day.state() if day else None,
        "spent_today": None
        if day is None
        else max(0.0, strategy.planned_spend - day.spend_at_start),
    }
