"""Strategies A/B-tested: an ordinary experiment whose variants are strategies (services layer).

A variant gives an incentive (e.g. the winner, to everyone in the variant), a strategy's per-user
decisions (model-targeted allocation under its budget), or nothing (the holdout). Assignment is
the experiment's own (hashing, coverage, targeting, sticky first exposures), so its results are
the ordinary statistics by variant (``experiments.services.results``). The decision served to a
unit is its variant's:

- strategy variant: what the strategy decides for the unit, as ``POST /decide`` under the
  strategy would: its own current decision (the latest batch run's, or an online one after it),
  repeated; else a new draw through its own holdout / explore buckets — by the online model when
  the request's ``features`` cover the model columns of the last batch plan, else by the fallback
  (``strategy_serving.candidate``) — under the strategy's hard budget cap (``issue`` after
  ``lock_ledger``); propensity = variant share x the strategy's (the capped policy's when the cap
  withheld an arm or changed the probabilities);
- incentive variant: that incentive, bucket ``exploit``; propensity = variant share;
- control (neither): no incentive, bucket ``holdout``; propensity = variant share.

The propensity is the probability of the logged path (this variant, then this arm) given that the
unit is in the experiment; the context keeps both factors (``variant_share``,
``variant_propensity``) and, for a strategy variant, ``variant_source`` (``batch``,
``online-model``, ``online-fallback``), the draw's reasons (``online_reason``, ``model_run_id``,
``cost_basis`` ...), ``reused_decision`` (the decision_id of the strategy's own decision it
repeated, else null; also the column ``reused_decision_id``) and, when capped, ``budget_cap``,
``budget_exhausted`` and ``withheld`` as ``serve`` writes them.

The cap and the ledger (``experiments.services.strategy_ledger``): a repeated own decision is in
the strategy's ledger already, so it is neither capped nor counted again; a new draw is capped
against the strategy's current ledger plus the variants' earlier new draws of the same batch run,
and counts in that spend afterwards (``strategies.spend_summary``'s ``variant_spend``), for
``POST /decide`` under the strategy too. Its planned spend, own and variant together, therefore
never passes the budget through new decisions (a batch plan spends up to the budget by itself:
raise it to leave room). The decisions stay the experiment's own log (``decision_summary``); a
later batch run supersedes the strategy's ledger but never touches them.

A unit's decision is logged once per experiment and repeated afterwards (sticky), also when
requests for a new unit arrive at the same time (``_lock_unit``). As with
assignments, QA-forced variations are served (and capped) but never logged, and units outside the
experiment (coverage, targeting, namespace) get no incentive and no decision. The strategy's
budget covers the users its variant receives as well as its own: set it for that traffic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from experiments.db import (
    Decision,
    Experiment,
    Incentive,
    Strategy,
    Variant,
    take_sqlite_write_lock,
)
from experiments.errors import ConflictError, ValidationError
from experiments.services import assignments, experiments
from experiments.services.strategies import check_request, get_strategy
from experiments.services.strategy_ledger import add_planned, latest_decision, lock_ledger
from experiments.services.strategy_serving import candidate, issue

DEFAULT_METRICS = {
    "primary": "margin",
    "secondary": ["conversion", "revenue", "incentive_cost"],
}


@dataclass(frozen=True)
class ExperimentDecision:
    """The variant a unit is in and the decision served (None when it is not in the experiment)."""

    experiment: str
    variant: str | None
    strategy: str | None
    reason: str  # "assigned", "sticky", "forced" (QA, not logged) or "excluded"
    decision: Decision | None


@dataclass(frozen=True)
class _Served:
    """What a variant serves before the share: arm, bucket, propensity, value, cost, source."""

    incentive_id: int | None
    bucket: str
    propensity: float
    expected_value: float
    expected_cost: float
    source: str
    batch_run: int | None = None
    reused: str | None = None  # the strategy's own decision repeated (its decision_id)
    context: dict[str, Any] = field(default_factory=dict)


def _repeat(own: Decision) -> _Served:
    return _Served(
        own.incentive_id,
        own.bucket,
        own.propensity,
        own.expected_value,
        own.expected_cost,
        (own.context or {}).get("source", "batch"),
        own.batch_run,
        own.decision_id,
    )


def _strategy_served(
    session: Session, strategy: Strategy, unit_id: str, features: Mapping[str, Any] | None
) -> _Served:
    """The strategy's own current decision for the unit, else a new draw (the online model's
    when ``features`` cover the plan's model columns, else the fallback's) under the hard cap."""
    own = latest_decision(session, strategy, unit_id)
    if own is not None:
        return _repeat(own)  # in the strategy's ledger already: no lock, no cap
    drawn = candidate(session, strategy, unit_id, features)  # model work before the lock
    lock = lock_ledger(session, strategy)
    own = latest_decision(session, strategy, unit_id)  # a batch run or /decide while we waited
    if own is not None:
        return _repeat(own)
    issued = issue(session, strategy, drawn, lock)  # a paced day's cap on a paced strategy
    arm = issued.arm
    return _Served(
        drawn.arm_ids[arm] if arm >= 0 else None,
        drawn.bucket,
        issued.propensity,
        float(drawn.value[arm]) if arm >= 0 else 0.0,
        float(drawn.cost[arm]) if arm >= 0 else 0.0,
        drawn.source,
        lock.batch_run,
        None,
        issued.context,
    )


def _variant_decision(
    session: Session,
    experiment: Experiment,
    variant: Variant,
    unit_id: str,
    share: float,
    features: Mapping[str, Any] | None,
) -> tuple[Decision, Strategy | None]:
    strategy = session.get(Strategy, variant.strategy_id) if variant.strategy_id else None
    if strategy is not None:
        if strategy.status != "active":
            raise ConflictError(
                "strategy",
                f"strategy {strategy.key!r} of variant {variant.key!r} is {strategy.status}; "
                "activate it (or stop the experiment)",
            )
        served = _strategy_served(session, strategy, unit_id, features)
    elif variant.incentive_id is not None:
        served = _Served(variant.incentive_id, "exploit", 1.0, 0.0, 0.0, "variant")
    else:
        served = _Served(None, "holdout", 1.0, 0.0, 0.0, "variant")
    context: dict[str, Any] = {
        "source": "experiment",
        "variant_share": share,
        "variant_propensity": served.propensity,
        "variant_source": served.source,
    }
    if strategy is not None:
        context = {**context, **served.context, "reused_decision": served.reused}
    decision = Decision(
        decision_id=uuid.uuid4().hex,
        strategy_id=strategy.id if strategy else None,
        experiment_id=experiment.id,
        variant_id=variant.id,
        unit_id=unit_id,
        incentive_id=served.incentive_id,
        bucket=served.bucket,
        propensity=share * served.propensity,
        expected_value=served.expected_value,
        expected_cost=served.expected_cost,
        context=context,
        batch_run=served.batch_run,
        reused_decision_id=served.reused,
    )
    return decision, strategy


def _sticky(session: Session, experiment: Experiment, unit_id: str) -> ExperimentDecision | None:
    """The unit's logged decision in the experiment, repeated; None when it has none yet."""
    variants = {v.id: v for v in experiment.variants}
    logged = session.scalar(
        select(Decision)
        .where(Decision.experiment_id == experiment.id, Decision.unit_id == unit_id)
        .order_by(Decision.id.desc())
        .limit(1)
    )
    if logged is None or logged.variant_id not in variants:
        return None
    variant = variants[logged.variant_id]
    strategy = session.get(Strategy, variant.strategy_id) if variant.strategy_id else None
    key = experiment.key
    return ExperimentDecision(
        key, variant.key, strategy.key if strategy else None, "sticky", logged
    )


def _lock_unit(session: Session, experiment: Experiment, unit_id: str) -> None:
    """Serialize first decisions of one unit in one experiment until the transaction ends, so
    that two simultaneous requests for a new unit log one decision, not two (the second, after
    the lock, finds the first's and repeats it).

    PostgreSQL: a transaction-scoped advisory lock on (experiment id, hash of the unit id); other
    units and experiments do not wait. SQLite: a no-op write to the experiment's row takes the
    database's write lock (SQLite has one writer at a time anyway); reads after it see every
    committed decision.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:exp AS integer), hashtext(:unit))"),
            {"exp": experiment.id % 2_147_483_647, "unit": unit_id},
        )
    else:
        take_sqlite_write_lock(session, Experiment, experiment.id)


def decide_in_experiment(
    session: Session,
    key: str,
    unit_id: str,
    features: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ExperimentDecision:
    """Assign ``unit_id`` in experiment ``key`` and serve (and log) its variant's decision.

    ``attributes`` drive targeting (default: ``features``); ``features`` are kept in the log.
    """
    check_request(unit_id, features)
    if attributes is not None and not isinstance(attributes, Mapping):
        raise ValidationError("attributes", "must be an object of user attributes")
    experiment = experiments.get_experiment(session, key)
    if experiment.status != "running":
        raise ConflictError("status", f"experiment {key!r} is {experiment.status}; start it first")
    sticky = _sticky(session, experiment, unit_id)
    if sticky is None:
        _lock_unit(session, experiment, unit_id)
        sticky = _sticky(session, experiment, unit_id)  # a concurrent request logged it first
    if sticky is not None:
        return sticky
    targeting = attributes if attributes is not None else features
    served = assignments.assign_many(session, [(unit_id, targeting)], only=key)[0]
    if not served:
        return ExperimentDecision(key, None, None, "excluded", None)
    variant = next(v for v in experiment.variants if v.key == served[0].variant)
    total = sum(v.weight for v in experiment.variants)
    forced = served[0].reason == "forced"
    share = 1.0 if forced else variant.weight / total
    decision, strategy = _variant_decision(session, experiment, variant, unit_id, share, features)
    decision.context = {**(decision.context or {}), "features": dict(features or {})}
    if not forced:
        session.add(decision)
        if strategy is not None and decision.reused_decision_id is None:
            add_planned(session, strategy, decision.expected_cost)  # a new draw: the cap sees it
        session.flush()
    return ExperimentDecision(
        key,
        variant.key,
        strategy.key if strategy else None,
        served[0].reason,
        decision,
    )


def create_strategy_experiment(
    session: Session,
    key: str,
    strategy_key: str,
    *,
    actor: str,
    name: str | None = None,
    weights: Sequence[float] = (0.34, 0.33, 0.33),
    metrics: Mapping[str, Any] | None = None,
    design: Mapping[str, Any] | None = None,
) -> Experiment:
    """A draft experiment: holdout vs the strategy's winner for everyone vs the strategy.

    ``weights`` are the shares of holdout, winner and strategy (they must sum to 1); the primary
    metric is margin net of incentive cost unless ``metrics`` says otherwise.
    """
    strategy = get_strategy(session, strategy_key)
    winner = (
        session.get(Incentive, strategy.fallback_incentive_id)
        if strategy.fallback_incentive_id
        else None
    )
    if winner is None:
        raise ValidationError(
            "strategy",
            f"strategy {strategy_key!r} has no winner (fallback incentive) to give everyone; "
            "declare an experiment's winner or set its fallback first",
        )
    if len(weights) != 3:
        raise ValidationError("weights", "give three shares: holdout, winner, strategy")
    spec: dict[str, Any] = {
        "key": key,
        "name": name or f"{strategy.name}: targeted vs {winner.key} for everyone vs holdout",
        "hypothesis": (
            f"Targeting incentives with strategy {strategy.key} earns more margin per user than "
            f"giving {winner.key} to everyone, and than no incentive."
        ),
        "variants": [
            {"key": "holdout", "name": "No incentive", "weight": weights[0]},
            {
                "key": "winner",
                "name": f"{winner.key} for everyone",
                "weight": weights[1],
                "incentive": winner.key,
            },
            {
                "key": "targeted",
                "name": f"Strategy {strategy.key}",
                "weight": weights[2],
                "strategy": strategy.key,
            },
        ],
        "metrics": dict(metrics or DEFAULT_METRICS),
    }
    if design is not None:
        spec["design"] = dict(design)
    return experiments.create_experiment(session, spec, actor=actor)


def experiments_testing(session: Session, strategy: Strategy) -> list[Experiment]:
    """The experiments with a variant that is ``strategy``, newest first."""
    return list(
        session.scalars(
            select(Experiment)
            .where(
                Experiment.id.in_(
                    select(Variant.experiment_id).where(Variant.strategy_id == strategy.id)
                )
            )
            .order_by(Experiment.id.desc())
        )
    )


def decision_summary(session: Session, key: str) -> dict[str, Any]:
    """Decisions served through experiment ``key``: units, incentive and bucket per variant."""
    experiment = experiments.get_experiment(session, key)
    names = {i.id: i.key for i in session.scalars(select(Incentive))}
    variant_keys = {v.id: v.key for v in experiment.variants}
    rows = session.execute(
        select(
            Decision.variant_id,
            Decision.incentive_id,
            Decision.bucket,
            func.count(),
            func.sum(Decision.expected_cost),
        )
        .where(Decision.experiment_id == experiment.id)
        .group_by(Decision.variant_id, Decision.incentive_id, Decision.bucket)
    ).all()
    out = [
        {
            "variant": variant_keys.get(v, "?"),
            "incentive": names.get(i, "none") if i else "none",
            "bucket": b,
            "units": int(n),
            "expected_cost": float(c or 0),
        }
        for v, i, b, n, c in rows
    ]
    out.sort(key=lambda r: (r["variant"], r["incentive"], r["bucket"]))
    return {"experiment": key, "decisions": out, "units": sum(r["units"] for r in out)}
