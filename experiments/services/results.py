"""Experiment results: refresh from the database's sufficient statistics, keep snapshots.

``refresh`` runs the analysis SQL (inside the database), the statistics engine on its output, and
stores a ``ResultSnapshot`` whose results carry the running minimum of each sequential p-value, so
that looking often never inflates false positives. ``latest`` and ``history`` read snapshots.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.analysis import experiment_statistics, experiment_statistics_sql
from experiments.db import Metric, ResultSnapshot, utcnow
from experiments.db.session import refresh_planner_statistics
from experiments.services import result_math
from experiments.services.experiments import get_experiment


def latest(session: Session, key: str) -> dict[str, Any] | None:
    experiment = get_experiment(session, key)
    snapshot = session.scalar(
        select(ResultSnapshot)
        .where(ResultSnapshot.experiment_id == experiment.id)
        .order_by(ResultSnapshot.computed_at.desc(), ResultSnapshot.id.desc())
        .limit(1)
    )
    return snapshot.results if snapshot else None


def history(session: Session, key: str) -> list[dict[str, Any]]:
    experiment = get_experiment(session, key)
    snapshots = session.scalars(
        select(ResultSnapshot)
        .where(ResultSnapshot.experiment_id == experiment.id)
        .order_by(ResultSnapshot.computed_at, ResultSnapshot.id)
    )
    return [s.results for s in snapshots]


def compute(
    session: Session, key: str, *, as_of: dt.datetime | None = None, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """The results of experiment ``key`` now (or ``as_of``), folding in the previous snapshot."""
    experiment = get_experiment(session, key)
    design = experiment.design or {}
    rows = experiment_statistics(session, experiment.id, as_of=as_of)
    sql = experiment_statistics_sql(session, experiment.id, as_of=as_of) if rows else ""
    metrics_by_key = {m.key: m for m in session.scalars(select(Metric))}
    previous_variants = {
        (m["metric"], v["variant"]): v
        for m in (previous or {}).get("metrics", [])
        for v in m["variants"]
    }
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.metric_key, []).append(row)
    first = next(iter(grouped.values()), [])
    counts = [r.n for r in first] if first else [0] * len(experiment.variants)
    fractions, boundaries = [], None
    if design.get("type") == "group_sequential":
        fractions, boundaries = result_math.group_sequential_looks(design, sum(counts), previous)
    metrics = []
    for metric_key, variant_rows in grouped.items():
        metric = metrics_by_key[metric_key]
        cuped = bool(metric.cuped and design.get("cuped", True) and metric.kind != "ratio")
        control = variant_rows[0]
        variants = [
            {
                "variant": control.variant_key,
                "n": control.n,
                "mean": result_math.variant_mean(control),
                "lift": None,
                "ci": None,
                "p_value": None,
                "p_value_running_min": None,
                "chance_to_win": None,
                "error": None,
            }
        ]
        for row in variant_rows[1:]:
            comparison = result_math.compare(
                control,
                row,
                design=design,
                cuped=cuped,
                boundaries=boundaries,
                role=control.role or "secondary",
                higher_is_better=metric.higher_is_better,
                previous=previous_variants.get((metric_key, row.variant_key)),
            )
            variants.append(
                {
                    "variant": row.variant_key,
                    "n": row.n,
                    "mean": result_math.variant_mean(row),
                    **comparison,
                }
            )
        metrics.append(
            {
                "metric": metric_key,
                "name": metric.name,
                "role": control.role or "secondary",
                "kind": metric.kind,
                "cuped": cuped,
                "higher_is_better": metric.higher_is_better,
                "variants": variants,
                "sql": sql,
            }
        )
    result_math.adjust(metrics)
    order = {"primary": 0, "secondary": 1, "guardrail": 2}
    metrics.sort(key=lambda m: order.get(m["role"], 3))
    srm = result_math.srm(counts, [v.weight for v in experiment.variants])
    computed_at = (as_of or utcnow()).isoformat()
    return {
        "experiment": key,
        "computed_at": computed_at,
        "n_units": int(sum(counts)),
        "design": design,
        "srm": srm,
        "metrics": metrics,
        "recommendation": result_math.recommend(metrics, srm, design),
        "looks": [*(previous or {}).get("looks", []), computed_at],
        "information_fractions": fractions,
    }


def refresh(
    session: Session, key: str, *, actor: str = "system", as_of: dt.datetime | None = None
) -> dict[str, Any]:
    """Compute and store a snapshot; returns its results. Never commits."""
    experiment = get_experiment(session, key)
    if session.get_bind().dialect.name == "sqlite":  # PostgreSQL's autovacuum keeps its own
        refresh_planner_statistics(session, ["events", "assignments"])
    results = compute(session, key, as_of=as_of, previous=latest(session, key))
    results["refreshed_by"] = actor
    session.add(
        ResultSnapshot(
            experiment_id=experiment.id,
            computed_at=as_of or utcnow(),
            n_units=results["n_units"],
            results=results,
            sql=results["metrics"][0]["sql"] if results["metrics"] else None,
        )
    )
    session.flush()
    return results
