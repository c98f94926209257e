"""Serving assignments: which variant a unit gets in each running experiment, recorded sticky.

The first exposure is stored (``assignments``, unique per experiment and unit) and wins for ever:
later weight changes or coverage ramps never move an assigned unit. Concurrent first exposures of
the same unit resolve in the database (``ON CONFLICT DO NOTHING … RETURNING``; only the rows a
concurrent request won are read back). QA-forced variations are served but never recorded, so
they never enter the analysis. The running experiments' configuration comes from
``serving_cache`` (one query per call, compiled again only when it changed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from experiments.assignment import Reason, run_experiment
from experiments.db import Assignment, utcnow
from experiments.errors import ValidationError
from experiments.services import serving_cache
from experiments.services.serving_cache import Arm, RunningExperiment


@dataclass(frozen=True)
class Served:
    experiment: str
    variant: str
    variant_index: int
    incentive: dict[str, Any] | None
    reason: str
    first_exposure_at: dt.datetime | None
    strategy: str | None = None  # the variant serves this strategy's decisions (/api/v1/decide)


def _insert_first_exposures(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(Assignment.__table__).on_conflict_do_nothing(
        index_elements=["experiment_id", "unit_id"]
    )


def record_first_exposures(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert first exposures; a unit already assigned keeps its row (the first exposure wins)."""
    session.execute(_insert_first_exposures(session), rows)


_STORED = (Assignment.experiment_id, Assignment.unit_id, Assignment.variant_id)
StoredRows = dict[tuple[int, str], tuple[int, dt.datetime]]


def _stored(session: Session, experiment_ids: list[int], unit_ids: list[str]) -> StoredRows:
    rows = session.execute(
        select(*_STORED, Assignment.first_exposure_at).where(
            Assignment.unit_id.in_(unit_ids), Assignment.experiment_id.in_(experiment_ids)
        )
    )
    return {(e, u): (v, at) for e, u, v, at in rows}


def _record(session: Session, fresh: list[dict[str, Any]]) -> StoredRows:
    """Insert new first exposures in one statement; read back only those a concurrent request won."""
    statement = _insert_first_exposures(session).returning(*_STORED, Assignment.first_exposure_at)
    rows = session.execute(statement, fresh).all()
    won = {(e, u): (v, at) for e, u, v, at in rows}
    lost = [r for r in fresh if (r["experiment_id"], r["unit_id"]) not in won]
    if lost:
        won |= _stored(
            session,
            sorted({r["experiment_id"] for r in lost}),
            sorted({r["unit_id"] for r in lost}),
        )
    return won


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
    """``assign`` for a batch of units: three queries in all (two when nobody is new).

    The running experiments come from the per-process cache (``serving_cache``, one query), the
    stored first exposures of these units from one query, the new ones go in with one insert.
    ``only``: serve (and record) this running experiment alone.
    """
    if len(units) > MAX_UNITS:
        raise ValidationError("units", f"at most {MAX_UNITS} units per request; split the batch")
    for i, (unit_id, attributes) in enumerate(units):
        _check_unit(i, unit_id, attributes)
    experiments = [
        e for e in serving_cache.running_experiments(session) if only is None or e.key == only
    ]
    if not experiments or not units:
        return [[] for _ in units]
    stored = _stored(session, [e.id for e in experiments], sorted({u for u, _ in units}))
    now = now or utcnow()
    plan: list[list[tuple[RunningExperiment, Arm | None, str]]] = []
    fresh: dict[tuple[int, str], dict[str, Any]] = {}
    for unit_id, attributes in units:
        attrs = {**(attributes or {}), "id": unit_id}
        mine: list[tuple[RunningExperiment, Arm | None, str]] = []
        for experiment in experiments:
            if (experiment.id, unit_id) in stored:
                mine.append((experiment, None, "sticky"))
                continue
            result = run_experiment(experiment.config, attrs)
            if result.variation is None:
                continue
            arm = experiment.arms[result.variation]
            if result.reason == Reason.FORCED:
                mine.append((experiment, arm, "forced"))
                continue
            fresh.setdefault(
                (experiment.id, unit_id),
                {
                    "experiment_id": experiment.id,
                    "unit_id": unit_id,
                    "variant_id": arm.id,
                    "first_exposure_at": now,
                },
            )
            mine.append((experiment, None, "assigned"))
        plan.append(mine)
    if fresh:
        stored |= _record(session, list(fresh.values()))
    out: list[list[Served]] = []
    for (unit_id, _), mine in zip(units, plan, strict=True):
        served = []
        for experiment, forced_arm, reason in mine:
            if forced_arm is not None:  # forced: served, never recorded
                served.append(_served(experiment, forced_arm, reason, None))
                continue
            variant_id, first_exposure_at = stored[(experiment.id, unit_id)]
            served.append(
                _served(experiment, experiment.arm(variant_id), reason, first_exposure_at)
            )
        out.append(served)
    return out


def _served(
    experiment: RunningExperiment, arm: Arm, reason: str, first_exposure_at: dt.datetime | None
) -> Served:
    return Served(
        experiment=experiment.key,
        variant=arm.key,
        variant_index=arm.position,
        incentive=arm.incentive_payload(),
        reason=reason,
        first_exposure_at=first_exposure_at,
        strategy=arm.strategy,
    )


def features_payload(session: Session) -> dict[str, Any]:
    """A GrowthBook-SDK payload: one feature per running experiment, an experiment rule in it.

    The feature's value is the incentive key of the variant (or "none"), so an SDK's
    ``get_feature_value(key)`` answers which incentive to show, assigned exactly as ``assign`` does.
    """
    from experiments.assignment import to_growthbook_experiment

    features: dict[str, Any] = {}
    for experiment in serving_cache.running_experiments(session):
        # a strategy variant's value names the strategy: ask /api/v1/decide for the incentive
        values = [
            a.incentive_key or (f"strategy:{a.strategy}" if a.strategy else "none")
            for a in experiment.arms
        ]
        rule = to_growthbook_experiment(experiment.config, values)
        rule["meta"] = [{"key": a.key, "name": a.name} for a in experiment.arms]
        rule["name"] = experiment.name
        rule.pop("active", None)
        features[experiment.key] = {"defaultValue": "none", "rules": [rule]}
    return {"features": features, "dateUpdated": utcnow().isoformat()}
