"""Batch decisions of a strategy for a whole population: score, price, allocate, log.

The promoted (or configured) uplift model predicts each user's conversion and revenue under every
approved arm; the experiment's average effects calibrate them (an additive shift per arm, so that
the mean predicted effect equals the randomized estimate); the incentive catalog's cost models turn
them into incremental value and expected spend; ``experiments.strategy.allocate`` solves the
budgeted knapsack with holdout and exploration buckets; every decision is logged with its
propensity, as the strategy's next batch run (``Strategy.batch_run``): earlier decisions are kept
and superseded, not deleted (``experiments.services.strategy_ledger``).

The steps are separate functions (``strategy_inputs``, ``raw_outcomes``, ``mean_effects``,
``calibrate``, ``population_economics``, ``allocate_population``) so that the Spark job
(``experiments.jobs.spark_strategy``) runs the very same code per partition, and online serving
(``experiments.services.online_scoring``) the very same code for one unit: the plan records
``serving_state`` (calibration shifts, arms, mean costs) next to its lambda for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.db import Incentive, ModelRun, utcnow
from experiments.errors import ValidationError
from experiments.services import audit
from experiments.services.decision_copy import RunRows, UserRows, insert_decisions
from experiments.services.strategies import get_strategy
from experiments.services.strategy_ledger import lock_ledger, start_run
from experiments.strategy import Allocation, CostModel, allocate, incentive_economics, spend_curve
from experiments.strategy.exact import exact_mean

LOG_CHUNK = 20_000  # decisions per bulk insert (decision_copy: COPY on PostgreSQL)

DEFAULT_SHIPPING_FEE = 4.95


def cost_model(incentive: Incentive) -> CostModel:
    """The strategy's cost model of a catalog incentive (explicit fields win over the kind's)."""
    params, explicit = incentive.params, incentive.cost_model or {}
    fields = {
        k: float(explicit[k])
        for k in ("per_order_fixed", "per_order_rate", "per_user")
        if k in explicit
    }
    if not fields:
        if incentive.kind in ("percent_discount", "bundle"):
            fields = {"per_order_rate": float(params["percent"]) / 100}
        elif incentive.kind == "fixed_coupon":
            fields = {"per_order_fixed": float(params["amount"])}
        elif incentive.kind == "free_shipping":
            fields = {"per_order_fixed": float(explicit.get("shipping_fee", DEFAULT_SHIPPING_FEE))}
        elif incentive.kind == "gift":
            fields = {"per_order_fixed": float(params.get("unit_cost", 0.0))}
    return CostModel(incentive.key, **fields)


def model_run(session: Session, strategy: Any) -> ModelRun:
    """The model run the strategy is scored with: its configured run, else the latest succeeded
    run of its source experiment (a promoted one first)."""
    run = session.get(ModelRun, strategy.model_run_id) if strategy.model_run_id else None
    if run is None:
        run = session.scalar(
            select(ModelRun)
            .where(
                ModelRun.status == "succeeded",
                ModelRun.experiment_id == strategy.source_experiment_id,
            )
            .order_by(ModelRun.promoted.desc(), ModelRun.id.desc())
            .limit(1)
        )
    if run is None or not run.artifact_path:
        raise ValidationError("model_run_id", "train an uplift model for this strategy first")
    return run


@dataclass(frozen=True)
class StrategyInputs:
    """Everything a batch run needs besides the population, read once from the database.

    Plain data (no session, no model), so that a Spark job can ship it to its executors.
    """

    key: str
    model_run_id: int
    artifact_path: str
    features: list[str]
    arms: list[str]
    incentive_ids: list[int]
    cost_models: list[CostModel]
    calibration_ates: list[float | None]
    budget: float
    holdout: float
    explore: float
    objective: str
    margin_rate: float
    salt: str
    hash_version: int = 2


def strategy_inputs(
    session: Session, key: str, population_columns: Sequence[str], *, margin_rate: float = 0.4
) -> tuple[StrategyInputs, Any]:
    """The strategy's arms, cost models, calibration, budget and shares, and its uplift model."""
    from uplift import UpliftModel

    strategy = get_strategy(session, key)
    run = model_run(session, strategy)
    model = UpliftModel.load(Path(run.artifact_path))
    arms = [a for a in strategy.approved_incentives if a in model.incentives_]
    if not arms:
        raise ValidationError(
            "approved_incentives", "none of the approved incentives is in the model"
        )
    features = run.metrics.get("features") or [c for c in population_columns if c != "unit_id"]
    return plan_inputs(session, strategy, run, arms, features, margin_rate=margin_rate), model


def plan_inputs(
    session: Session,
    strategy: Any,
    run: ModelRun,
    arms: Sequence[str],
    features: Sequence[str],
    *,
    margin_rate: float,
) -> StrategyInputs:
    """``StrategyInputs`` for ``arms`` scored by model ``run``: the catalog's cost models, the
    calibration, budget and shares as configured now (the batch run and online serving)."""
    catalog = {i.key: i for i in session.scalars(select(Incentive))}
    gone = [a for a in arms if a not in catalog]
    if gone:
        raise ValidationError("approved_incentives", f"{gone[0]!r} is no longer in the catalog")
    calibration = strategy.config.get("calibration", {})
    return StrategyInputs(
        key=strategy.key,
        model_run_id=run.id,
        artifact_path=str(run.artifact_path),
        features=list(features),
        arms=list(arms),
        incentive_ids=[catalog[a].id for a in arms],
        cost_models=[cost_model(catalog[a]) for a in arms],
        calibration_ates=[(calibration.get(a) or {}).get("experiment_ate") for a in arms],
        budget=float(strategy.budget),
        holdout=float(strategy.holdout_share),
        explore=float(strategy.explore_share),
        objective=strategy.objective,
        margin_rate=margin_rate,
        salt=f"strategy:{strategy.key}",
    )


def raw_outcomes(model: Any, X: Any, arms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Conversion probability (clipped) and revenue per user for [none, *arms], uncalibrated."""
    labels = ["none", *model.incentives_]
    columns = [labels.index(a) for a in ["none", *arms]]
    mu = model.outcomes_by_target(X)  # one forward pass for both targets
    missing = [t for t in ("conversion", "revenue") if t not in mu]
    if missing:
        raise ValueError(f"outcome={missing[0]!r} is unknown; this model predicts {list(mu)}")
    p = np.clip(mu["conversion"][:, columns], 1e-6, 1.0)
    revenue = np.maximum(mu["revenue"][:, columns], 0.0)
    return p, revenue


def mean_effects(p: np.ndarray) -> list[float]:
    """Exact mean conversion effect of each arm (order-independent, see ``exact_mean``)."""
    return [exact_mean(p[:, j] - p[:, 0]) for j in range(1, p.shape[1])]


def calibration_shifts(ates: Sequence[float | None], means: Sequence[float]) -> list[float | None]:
    """Additive shift of each arm's conversion so that its mean effect is the experiment's ATE."""
    return [None if ate is None else ate - m for ate, m in zip(ates, means, strict=True)]


def calibrate(
    p: np.ndarray, revenue: np.ndarray, shifts: Sequence[float | None]
) -> tuple[np.ndarray, np.ndarray]:
    """Shifted conversion (clipped) and the order value ``revenue / p`` per user and arm."""
    p = p.copy()
    for j, shift in enumerate(shifts, start=1):
        if shift is not None:
            p[:, j] = np.clip(p[:, j] + shift, 1e-6, 1.0)
    return p, revenue / p


def predicted_outcomes(model: Any, X: Any, arms: list[str], calibration: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Conversion probability and order value per user for [none, *arms], calibrated."""
    p, revenue = raw_outcomes(model, X, arms)
    ates = [(calibration.get(a) or {}).get("experiment_ate") for a in arms]
    return calibrate(p, revenue, calibration_shifts(ates, mean_effects(p)))


def population_economics(inputs: StrategyInputs, p: np.ndarray, order_value: np.ndarray):  # type: ignore[no-untyped-def]
    """Incremental value and expected spend per user and arm (``incentive_economics``)."""
    return incentive_economics(
        p,
        order_value,
        inputs.cost_models,
        margin_rate=inputs.margin_rate,
        objective=inputs.objective,
    )


def allocate_population(inputs: StrategyInputs, value, cost, unit_ids) -> Allocation:  # type: ignore[no-untyped-def]
    """The budgeted allocation with the strategy's holdout and explore buckets."""
    return allocate(
        value,
        cost,
        inputs.budget,
        holdout=inputs.holdout,
        explore=inputs.explore,
        unit_ids=unit_ids,
        arms=inputs.arms,
        salt=inputs.salt,
        hash_version=inputs.hash_version,
    )


# what only a Spark plan records (``spark_output.spark_plan_config``, ``spark_load``): a local
# run's plan replaces them, so that its config never describes the Spark run before it
SPARK_PLAN_KEYS = ("engine", "decisions_path", "loaded", "frontier_sample")


def profit_frontier(
    value: np.ndarray, cost: np.ndarray, budget: float, *, scale: float = 1.0
) -> list[dict[str, float]]:
    """Expected incremental value of the optimal allocation at budgets around the chosen one.

    ``value`` and ``cost`` are the whole population's, or a uniform sample of it with ``scale``
    = population users / sample users (the Spark run's): each point then allocates the sample
    at ``budget / scale`` and scales its value and spend back up."""
    all_treated = scale * float(np.maximum(cost, 0).max(axis=1).sum())
    top = max(budget * 2.0, all_treated * 0.5, 1.0)
    points = []
    for b in np.linspace(0.0, top, 11):
        plan = allocate(value, cost, float(b) / scale)
        points.append(
            {
                "budget": float(b),
                "value": scale * float(plan.value),
                "spend": scale * float(plan.spend),
            }
        )
    return points


def plan_population(inputs: StrategyInputs, model: Any, population: Any):  # type: ignore[no-untyped-def]
    """Score, calibrate, price and allocate ``population`` (unit_id + features): the batch
    computation, as (calibration shifts, economics, allocation)."""
    p, revenue = raw_outcomes(model, population[inputs.features], inputs.arms)
    shifts = calibration_shifts(inputs.calibration_ates, mean_effects(p))
    p, order_value = calibrate(p, revenue, shifts)
    economics = population_economics(inputs, p, order_value)
    plan = allocate_population(
        inputs, economics.value, economics.cost, population["unit_id"].astype(str).to_numpy()
    )
    return shifts, economics, plan


def run_strategy(
    session: Session, key: str, population: Any, *, margin_rate: float = 0.4, actor: str = "job"
) -> dict[str, Any]:
    """Decide for every user of ``population`` (DataFrame with unit_id + features); returns the plan.

    The decisions are logged as the strategy's next batch run, which supersedes the earlier ones:
    nothing is deleted, the current ledger becomes this run's decisions plus the online decisions
    made after it (``experiments.services.strategy_ledger``). The ledger is locked before the run
    is numbered, so online decisions of the strategy wait for this transaction.
    """
    inputs, model = strategy_inputs(session, key, list(population.columns), margin_rate=margin_rate)
    strategy = get_strategy(session, key)
    shifts, economics, plan = plan_population(inputs, model, population)  # before the lock
    lock = lock_ledger(session, strategy)
    batch_run = start_run(session, strategy, lock, float(np.sum(plan.expected_cost)))
    run = RunRows(
        strategy_id=strategy.id,
        batch_run=batch_run,
        decided_at=utcnow(),
        context={"source": "batch", "model_run_id": inputs.model_run_id},
    )
    ids = inputs.incentive_ids
    units = population["unit_id"].astype(str).tolist()
    incentive = [ids[a] if a >= 0 else None for a in plan.arm.tolist()]
    bucket = [str(b) for b in plan.bucket]
    for start in range(0, len(units), LOG_CHUNK):
        chunk = slice(start, start + LOG_CHUNK)
        insert_decisions(
            session,
            run,
            UserRows(
                unit_id=units[chunk],
                incentive_id=incentive[chunk],
                bucket=bucket[chunk],
                propensity=plan.propensity[chunk].tolist(),
                expected_value=plan.expected_value[chunk].tolist(),
                expected_cost=plan.expected_cost[chunk].tolist(),
            ),
        )
    summary = {k: v for k, v in plan.summary().items()}
    config = {
        **{k: v for k, v in strategy.config.items() if k not in SPARK_PLAN_KEYS},
        "plan": summary,
        "model_run_id": inputs.model_run_id,
        "margin_rate": margin_rate,
        "frontier": profit_frontier(economics.value, economics.cost, strategy.budget),
        "online": serving_state(
            inputs,
            shifts,
            mean_costs(economics.cost),
            spend_curve(economics.value, economics.cost, plan.mu),
        ),
    }
    record_plan(session, strategy, config, users=len(units), actor=actor)
    return summary


def mean_costs(cost: np.ndarray) -> list[float]:
    """Each arm's exact mean expected spend over the population (order-independent, so a Spark
    run's partition sums give the same floats)."""
    return [exact_mean(cost[:, j]) for j in range(cost.shape[1])]


def serving_state(
    inputs: StrategyInputs,
    shifts: Sequence[float | None],
    mean_cost: Sequence[float],
    curve: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """What serving needs to decide a unit this run never saw as this run would have (plain JSON).

    The model run, its feature columns and the arms; the calibration shifts, which are population
    means and cannot be recomputed from one unit; the objective the plan's lambda was solved for;
    and each arm's mean expected spend over the population (``mean_costs``), the cost of an arm
    given to a unit that comes without features (``experiments.services.online_scoring``). The
    single-process run and the Spark run (``experiments.jobs.spark_strategy``) record the same.
    ``curve`` is the plan's spend curve (``experiments.strategy.spend_curve``), from which a
    paced strategy reads each day's lambda (``experiments.services.strategy_pacing``).
    """
    state = {
        "model_run_id": inputs.model_run_id,
        "features": list(inputs.features),
        "arms": list(inputs.arms),
        "calibration_shifts": [None if s is None else float(s) for s in shifts],
        "objective": inputs.objective,
        "mean_cost": [float(c) for c in mean_cost],
    }
    if curve is not None:
        state["spend_curve"] = curve
    return state


def record_plan(
    session: Session, strategy: Any, config: dict[str, Any], *, users: int, actor: str
) -> None:
    """Store a run's ``config`` (its ``"plan"`` summary inside) on the strategy and audit the run;
    shared by the single-process and the Spark engines."""
    plan = config["plan"]
    strategy.config = config
    audit.record(
        session,
        actor=actor,
        action="strategy.run",
        entity_type="strategy",
        entity_id=strategy.key,
        after={"users": users, "spend": plan.get("spend"), "lambda": plan.get("lambda")},
    )
    session.flush()
