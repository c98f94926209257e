"""Serving a strategy's decision to a unit its batch never decided: model or fallback, priced,
within the budget.

Layer: ``experiments.services`` (``strategies.choose``, ``strategies.decide`` and the strategy
variants of ``strategy_experiments`` call it; it never commits). Every path draws through the
same holdout / explore buckets (``allocate`` / ``Policy`` with the salt ``strategy:<key>`` and
hash version 2) over the approved arms in the strategy's order, so a unit lands in the same
bucket whichever path serves it and every decision logs the probability of its arm, usable for
off-policy evaluation:

- ``online-model``: the request's features cover the model columns of the last batch plan
  (``experiments.services.online_scoring``): each arm's value and expected spend from the batch
  run's economics and calibration, and the exploit arm ``argmax(0, value - lambda cost - mu)``
  with the plan's lambda and mu (a paced strategy's day's lambda instead, see below).
  ``expected_value`` and ``expected_cost`` are the model's.
- ``online-fallback``: no usable plan, or features missing (the context names the reason and the
  missing columns): the fallback incentive in the exploit bucket. ``expected_value`` is 0 (no
  model, no value); ``expected_cost`` comes from the catalog's cost model without user features
  (``fallback_costs``): the plan's mean expected spend of the arm over the batch population when
  a plan has one, else the cost of one redemption (a coupon's amount, a gift's unit cost, the
  shipping fee, plus any per-user cost; conversion taken as certain, so it over-counts rather than
  under-counts). A percentage discount needs an order value: without a plan only its cap
  (``per_order_max``) is counted, and an uncapped one counts 0 (``cost_basis`` in the context says
  ``percentage_not_counted``), so the hard cap cannot bound it.

Hard budget cap (``serve``, and ``issue`` for a strategy variant's new draw): a new decision
is issued only if the spend the cap sees plus its expected cost stays within the budget
(``experiments.strategy.serve_within_cap``). That spend (``Strategy.planned_spend``, a running
total kept by ``strategy_ledger``, so no decision sums the ledger) is the strategy's current ledger — its latest batch run's decisions plus the online decisions after it,
as in ``strategies.spend_summary`` — plus the decisions its experiment variants drew anew in the
same run (a variant decision that repeated an own decision is in the ledger once). Otherwise the
unit gets no incentive, its bucket unchanged, the context marks ``budget_exhausted`` with what
was withheld (``withheld``) and the ledger at that moment (``budget_cap``), and the propensity is
the capped policy's (none takes the probability of every arm that does not fit). New decisions
therefore never take that spend past the budget (a batch run starts a new ledger with its own
plan, superseding the old rows without deleting them). The spend is read and the decision
written in the caller's transaction, after ``lock_ledger`` (``strategy_ledger``; a batch run
takes the same lock before it logs its decisions, so new decisions wait for it to commit):

- PostgreSQL: ``SELECT ... FOR UPDATE`` of the strategy's row serializes new decisions of one
  strategy until the transaction ends; under READ COMMITTED (the default) the ledger read after
  the lock sees every committed decision, so concurrent requests, across workers and hosts,
  cannot overspend. (Under REPEATABLE READ or SERIALIZABLE a waiter fails with a serialization
  error instead of overspending.)
- SQLite: no row locks; a no-op write of the strategy's row takes the database's write lock
  before the ledger is read, so writers (threads or processes on the file) are serialized the
  same way (waiting up to the busy timeout, 30 s).

Daily pacing (``experiments.services.strategy_pacing``): on a day of a paced strategy's period
the cap is the day's (the ledger's spend at the day's start plus the day's share of what is
left, never above the budget), the online model prices units with the day's lambda, and the
context records the day (``pacing``); a unit the day's cap refuses is marked
``daily_budget_spent`` instead of ``budget_exhausted``.

The cost of the guarantee: new decisions of one strategy are serialized for the rest of their
request's transaction, and each sums the ledger and the variants' new draws of the current run
(a repeated decision takes no lock).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.db import Decision, Incentive, Strategy
from experiments.errors import ValidationError
from experiments.jobs.strategy_run import cost_model
from experiments.services import online_scoring, strategy_pacing
from experiments.services.strategy_ledger import (
    LedgerLock,
    add_planned,
    latest_decision,
    lock_ledger,
)
from experiments.strategy import CostModel, Policy, allocate, serve_within_cap

HASH_VERSION = 2
MISSING_SHOWN = 20  # missing feature names kept in a decision's context


@dataclass(frozen=True)
class Candidate:
    """A unit's draw before the budget cap: its arm among ``arm_keys`` (-1 = none), bucket,
    propensity and the full distribution it was drawn from, and every arm's value and cost."""

    arm_keys: list[str]
    arm_ids: list[int]
    arm: int
    bucket: str
    propensity: float
    probabilities: np.ndarray  # (1 + k,), column 0 = none
    value: np.ndarray  # (k,)
    cost: np.ndarray  # (k,)
    source: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def incentive_id(self) -> int | None:
        return self.arm_ids[self.arm] if self.arm >= 0 else None

    @property
    def expected_value(self) -> float:
        return float(self.value[self.arm]) if self.arm >= 0 else 0.0

    @property
    def expected_cost(self) -> float:
        return float(self.cost[self.arm]) if self.arm >= 0 else 0.0


def redemption_cost(model: CostModel) -> tuple[float, str]:
    """What one redemption costs without an order value, and on what basis (module doc)."""
    fixed = model.per_order_fixed + model.per_user
    if model.per_order_rate == 0:
        return fixed, "redemption"
    if model.per_order_max is not None:
        return fixed + model.per_order_max, "redemption_cap"
    return fixed, "percentage_not_counted"


def fallback_costs(
    incentives: list[Incentive], mean_cost: Mapping[str, float]
) -> tuple[np.ndarray, list[str]]:
    """Each arm's expected cost without user features and its basis (module doc)."""
    costs, basis = [], []
    for incentive in incentives:
        if incentive.key in mean_cost:
            costs.append(float(mean_cost[incentive.key]))
            basis.append("plan_mean")
        else:
            cost, why = redemption_cost(cost_model(incentive))
            costs.append(cost)
            basis.append(why)
    return np.asarray(costs, dtype=np.float64), basis


def _fallback(
    session: Session,
    strategy: Strategy,
    unit_id: str,
    plan: online_scoring.OnlinePlan | None,
    context: dict[str, Any],
) -> Candidate:
    catalog = {i.key: i for i in session.scalars(select(Incentive))}
    approved = [catalog[k] for k in strategy.approved_incentives if k in catalog]
    if not approved:
        raise ValidationError(
            "approved_incentives", f"strategy {strategy.key!r} approves no incentive"
        )
    keys = [i.key for i in approved]
    # value 1 for the fallback only: the exploit choice is the fallback, explore stays uniform
    value = np.array([[1.0 if i.id == strategy.fallback_incentive_id else 0.0 for i in approved]])
    drawn = allocate(
        value,
        np.zeros_like(value),
        budget=0.0,
        holdout=strategy.holdout_share,
        explore=strategy.explore_share,
        unit_ids=[unit_id],
        arms=keys,
        salt=f"strategy:{strategy.key}",
        hash_version=HASH_VERSION,
    )
    cost, basis = fallback_costs(approved, plan.mean_cost if plan else {})
    arm = int(drawn.arm[0])
    if arm >= 0:
        context = {**context, "cost_basis": basis[arm]}
    return Candidate(
        arm_keys=keys,
        arm_ids=[i.id for i in approved],
        arm=arm,
        bucket=str(drawn.bucket[0]),
        propensity=float(drawn.propensity[0]),
        probabilities=drawn.action_probabilities()[0],
        value=np.zeros(len(approved)),
        cost=cost,
        source="online-fallback",
        context=context,
    )


def _model(
    strategy: Strategy,
    unit_id: str,
    plan: online_scoring.OnlinePlan,
    model: Any,
    row: Mapping[str, Any],
    unknown: dict[str, Any],
) -> Candidate:
    inputs = plan.inputs
    economics = online_scoring.unit_economics(
        plan, model, row, list(model.encoder_.categorical_columns)
    )
    eligible = np.array([[a in strategy.approved_incentives for a in inputs.arms]])
    policy = Policy(
        plan.lambda_,
        plan.mu,
        inputs.holdout,
        inputs.explore,
        inputs.salt,
        HASH_VERSION,
        None,
        tuple(inputs.arms),
    )
    drawn = policy.decide([unit_id], economics.value, economics.cost, eligible=eligible)
    probabilities = policy.action_probabilities(economics.value, economics.cost, eligible=eligible)
    context: dict[str, Any] = {"model_run_id": inputs.model_run_id, "lambda": plan.lambda_}
    if unknown:
        context["unknown_levels"] = unknown
    return Candidate(
        arm_keys=list(inputs.arms),
        arm_ids=list(inputs.incentive_ids),
        arm=int(drawn.arm[0]),
        bucket=str(drawn.bucket[0]),
        propensity=float(drawn.propensity[0]),
        probabilities=probabilities[0],
        value=economics.value[0].astype(np.float64),
        cost=economics.cost[0].astype(np.float64),
        source="online-model",
        context=context,
    )


def candidate(
    session: Session, strategy: Strategy, unit_id: str, features: Mapping[str, Any] | None
) -> Candidate:
    """The unit's draw by the online model when it can be scored, else by the fallback."""
    plan, reason = online_scoring.servable_plan(session, strategy)
    if plan is None:
        return _fallback(session, strategy, unit_id, None, {"online_reason": reason})
    if not features:
        return _fallback(session, strategy, unit_id, plan, {"online_reason": "no_features"})
    model = online_scoring.plan_model(plan)
    if model is None:
        return _fallback(session, strategy, unit_id, plan, {"online_reason": "model_unavailable"})
    row, unknown = online_scoring.unit_features(model, plan.inputs.features, features)
    missing = [c for c in plan.inputs.features if c not in features]
    if missing:
        context = {"online_reason": "features_missing", "missing_features": missing[:MISSING_SHOWN]}
        return _fallback(session, strategy, unit_id, plan, context)
    day = strategy_pacing.current_day(session, strategy)
    if day is not None and day.lambda_ is not None:
        plan = dataclasses.replace(plan, lambda_=day.lambda_)  # the paced day's lambda
    return _model(strategy, unit_id, plan, model, row, unknown)


@dataclass(frozen=True)
class Issued:
    """A draw after the hard cap: the arm issued (-1 = none), its propensity under the capped
    policy, and the context to log (the draw's, plus ``budget_cap`` / ``budget_exhausted`` /
    ``withheld`` when the cap changed anything)."""

    arm: int
    propensity: float
    context: dict[str, Any]


def within_cap(
    drawn: Candidate, budget: float, spent: float, flag: str = "budget_exhausted"
) -> Issued:
    """``drawn`` capped by ``budget`` given ``spent`` already planned (``serve_within_cap``);
    a withheld incentive sets ``flag`` in the context (``daily_budget_spent`` for a day's cap)."""
    arm, propensity, withheld = serve_within_cap(
        drawn.arm, drawn.propensity, drawn.probabilities, drawn.cost, budget, spent
    )
    context: dict[str, Any] = dict(drawn.context)
    if propensity != drawn.propensity or withheld:
        context["budget_cap"] = {"planned_spend": spent, "budget": budget}
    if withheld:
        context[flag] = True
        context["withheld"] = {
            "incentive": drawn.arm_keys[drawn.arm],
            "expected_value": drawn.expected_value,
            "expected_cost": drawn.expected_cost,
            "propensity": drawn.propensity,
        }
    return Issued(arm, propensity, context)


def issue(session: Session, strategy: Strategy, drawn: Candidate, lock: LedgerLock) -> Issued:
    """``drawn`` under the hard cap (after ``lock_ledger``): the whole budget, or on a paced day
    its cap, with the day in the context and ``daily_budget_spent`` when that cap refused it
    (``serve`` and a strategy variant's new draw, ``strategy_experiments``)."""
    day = strategy_pacing.roll_day(session, strategy, lock)
    if day is None or day.cap >= lock.budget:
        issued = within_cap(drawn, lock.budget, lock.planned_spend)
    else:
        issued = within_cap(drawn, day.cap, lock.planned_spend, "daily_budget_spent")
    if day is not None:
        issued.context["pacing"] = day.context()
    return issued


def serve(
    session: Session, strategy: Strategy, unit_id: str, features: Mapping[str, Any] | None
) -> Decision:
    """Draw, cap by the ledger and log the unit's new decision (module doc).

    Returns the unit's logged decision instead when a concurrent request logged one first.
    """
    drawn = candidate(session, strategy, unit_id, features)  # model work before the lock
    lock = lock_ledger(session, strategy)
    logged = latest_decision(session, strategy, unit_id)
    if logged is not None:
        return logged
    issued = issue(session, strategy, drawn, lock)
    arm = issued.arm
    context = {"source": drawn.source, **issued.context, "features": dict(features or {})}
    decision = Decision(
        decision_id=uuid.uuid4().hex,
        strategy_id=strategy.id,
        unit_id=unit_id,
        incentive_id=drawn.arm_ids[arm] if arm >= 0 else None,
        bucket=drawn.bucket,
        propensity=issued.propensity,
        expected_value=float(drawn.value[arm]) if arm >= 0 else 0.0,
        expected_cost=float(drawn.cost[arm]) if arm >= 0 else 0.0,
        context=context,
        batch_run=lock.batch_run,
    )
    session.add(decision)
    add_planned(session, strategy, decision.expected_cost)
    session.flush()
    return decision
