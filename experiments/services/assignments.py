"""Serving assignments: which variant a unit gets in each running experiment, recorded sticky.

The first exposure is stored (``assignments``, unique per experiment and unit) and wins for ever:
later weight changes or coverage ramps never move an assigned unit. Concurrent first exposures of
the same unit resolve in the database (``ON CONFLICT DO NOTHING``, then read back the winner).
QA-forced variations are served but never recorded, so they never enter the analysis.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from experiments.assignment import Reason, run_experiment
from experiments.db import Assignment, Experiment, Incentive, Strategy, utcnow
from experiments.errors import ValidationError
from experiments.services.experiments import assignment_config


@dataclass(frozen=True)
class Served:
    experiment: str
    variant: str
    variant_index: int
    incentive: dict[str, Any] | None
    reason: str
    first_exposure_at: dt.datetime | None
    strategy: str | None = None  # the variant serves this strategy's decisions (/api/v1/decide)


def record_first_exposures(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert first exposures; a unit already assigned keeps its row (the first exposure wins)."""
    table = Assignment.__table__
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing(
        index_elements=["experiment_id", "unit_id"]
    )
    session.execute(statement, rows)


def running_experiments(session: Session) -> list[Experiment]:
    return list(
        session.scalars(
            select(Experiment)
            .where(Experiment.status == "running")
            .options(selectinload(Experiment.variants))
            .order_by(Experiment.id)
        )
    )


MAX_UNITS = 1_000


def _check_unit(index: int | None, unit_id: Any, attributes: Any) -> None:
    where = "" if index is None else f"units[{index}]."
    if not isinstance(unit_id, str) or not unit_id.strip() or len(unit_id) > 200:
        raise ValidationError(
            f"{where}unit_id", "give a non-empty string of at most 200 characters"
        )
    if attributes is not None and not isinstance(attributes, Mapping):
        raise ValidationError(f"{where}attributes", "must be an object of user attributes")


def assign(
    session: Session,
    unit_id: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    now: dt.datetime | None = None,
) -> list[Served]:
    """Serve ``unit_id`` in every running experiment it qualifies for; record first exposures."""
    _check_unit(None, unit_id, attributes)
    return assign_many(session, [(unit_id, attributes)], now=now)[0]


def assign_many(
    session: Session,
    units: list[tuple[str, Mapping[str, Any] | None]],
    *,
    now: dt.datetime | None = None,
    only: str | None = None,
) -> list[list[Served]]:
    """``assign`` for a batch of units with a handful of queries in all (server-side batching).

    ``only``: serve (and record) this running experiment alone.
    """
    if len(units) > MAX_UNITS:
        raise ValidationError("units", f"at most {MAX_UNITS} units per request; split the batch")
    for i, (unit_id, attributes) in enumerate(units):
        _check_unit(i, unit_id, attributes)
    experiments = [e for e in running_experiments(session) if only is None or e.key == only]
    if not experiments or not units:
        return [[] for _ in units]
    ids = [e.id for e in experiments]
    unit_ids = list({u for u, _ in units})

    def stored_rows() -> dict[tuple[int, str], Assignment]:
        rows = session.scalars(
            select(Assignment).where(
                Assignment.unit_id.in_(unit_ids), Assignment.experiment_id.in_(ids)
            )
        )
        return {(r.experiment_id, r.unit_id): r for r in rows}

    stored = stored_rows()
    incentives = {i.id: i for i in session.scalars(select(Incentive))}
    strategies = _strategy_keys(session, experiments)
    configs = {e.id: assignment_config(e) for e in experiments}
    now = now or utcnow()
    plan: list[list[tuple[Experiment, Any, str]]] = []
    fresh: dict[tuple[int, str], dict[str, Any]] = {}
    for unit_id, attributes in units:
        attrs = {**(attributes or {}), "id": unit_id}
        mine: list[tuple[Experiment, Any, str]] = []
        for experiment in experiments:
            if (experiment.id, unit_id) in stored:
                mine.append((experiment, None, "sticky"))
                continue
            result = run_experiment(configs[experiment.id], attrs)
            if result.variation is None:
                continue
            variant = experiment.variants[result.variation]
            if result.reason == Reason.FORCED:
                mine.append((experiment, variant, "forced"))
                continue
            fresh.setdefault(
                (experiment.id, unit_id),
                {
                    "experiment_id": experiment.id,
                    "unit_id": unit_id,
                    "variant_id": variant.id,
                    "first_exposure_at": now,
                },
            )
            mine.append((experiment, None, "assigned"))
        plan.append(mine)
    if fresh:
        record_first_exposures(session, list(fresh.values()))
        stored = stored_rows()
    out: list[list[Served]] = []
    for (unit_id, _), mine in zip(units, plan, strict=True):
        served = []
        for experiment, variant, reason in mine:
            if variant is not None:  # forced: served, never recorded
                served.append(_served(experiment, variant, incentives, strategies, reason, None))
                continue
            row = stored[(experiment.id, unit_id)]
            chosen = next(v for v in experiment.variants if v.id == row.variant_id)
            served.append(
                _served(experiment, chosen, incentives, strategies, reason, row.first_exposure_at)
            )
        out.append(served)
    return out


def _strategy_keys(session: Session, experiments: list[Experiment]) -> dict[int, str]:
    """Keys of the strategies that variants serve (no query when no variant serves one)."""
    ids = {v.strategy_id for e in experiments for v in e.variants if v.strategy_id}
    if not ids:
        return {}
    rows = session.execute(select(Strategy.id, Strategy.key).where(Strategy.id.in_(ids)))
    return {strategy_id: key for strategy_id, key in rows}


def _served(
    experiment: Experiment,
    variant: Any,
    incentives: Mapping[int, Incentive],
    strategies: Mapping[int, str],
    reason: str,
    first_exposure_at: dt.datetime | None,
) -> Served:
    incentive = incentives.get(variant.incentive_id) if variant.incentive_id else None
    payload = (
        {
            "key": incentive.key,
            "kind": incentive.kind,
            "name": incentive.name,
            "params": incentive.params,
        }
        if incentive is not None
        else None
    )
    return Served(
        experiment=experiment.key,
        variant=variant.key,
        variant_index=variant.position,
        incentive=payload,
        reason=reason,
        first_exposure_at=first_exposure_at,
        strategy=strategies.get(variant.strategy_id) if variant.strategy_id else None,
    )


def features_payload(session: Session) -> dict[str, Any]:
    """A GrowthBook-SDK payload: one feature per running experiment, an experiment rule in it.

    The feature's value is the incentive key of the variant (or "none"), so an SDK's
    ``get_feature_value(key)`` answers which incentive to show, assigned exactly as ``assign`` does.
    """
    from experiments.assignment import to_growthbook_experiment

    incentives = {i.id: i.key for i in session.scalars(select(Incentive))}
    running = running_experiments(session)
    strategies = _strategy_keys(session, running)
    features: dict[str, Any] = {}
    for experiment in running:
        # a strategy variant's value names the strategy: ask /api/v1/decide for the incentive
        values = [
            incentives.get(v.incentive_id, "none")
            if v.incentive_id
            else (f"strategy:{strategies[v.strategy_id]}" if v.strategy_id else "none")
            for v in experiment.variants
        ]
        rule = to_growthbook_experiment(assignment_config(experiment), values)
        rule["meta"] = [{"key": v.key, "name": v.name} for v in experiment.variants]
        rule["name"] = experiment.name
        rule.pop("active", None)
        features[experiment.key] = {"defaultValue": "none", "rules": [rule]}
    return {"features": features, "dateUpdated": utcnow().isoformat()}
