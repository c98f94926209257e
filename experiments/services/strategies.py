"""Strategies: configuration, the winner feed from concluded experiments, serving one decision.

A strategy decides which incentive (or none) each user gets, under a budget. Its approved arms come
from an experiment's winner and the arms shown non-inferior to it; the winner is the fallback for
users the model does not cover; the experiment's average effects calibrate the model's per-arm
effects. Batch decisions are made by ``experiments.jobs.strategy_run`` (model scoring, knapsack);
the web serves them from the decision log and decides users it has never seen online — by the
batch plan's model and lambda when the request's features cover the model, else by the fallback
— through the same holdout and exploration buckets, so every served decision has a logged
propensity, and never past the budget (``experiments.services.strategy_serving``).

Logged decisions are never deleted: a batch run supersedes the earlier ones, and the strategy's
current ledger (``latest_decision``, ``spend_summary``, the cap) is its latest batch run's
decisions plus the online decisions after it (``experiments.services.strategy_ledger``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from experiments.db import Decision, Experiment, Incentive, Strategy, utcnow
from experiments.errors import ConflictError, NotFoundError, ValidationError
from experiments.services import audit
from experiments.services.catalog import check_key
from experiments.services.strategy_ledger import (
    check_run,
    latest_decision,
    own_decisions,
    variant_spend,
)

NON_INFERIORITY_MARGIN = -0.02  # relative lift of the primary metric, lower interval end


def get_strategy(session: Session, key: str) -> Strategy:
    strategy = session.scalar(select(Strategy).where(Strategy.key == key))
    if strategy is None:
        raise NotFoundError("strategy", key)
    return strategy


def list_strategies(session: Session) -> list[Strategy]:
    return list(session.scalars(select(Strategy).order_by(Strategy.id.desc())))


def snapshot(session: Session, strategy: Strategy) -> dict[str, Any]:
    fallback = (
        session.get(Incentive, strategy.fallback_incentive_id)
        if strategy.fallback_incentive_id
        else None
    )
    return {
        "key": strategy.key,
        "name": strategy.name,
        "status": strategy.status,
        "objective": strategy.objective,
        "model_run_id": strategy.model_run_id,
        "approved_incentives": list(strategy.approved_incentives),
        "fallback": fallback.key if fallback else None,
        "budget": strategy.budget,
        "budget_period_days": strategy.budget_period_days,
        "holdout_share": strategy.holdout_share,
        "explore_share": strategy.explore_share,
        "batch_run": strategy.batch_run,
        "config": strategy.config,
    }


MAX_PERIOD_DAYS = 366


def _period_days(strategy: Strategy, value: Any) -> int:
    """The budget period in whole days; a paced strategy's custom schedule must keep its length."""
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())
    ):
        raise ValidationError("budget_period_days", f"{value!r} is not a whole number of days")
    days = int(value)
    if not 1 <= days <= MAX_PERIOD_DAYS:
        raise ValidationError("budget_period_days", f"must be 1 to {MAX_PERIOD_DAYS} days")
    schedule = ((strategy.config or {}).get("pacing") or {}).get("schedule")
    if isinstance(schedule, list) and len(schedule) != days:
        raise ValidationError(
            "budget_period_days",
            f"the pacing schedule has {len(schedule)} daily weights; clear the pacing or set it "
            f"again with {days} weights (or 'even')",
        )
    return days


def _share(field: str, value: Any) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ValidationError(field, f"{value!r} is not a number between 0 and 1") from None
    if not (math.isfinite(share) and 0 <= share < 1):
        raise ValidationError(field, "must be at least 0 and below 1")
    return share


def _apply(session: Session, strategy: Strategy, data: Mapping[str, Any]) -> None:
    catalog = {i.key: i for i in session.scalars(select(Incentive))}
    if "name" in data:
        strategy.name = str(data["name"] or "").strip() or strategy.key
    if "budget" in data:
        try:
            budget = float(data["budget"])
        except (TypeError, ValueError):
            raise ValidationError(
                "budget", "give the budget as a number of currency units"
            ) from None
        if not math.isfinite(budget) or budget < 0:
            raise ValidationError("budget", "must be a finite amount of at least 0")
        strategy.budget = budget
    for field in ("holdout_share", "explore_share"):
        if field in data:
            setattr(strategy, field, _share(field, data[field]))
    if strategy.holdout_share + strategy.explore_share >= 1:
        raise ValidationError("explore_share", "holdout and exploration together must stay below 1")
    if "objective" in data:
        if data["objective"] not in ("profit", "revenue", "orders"):
            raise ValidationError("objective", "use profit, revenue or orders")
        strategy.objective = data["objective"]
    if "approved_incentives" in data:
        keys = list(data["approved_incentives"] or [])
        unknown = [k for k in keys if k not in catalog]
        if unknown:
            raise ValidationError("approved_incentives", f"{unknown[0]!r} is not in the catalog")
        strategy.approved_incentives = keys
    if "fallback" in data:
        fallback = data["fallback"]
        if fallback is not None and fallback not in catalog:
            raise ValidationError("fallback", f"{fallback!r} is not in the catalog")
        strategy.fallback_incentive_id = catalog[fallback].id if fallback else None
    if "budget_period_days" in data:
        strategy.budget_period_days = _period_days(strategy, data["budget_period_days"])
    if "model_run_id" in data:
        strategy.model_run_id = data["model_run_id"]
    if "config" in data:
        if not isinstance(data["config"], Mapping):
            raise ValidationError("config", "must be an object")
        strategy.config = {**strategy.config, **data["config"]}
    if "status" in data:
        if data["status"] not in ("draft", "active", "paused"):
            raise ValidationError("status", "use draft, active or paused")
        strategy.status = data["status"]


def create_strategy(session: Session, data: Mapping[str, Any], *, actor: str) -> Strategy:
    key = check_key("key", str(data.get("key", "")))
    if session.scalar(select(Strategy.id).where(Strategy.key == key)) is not None:
        raise ConflictError("key", f"a strategy {key!r} already exists; choose another key")
    strategy = Strategy(key=key, name=key, approved_incentives=[], config={})
    session.add(strategy)
    _apply(session, strategy, data)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="strategy.create",
        entity_type="strategy",
        entity_id=key,
        after=snapshot(session, strategy),
    )
    return strategy


def update_strategy(session: Session, key: str, data: Mapping[str, Any], *, actor: str) -> Strategy:
    strategy = get_strategy(session, key)
    before = snapshot(session, strategy)
    _apply(session, strategy, data)
    strategy.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="strategy.update",
        entity_type="strategy",
        entity_id=key,
        before=before,
        after=snapshot(session, strategy),
    )
    return strategy


def feed_winner(session: Session, experiment: Experiment, *, actor: str) -> Strategy | None:
    """Create or update the strategy fed by a concluded experiment with a declared winner."""
    from experiments.services import results

    if not experiment.winner_variant_key:
        return None
    variants = {v.key: v for v in experiment.variants}
    winner = variants[experiment.winner_variant_key]
    incentive_keys = {i.id: i.key for i in session.scalars(select(Incentive))}
    latest = results.latest(session, experiment.key) or {"metrics": []}
    primary = next((m for m in latest["metrics"] if m["role"] == "primary"), None)
    harmed = {
        v["variant"]
        for m in latest["metrics"]
        if m["role"] == "guardrail"
        for v in m["variants"]
        if v.get("harm")
    }
    approved, calibration = [], {}
    control_mean = primary["variants"][0]["mean"] if primary else None
    for row in primary["variants"][1:] if primary else []:
        variant = variants.get(row["variant"])
        if variant is None or variant.incentive_id is None:
            continue
        key = incentive_keys[variant.incentive_id]
        if control_mean is not None and row["mean"] is not None:
            calibration[key] = {"experiment_ate": row["mean"] - control_mean}
        non_inferior = (
            row.get("ci") and row["ci"][0] is not None and row["ci"][0] >= NON_INFERIORITY_MARGIN
        )
        if row["variant"] not in harmed and (variant is winner or non_inferior):
            approved.append(key)
    fallback = incentive_keys.get(winner.incentive_id) if winner.incentive_id else None
    if fallback and fallback not in approved:
        approved.insert(0, fallback)
    data = {
        "name": f"From {experiment.name}",
        "approved_incentives": approved,
        "fallback": fallback,
        "config": {"source_experiment": experiment.key, "calibration": calibration},
    }
    key = f"from-{experiment.key}"[:100]
    existing = session.scalar(select(Strategy).where(Strategy.key == key))
    if existing is None:
        strategy = create_strategy(session, {"key": key, **data}, actor=actor)
    else:
        strategy = update_strategy(session, key, data, actor=actor)
    strategy.source_experiment_id = experiment.id
    session.flush()
    return strategy


@dataclass(frozen=True)
class Choice:
    """What a strategy decides for one unit, before it is logged."""

    incentive_id: int | None
    bucket: str
    propensity: float
    expected_value: float
    expected_cost: float
    source: str  # "batch" (the latest batch decision), "online-model" or "online-fallback"
    logged: Decision | None  # the strategy's own logged decision it repeats, if any


MAX_FEATURES = 200  # keys of a request's features (all of them are kept in the decision log)
MAX_FEATURE_KEY = 100


def _finite(field: str, value: Any) -> None:
    """NaN and infinities are not JSON: PostgreSQL could not store them in the decision log."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(field, f"{value!r} is not a number; send a finite number or omit it")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _finite(f"{field}.{key}", item)
    elif isinstance(value, list | tuple):
        for item in value:
            _finite(field, item)


def check_request(unit_id: Any, features: Any) -> None:
    if not isinstance(unit_id, str) or not unit_id.strip() or len(unit_id) > 200:
        raise ValidationError("unit_id", "give a non-empty string of at most 200 characters")
    if features is None:
        return
    if not isinstance(features, Mapping):
        raise ValidationError("features", "must be an object")
    if len(features) > MAX_FEATURES:
        raise ValidationError(
            "features",
            f"has {len(features)} keys; send at most {MAX_FEATURES} (the model's columns and "
            "what should be logged with the decision)",
        )
    for key, value in features.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_FEATURE_KEY:
            raise ValidationError(
                "features", f"key {str(key)[:40]!r} must be 1 to {MAX_FEATURE_KEY} characters"
            )
        _finite(f"features.{key}", value)


def active_strategy(session: Session, key: str) -> Strategy:
    strategy = get_strategy(session, key)
    if strategy.status != "active":
        raise ConflictError("status", f"strategy {key!r} is {strategy.status}; activate it first")
    return strategy


def choose(
    session: Session,
    strategy: Strategy,
    unit_id: str,
    features: Mapping[str, Any] | None = None,
) -> Choice:
    """The unit's decision in the current ledger, else its draw by the online model or the
    fallback through the holdout/explore buckets (``strategy_serving.candidate``): a preview,
    before the budget cap that ``decide`` and the strategy variants apply."""
    existing = latest_decision(session, strategy, unit_id)
    if existing is not None:
        source = (existing.context or {}).get("source", "batch")
        return Choice(
            existing.incentive_id,
            existing.bucket,
            existing.propensity,
            existing.expected_value,
            existing.expected_cost,
            source,
            existing,
        )
    from experiments.services.strategy_serving import candidate

    drawn = candidate(session, strategy, unit_id, features)
    return Choice(
        drawn.incentive_id,
        drawn.bucket,
        drawn.propensity,
        drawn.expected_value,
        drawn.expected_cost,
        drawn.source,
        None,
    )


def decide(
    session: Session, key: str, unit_id: str, features: Mapping[str, Any] | None = None
) -> Decision:
    """The unit's decision: its latest one in the current ledger, else a new one, logged.

    A new decision is the online model's when ``features`` cover the model columns of the last
    batch plan, else the fallback's, through the same buckets; it is issued only within the
    budget (the hard cap of ``experiments.services.strategy_serving``, counting the current
    ledger and the strategy variants' new draws, which also says what is guaranteed under
    concurrent requests on SQLite and PostgreSQL). Bad feature values raise ``ValidationError``
    naming ``features.<column>`` before anything is written. A unit decided before the latest
    batch run, and absent from it, is decided anew.
    """
    check_request(unit_id, features)
    strategy = active_strategy(session, key)
    existing = latest_decision(session, strategy, unit_id)
    if existing is not None:
        return existing
    from experiments.services.strategy_serving import serve

    return serve(session, strategy, unit_id, features)


def spend_summary(session: Session, key: str, batch_run: int | None = None) -> dict[str, Any]:
    """Planned spend by incentive of the strategy's current ledger: its latest batch run's
    decisions plus the online decisions made after it (``experiments.services.strategy_ledger``);
    of an earlier run's ledger with ``batch_run``.

    Decisions served through an experiment are that experiment's (see
    ``experiments.services.strategy_experiments.decision_summary``); ``variant_spend`` is what the
    strategy's variants drew anew in the current run, which the budget cap counts too.
    """
    strategy = get_strategy(session, key)
    run = strategy.batch_run if batch_run is None else check_run(strategy, batch_run)
    names = {i.id: i.key for i in session.scalars(select(Incentive))}
    rows = session.execute(
        select(
            Decision.incentive_id,
            Decision.bucket,
            func.count(),
            func.sum(Decision.expected_cost),
            func.sum(Decision.expected_value),
        )
        .where(*own_decisions(strategy, run))
        .group_by(Decision.incentive_id, Decision.bucket)
    ).all()
    ledger = [
        {
            "incentive": names.get(i, "none") if i else "none",
            "bucket": b,
            "users": int(n),
            "expected_cost": float(c or 0),
            "expected_value": float(v or 0),
        }
        for i, b, n, c, v in rows
    ]
    current = run == strategy.batch_run
    return {
        "budget": strategy.budget,
        "batch_run": run,
        "current": current,
        "planned_spend": sum(r["expected_cost"] for r in ledger),
        "variant_spend": variant_spend(session, strategy) if current else None,
        "ledger": sorted(ledger, key=lambda r: (r["incentive"], r["bucket"])),
    }
