"""Strategies A/B-tested: an ordinary experiment whose variants are strategies (services layer).

A variant gives an incentive (e.g. the winner, to everyone in the variant), a strategy's per-user
decisions (model-targeted allocation under its budget), or nothing (the holdout). Assignment is
the experiment's own (hashing, coverage, targeting, sticky first exposures), so its results are
the ordinary statistics by variant (``experiments.services.results``). The decision served to a
unit is its variant's:

- strategy variant: what the strategy decides for the unit (its batch decision, else its fallback
  through its own holdout / explore buckets); propensity = variant share x the strategy's;
- incentive variant: that incentive, bucket ``exploit``; propensity = variant share;
- control (neither): no incentive, bucket ``holdout``; propensity = variant share.

The propensity is the probability of the logged path (this variant, then this arm) given that the
unit is in the experiment; the context keeps both factors. A unit's decision is logged once per
experiment and repeated afterwards (sticky). As with assignments, QA-forced variations are served
but never logged, and units outside the experiment (coverage, targeting, namespace) get no
incentive and no decision. The strategy's budget covers the users its variant receives: set it
for that share of the traffic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from experiments.db import Decision, Experiment, Incentive, Strategy, Variant
from experiments.errors import ConflictError, ValidationError
from experiments.services import assignments, experiments
from experiments.services.strategies import check_request, choose, get_strategy

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


def _variant_decision(
    session: Session, experiment: Experiment, variant: Variant, unit_id: str, share: float
) -> tuple[Decision, Strategy | None]:
    strategy = session.get(Strategy, variant.strategy_id) if variant.strategy_id else None
    if strategy is not None:
        if strategy.status != "active":
            raise ConflictError(
                "strategy",
                f"strategy {strategy.key!r} of variant {variant.key!r} is {strategy.status}; "
                "activate it (or stop the experiment)",
            )
        choice = choose(session, strategy, unit_id)
        incentive_id, bucket, p = choice.incentive_id, choice.bucket, choice.propensity
        value, cost, source = choice.expected_value, choice.expected_cost, choice.source
    elif variant.incentive_id is not None:
        incentive_id, bucket, p, value, cost, source = (
            variant.incentive_id,
            "exploit",
            1.0,
            0.0,
            0.0,
            "variant",
        )
    else:
        incentive_id, bucket, p, value, cost, source = None, "holdout", 1.0, 0.0, 0.0, "variant"
    decision = Decision(
        decision_id=uuid.uuid4().hex,
        strategy_id=strategy.id if strategy else None,
        experiment_id=experiment.id,
        variant_id=variant.id,
        unit_id=unit_id,
        incentive_id=incentive_id,
        bucket=bucket,
        propensity=share * p,
        expected_value=value,
        expected_cost=cost,
        context={
            "source": "experiment",
            "variant_share": share,
            "variant_propensity": p,
            "variant_source": source,
        },
    )
    return decision, strategy


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
    variants = {v.id: v for v in experiment.variants}
    logged = session.scalar(
        select(Decision)
        .where(Decision.experiment_id == experiment.id, Decision.unit_id == unit_id)
        .order_by(Decision.id.desc())
        .limit(1)
    )
    if logged is not None and logged.variant_id in variants:
        variant = variants[logged.variant_id]
        strategy = session.get(Strategy, variant.strategy_id) if variant.strategy_id else None
        return ExperimentDecision(
            key, variant.key, strategy.key if strategy else None, "sticky", logged
        )
    targeting = attributes if attributes is not None else features
    served = assignments.assign_many(session, [(unit_id, targeting)], only=key)[0]
    if not served:
        return ExperimentDecision(key, None, None, "excluded", None)
    variant = next(v for v in experiment.variants if v.key == served[0].variant)
    total = sum(v.weight for v in experiment.variants)
    forced = served[0].reason == "forced"
    share = 1.0 if forced else variant.weight / total
    decision, strategy = _variant_decision(session, experiment, variant, unit_id, share)
    decision.context = {**(decision.context or {}), "features": dict(features or {})}
    if not forced:
        session.add(decision)
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
