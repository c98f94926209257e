"""Report sections on what was tested and how healthy the randomization was (reports layer).

Design and timeline, the SRM check, exposures by day and events outside the analysis windows are
aggregated by SQL in the database; covariate balance (standardized mean differences of the
population features per arm versus control; Austin 2009, Stat. Med. 28:3083-3107, eq. 1 and 2;
|SMD| > 0.1 is flagged) is computed from the per-unit frame, which never leaves this module.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from experiments.analysis import shift_hours
from experiments.db import Assignment, Event, Experiment, Incentive, Metric
from experiments.reports.privacy import Privacy, suppress

if TYPE_CHECKING:
    import pandas as pd

SMD_FLAG = 0.1


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def design_section(session: Session, experiment: Experiment) -> dict[str, Any]:
    """What was tested: variants (weights, incentives), metrics by role, design, timeline."""
    incentives = {i.id: i.key for i in session.scalars(select(Incentive))}
    metrics = {m.id: m for m in session.scalars(select(Metric))}
    first, last = session.execute(
        select(
            func.min(Assignment.first_exposure_at), func.max(Assignment.first_exposure_at)
        ).where(Assignment.experiment_id == experiment.id)
    ).one()
    return {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "status": experiment.status,
        "coverage": float(experiment.coverage),
        "namespace": experiment.namespace,
        "variants": [
            {
                "key": v.key,
                "name": v.name,
                "weight": float(v.weight),
                "incentive": incentives.get(v.incentive_id) if v.incentive_id else None,
            }
            for v in experiment.variants
        ],
        "metrics": [
            {
                "key": metrics[link.metric_id].key,
                "name": metrics[link.metric_id].name,
                "role": link.role,
                "kind": metrics[link.metric_id].kind,
                "window_hours": metrics[link.metric_id].window_hours,
            }
            for link in experiment.metric_links
        ],
        "design": dict(experiment.design or {}),
        "timeline": {
            "created_at": _iso(experiment.created_at),
            "started_at": _iso(experiment.started_at),
            "first_exposure_at": _iso(first),
            "last_exposure_at": _iso(last),
            "stopped_at": _iso(experiment.stopped_at),
            "concluded_at": _iso(experiment.concluded_at),
        },
    }


def exposures_by_day(session: Session, experiment: Experiment) -> list[dict[str, Any]]:
    """New exposures per UTC day and variant (counted in the database)."""
    day = func.date(Assignment.first_exposure_at)
    keys = {v.id: v.key for v in experiment.variants}
    rows = session.execute(
        select(day.label("day"), Assignment.variant_id, func.count().label("n"))
        .where(Assignment.experiment_id == experiment.id)
        .group_by(day, Assignment.variant_id)
        .order_by(day, Assignment.variant_id)
    ).all()
    return [{"day": str(r.day), "variant": keys.get(r.variant_id), "n": int(r.n)} for r in rows]


def events_outside_windows(session: Session, experiment: Experiment) -> dict[str, Any]:
    """Events of exposed units before their first exposure or after the longest metric window."""
    linked = [session.get(Metric, link.metric_id) for link in experiment.metric_links]
    metrics = [m for m in linked if m is not None]
    hours = int(max(m.window_hours for m in metrics)) if metrics else 24 * 30
    names = sorted({m.event_name for m in metrics})
    joined = and_(Event.unit_id == Assignment.unit_id, Assignment.experiment_id == experiment.id)
    before = Event.occurred_at < Assignment.first_exposure_at
    after = Event.occurred_at >= shift_hours(Assignment.first_exposure_at, hours)
    query = select(
        func.count().label("total"),
        func.sum(case((before, 1), else_=0)).label("before"),
        func.sum(case((after, 1), else_=0)).label("after"),
    ).select_from(Event.__table__.join(Assignment.__table__, joined))
    if names:
        query = query.where(Event.name.in_(names))
    row = session.execute(query).one()
    total, n_before, n_after = int(row.total or 0), int(row.before or 0), int(row.after or 0)
    return {
        "metric_events": names,
        "window_hours": hours,
        "events_of_exposed_units": total,
        "before_first_exposure": n_before,
        "after_window": n_after,
        "inside_windows": total - n_before - n_after,
        "note": "events outside [first exposure, first exposure + window) are excluded from "
        "every metric; events before exposure feed only the CUPED pre-period covariate",
    }


def _smd(mean_t: float, mean_c: float, var_t: float, var_c: float) -> float | None:
    pooled = math.sqrt((var_t + var_c) / 2)
    if pooled == 0:
        return 0.0 if mean_t == mean_c else None
    return float((mean_t - mean_c) / pooled)


def balance(
    frame: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    control: str,
    arms: list[str],
    privacy: Privacy,
) -> list[dict[str, Any]]:
    """SMD of each feature (each level of a categorical) per treatment arm versus control."""
    rows: list[dict[str, Any]] = []
    groups = {arm: frame[frame["arm"] == arm] for arm in [control, *arms]}
    c = groups[control]
    for feature in features:
        if feature in categorical:
            levels = sorted(frame[feature].astype(str).unique())
            as_text = {arm: g[feature].astype(str).to_numpy() for arm, g in groups.items()}
            for level in levels:
                for arm in arms:
                    in_c = (as_text[control] == level).astype(float)
                    in_t = (as_text[arm] == level).astype(float)
                    p_c = float(in_c.mean()) if len(in_c) else float("nan")
                    p_t = float(in_t.mean()) if len(in_t) else float("nan")
                    row = {
                        "feature": feature,
                        "level": level,
                        "arm": arm,
                        "control_mean": p_c,
                        "arm_mean": p_t,
                        "smd": _smd(p_t, p_c, p_t * (1 - p_t), p_c * (1 - p_c)),
                    }
                    suppress(
                        row,
                        [in_c.sum(), in_t.sum()],
                        privacy.k_min,
                        keep=("feature", "level", "arm"),
                    )
                    row["flag"] = bool(row["smd"] is not None and abs(row["smd"]) > SMD_FLAG)
                    rows.append(row)
            continue
        for arm in arms:
            t = groups[arm]
            x_c = c[feature].to_numpy(dtype=float)
            x_t = t[feature].to_numpy(dtype=float)
            smd = _smd(
                float(np.mean(x_t)), float(np.mean(x_c)), float(np.var(x_t)), float(np.var(x_c))
            )
            rows.append(
                {
                    "feature": feature,
                    "level": None,
                    "arm": arm,
                    "control_mean": float(np.mean(x_c)),
                    "arm_mean": float(np.mean(x_t)),
                    "smd": smd,
                    "suppressed": False,
                    "flag": bool(smd is not None and abs(smd) > SMD_FLAG),
                }
            )
    return rows
