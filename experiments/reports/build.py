"""``build_report``: every section of an experiment's causal report as one JSON-ready dict.

Layer: reports (an entry-point-level package like ``experiments.jobs``: it may import ``uplift``,
torch, and, through ``uplift.causal*``, EconML and DoWhy, always inside functions). Sections (see
docs/report_schema.md): experiment (design and timeline), data_quality, average_effects,
heterogeneity, refutations, cross_check, decision, flags, privacy, appendix. No unit id is ever
put in the report: per-unit rows stay inside this package and leave only as aggregates.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.analysis import experiment_statistics, experiment_statistics_sql
from experiments.db import Metric, Strategy, utcnow
from experiments.errors import ValidationError
from experiments.reports import effects, heterogeneity, quality
from experiments.reports.privacy import Privacy
from experiments.services import result_math, results
from experiments.services.experiments import get_experiment

SCHEMA_VERSION = 1
PACKAGES = (
    "liftlab",
    "numpy",
    "pandas",
    "scipy",
    "sqlalchemy",
    "torch",
    "scikit-learn",
    "dowhy",
    "econml",
    "lightgbm",
)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextlib.contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the wall seconds spent inside the block to ``timings[phase]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - started


def _population(population: Any) -> Any:
    if population is None:
        return None
    from experiments.jobs.training_data import load_population

    if isinstance(population, str | Path):
        return load_population(Path(population))
    return population


def _strategies(session: Session, experiment_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Strategy).where(Strategy.source_experiment_id == experiment_id).order_by(Strategy.id)
    )
    return [
        {
            "key": s.key,
            "name": s.name,
            "status": s.status,
            "objective": s.objective,
            "model_run_id": s.model_run_id,
            "approved_incentives": list(s.approved_incentives or []),
            "budget": float(s.budget),
            "budget_period_days": int(s.budget_period_days),
            "holdout_share": float(s.holdout_share),
            "explore_share": float(s.explore_share),
        }
        for s in rows
    ]


def _flags(report: dict[str, Any]) -> list[str]:
    flags = []
    srm = report["data_quality"]["srm"]
    if srm.get("alert"):
        flags.append(f"sample ratio mismatch (p = {srm['p_value']:.2g})")
    imbalanced = [
        f"{r['feature']}{'=' + r['level'] if r['level'] else ''} ({r['arm']}, SMD {r['smd']:+.2f})"
        for r in report["data_quality"].get("balance") or []
        if r.get("flag")
    ]
    if imbalanced:
        flags.append("covariate imbalance (|SMD| > 0.1): " + ", ".join(imbalanced[:8]))
    for arm in (report.get("refutations") or {}).get("arms", []):
        failed = [t["test"] for t in arm["tests"] if not t["passed"]]
        if failed:
            flags.append(f"refutation failed for {arm['arm']}: {', '.join(failed)}")
    return flags


def build_report(
    session: Session,
    key: str,
    *,
    population: Any = None,
    k_min: int = 50,
    dp_epsilon: float | None = None,
    uplift_params: dict[str, Any] | None = None,
    seed: int = 0,
    refute: bool = True,
    cross_check: bool = True,
    refute_simulations: int = 5,
) -> dict[str, Any]:
    """The report of experiment ``key``; ``population`` (DataFrame or Parquet path, keyed by
    ``unit_id``) enables balance, heterogeneity, refutations and the cross-check.

    Average effects, SRM and CUPED always use every exposed unit (SQL pushdown); the model work
    (uplift training, refutations, cross-check) runs on random samples of the randomized units
    whose sizes the report states (``heterogeneity.MAX_TRAIN_ROWS``, ``checks.MAX_ROWS``,
    ``checks.CROSS_CHECK_ROWS``). ``appendix.timings_seconds`` holds the wall time of each phase.
    """
    privacy = Privacy(k_min=k_min, dp_epsilon=dp_epsilon, seed=seed)
    rng = np.random.default_rng([seed, 7])
    timings: dict[str, float] = {}
    with timed(timings, "statistics"):
        experiment = get_experiment(session, key)
        design = quality.design_section(session, experiment)
        rows = experiment_statistics(session, experiment.id)
        sql = experiment_statistics_sql(session, experiment.id) if rows else ""
        snapshot = results.latest(session, key)
        first_metric = rows[0].metric_key if rows else None
        counts = [r.n for r in rows if r.metric_key == first_metric] or [0] * len(
            experiment.variants
        )
        names = {m.key: m.name for m in session.scalars(select(Metric))}
        srm = result_math.srm(counts, [v.weight for v in experiment.variants])
        average = effects.average_effects(rows, experiment.design or {}, names, snapshot)
    with timed(timings, "quality"):
        report: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "generated_at": utcnow().isoformat(),
            "experiment": design,
            "privacy": privacy.describe(),
            "data_quality": {
                "n_units": int(sum(counts)),
                "srm": srm,
                "exposures_by_day": quality.exposures_by_day(session, experiment),
                "events_outside_windows": quality.events_outside_windows(session, experiment),
                "balance": None,
            },
            "average_effects": average,
            "heterogeneity": None,
            "refutations": None,
            "cross_check": None,
            "unavailable": {},
        }
    frame = None
    with timed(timings, "unit_outcomes"):
        population = _population(population)
        if population is None:
            reason = (
                "no population features were given (pass a population Parquet keyed by unit_id)"
            )
            for section in ("balance", "heterogeneity", "refutations", "cross_check"):
                report["unavailable"][section] = reason
        else:
            from experiments.jobs.training_data import training_frame

            try:
                frame = training_frame(session, key, population)
            except ValidationError as exc:
                for section in ("balance", "heterogeneity", "refutations", "cross_check"):
                    report["unavailable"][section] = exc.message
        if frame is not None:
            frame = frame.sort_values("unit_id", kind="mergesort").reset_index(drop=True)
    if frame is not None:
        _model_sections(
            report,
            session,
            experiment.id,
            frame,
            design,
            privacy,
            rng,
            timings,
            uplift_params=uplift_params,
            seed=seed,
            refute=refute,
            cross_check=cross_check,
            refute_simulations=refute_simulations,
        )
    report["decision"] = {
        "status": experiment.status,
        "winner": experiment.winner_variant_key,
        "recommendation": (snapshot or {}).get("recommendation"),
        "snapshot_computed_at": (snapshot or {}).get("computed_at"),
        "strategies": _strategies(session, experiment.id),
    }
    report["flags"] = _flags(report)
    report["appendix"] = {
        "sql": {"statistics": sql},
        "sql_note": "the per-unit outcomes behind the heterogeneity sections come from "
        "experiments.jobs.training_data.unit_outcomes (aggregated per unit in the database)",
        "versions": versions(),
        "seed": seed,
        "timings_seconds": {phase: round(seconds, 3) for phase, seconds in timings.items()},
    }
    return clean(report)


def _model_sections(
    report: dict[str, Any],
    session: Session,
    experiment_id: int,
    frame: Any,
    design: dict[str, Any],
    privacy: Privacy,
    rng: np.random.Generator,
    timings: dict[str, float],
    *,
    uplift_params: dict[str, Any] | None,
    seed: int,
    refute: bool,
    cross_check: bool,
    refute_simulations: int,
) -> None:
    """Balance, heterogeneity, refutations and the cross-check, from the per-unit frame."""
    features, categorical = heterogeneity.feature_columns(frame)
    arm_of = {v["key"]: v["incentive"] or "none" for v in design["variants"]}
    arms = [a for a in dict.fromkeys(arm_of.values()) if a != "none"]
    with timed(timings, "quality"):
        report["data_quality"]["balance"] = quality.balance(
            frame, features, categorical, "none", arms, privacy
        )
    with timed(timings, "uplift_training"):
        model, info, evaluate = heterogeneity.fit_or_load(
            session, experiment_id, frame, features, uplift_params, seed
        )
    with timed(timings, "heterogeneity"):
        scores = heterogeneity.predicted_effects(model, frame[features])
        report["heterogeneity"] = heterogeneity.heterogeneity_section(
            frame, model, info, evaluate, arms, categorical, privacy, rng, scores
        )
    if refute:
        from experiments.reports.checks import refutations

        with timed(timings, "refutations"):
            report["refutations"] = refutations(
                frame, features, categorical, arms, seed=seed, num_simulations=refute_simulations
            )
    else:
        report["unavailable"]["refutations"] = "not requested"
    if cross_check:
        from experiments.reports.checks import cross_check as run_cross_check

        with timed(timings, "cross_check"):
            columns = {arm: model.arm_index(arm) for arm in arms}
            report["cross_check"] = run_cross_check(
                frame, features, scores["conversion"], columns, seed=seed
            )
    else:
        report["unavailable"]["cross_check"] = "not requested"
