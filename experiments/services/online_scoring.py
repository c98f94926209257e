"""Online scoring: one unit the batch never saw, priced by the model as the batch run would.

Layer: ``experiments.services`` (behind ``strategies.decide``). The model work is the batch run's
own code (``experiments.jobs.strategy_run``: ``plan_inputs``, ``raw_outcomes``, ``calibrate``,
``population_economics``); torch is imported only when a model is first loaded, so a web worker
that never scores online never loads it.

A unit is scored online when the strategy's last batch plan can be served online and the
request's ``features`` hold every feature column of that plan's model run:

- the plan records its serving state (``config["online"]``, see ``strategy_run.serving_state``):
  the model run, feature columns, arms, calibration shifts and mean costs. Both engines record
  it: the single-process run (``liftlab strategy run``) and the Spark run
  (``--engine spark``, whose exact partition sums give the same floats; a Spark folder loaded
  later brings it from its manifest). The shifts are population means, so one unit cannot
  recompute them, and the lambda belongs to that plan: without a plan there is no lambda, and the
  unit gets the fallback (a lambda of 0 would give every unit its best positive-value arm
  whatever it costs, leaving the budget to the hard cap alone). A plan without serving state (a
  Spark folder written before it was recorded) gives the fallback, as does a plan whose
  objective has changed since.
- the model is loaded once per process and model run (``load_model``, an LRU cache keyed by run
  id and artifact path); an artifact that cannot be read gives the fallback, logged as a warning.

Feature values of the model's columns (a bad one is a 400 naming ``features.<column>``, nothing
is written; every bad column is listed in the error's ``errors``):

- numeric column: a finite JSON number (not a boolean, not null, not a string, not NaN);
- categorical column: a string, or a boolean or integer compared by its string form as in
  training; null, and a level the model never saw in training, score as the model's 'unknown'
  level (``uplift.features``) and are listed in the decision's context under ``unknown_levels``.

Keys beyond the model's columns are allowed and kept in the decision log.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from experiments.db import ModelRun, Strategy
from experiments.errors import ValidationError
from experiments.jobs.strategy_run import (
    StrategyInputs,
    calibrate,
    plan_inputs,
    population_economics,
    raw_outcomes,
)
from experiments.strategy import Economics

log = logging.getLogger(__name__)

MODEL_CACHE_SIZE = 4  # model runs kept loaded per process


@dataclass(frozen=True)
class OnlinePlan:
    """The last batch plan of a strategy, as serving needs it."""

    inputs: StrategyInputs
    shifts: list[float | None]
    lambda_: float
    mu: np.ndarray
    mean_cost: dict[str, float]  # arm -> mean expected spend over the batch population


def servable_plan(session: Session, strategy: Strategy) -> tuple[OnlinePlan | None, str]:
    """The strategy's plan for online scoring, or None and the reason it cannot be used."""
    config = strategy.config or {}
    plan, state = config.get("plan"), config.get("online")
    if not plan:
        return None, "no_batch_plan"
    if not state or state.get("model_run_id") != config.get("model_run_id"):
        return None, "plan_without_serving_state"
    if state.get("objective") != strategy.objective:
        return None, "objective_changed"
    run = session.get(ModelRun, state["model_run_id"])
    if run is None or not run.artifact_path:
        return None, "model_unavailable"
    inputs = plan_inputs(
        session,
        strategy,
        run,
        state["arms"],
        state["features"],
        margin_rate=float(config.get("margin_rate", 0.4)),
    )
    online = OnlinePlan(
        inputs=inputs,
        shifts=list(state["calibration_shifts"]),
        lambda_=float(plan["lambda"]),
        mu=np.asarray(plan.get("mu") or [0.0] * len(inputs.arms), dtype=np.float64),
        mean_cost=dict(zip(state["arms"], state["mean_cost"], strict=True)),
    )
    return online, ""


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def load_model(run_id: int, artifact_path: str) -> Any:
    """The uplift model of run ``run_id``, loaded once per process (failures are not cached)."""
    from uplift import UpliftModel

    return UpliftModel.load(Path(artifact_path))


def plan_model(plan: OnlinePlan) -> Any | None:
    """The plan's model, or None (logged) when its artifact cannot be read."""
    try:
        return load_model(plan.inputs.model_run_id, plan.inputs.artifact_path)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning(
            "strategy %s: model run %s at %s cannot be loaded (%s); serving the fallback",
            plan.inputs.key,
            plan.inputs.model_run_id,
            plan.inputs.artifact_path,
            exc,
        )
        return None


def _bad(name: str, value: Any, want: str) -> dict[str, object]:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return {"field": f"features.{name}", "reason": f"must be {want}; got {shown}"}


def unit_features(
    model: Any, columns: list[str], features: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The unit's model columns checked and typed, and its levels the model does not know.

    Raises ``ValidationError`` (field ``features.<column>``) for a bad value of a present model
    column; absent columns are the caller's (the fallback is served).
    """
    encoder = model.encoder_
    categorical = set(encoder.categorical_columns)
    row: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    problems: list[dict[str, object]] = []
    for name in columns:
        if name not in features:
            continue
        value = features[name]
        if name not in categorical:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value):
                problems.append(_bad(name, value, "a finite number (this model column is numeric)"))
            else:
                row[name] = float(value)
        elif value is None:
            row[name] = None
            unknown[name] = None
        elif isinstance(value, str | bool | int):
            row[name] = str(value)
            if row[name] not in encoder.levels[name]:
                unknown[name] = value
        else:
            problems.append(_bad(name, value, "a string (a level of this categorical column)"))
    if problems:
        first = problems[0]
        raise ValidationError(
            str(first["field"]),
            f"{first['reason']}; fix it, or leave the key out to get the fallback",
            problems,
        )
    return row, unknown


def unit_economics(
    plan: OnlinePlan, model: Any, row: Mapping[str, Any], categorical: list[str]
) -> Economics:
    """Value and expected spend of every plan arm for one unit: the batch run's economics and
    calibration (the plan's shifts), applied to a one-row frame of its model columns."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            name: pd.Series([row[name]], dtype=object if name in categorical else np.float64)
            for name in plan.inputs.features
        }
    )
    p, revenue = raw_outcomes(model, frame, plan.inputs.arms)
    p, order_value = calibrate(p, revenue, plan.shifts)
    return population_economics(plan.inputs, p, order_value)
