"""Causal reports as a use case: build, store and render them (services layer).

Building a report is heavy (torch, DoWhy, EconML): ``experiments.reports`` is imported inside the
functions here, so that the web (which imports this module) stays light until a report is asked
for. ``generate`` builds a report and stores its JSON under ``<artifact_dir>/reports/<key>.json``;
``stored`` reads that file back and ``render_stored`` renders it in any format without rebuilding.
The population features come from ``<artifact_dir>/populations/<key>.parquet``, else the demo's
``<artifact_dir>/demo_population.parquet``, else the report says those sections are unavailable.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from experiments.errors import NotFoundError, ValidationError
from experiments.services.experiments import get_experiment

FORMATS = ("html", "json", "csv")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationError("format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def population_path(artifact_dir: Path, key: str) -> Path | None:
    for candidate in (
        artifact_dir / "populations" / f"{key}.parquet",
        artifact_dir / "demo_population.parquet",
    ):
        if candidate.exists():
            return candidate
    return None


def report_path(artifact_dir: Path, key: str) -> Path:
    return artifact_dir / "reports" / f"{key}.json"


def check_options(k_min: Any, dp_epsilon: Any) -> None:
    """``ValidationError`` naming ``k_min`` or ``epsilon`` for a value a build would refuse."""
    if isinstance(k_min, bool) or not isinstance(k_min, int) or k_min < 1:
        raise ValidationError("k_min", f"k_min must be a whole number >= 1, got {k_min!r}")
    if dp_epsilon is None:
        return
    number = isinstance(dp_epsilon, int | float) and not isinstance(dp_epsilon, bool)
    if not number or not math.isfinite(dp_epsilon) or not dp_epsilon > 0:
        raise ValidationError(
            "epsilon",
            f"epsilon must be a positive finite number (or left out for no noise), "
            f"got {dp_epsilon!r}",
        )


def build(
    session: Session,
    key: str,
    *,
    artifact_dir: Path,
    population: Any = None,
    k_min: int = 50,
    dp_epsilon: float | None = None,
    seed: int = 0,
    uplift_params: dict[str, Any] | None = None,
    refute: bool = True,
    cross_check: bool = True,
) -> dict[str, Any]:
    """Build the report of ``key`` (raises NotFoundError for an unknown experiment)."""
    get_experiment(session, key)
    check_options(k_min, dp_epsilon)
    from experiments.reports import build_report

    return build_report(
        session,
        key,
        population=population if population is not None else population_path(artifact_dir, key),
        k_min=k_min,
        dp_epsilon=dp_epsilon,
        seed=seed,
        uplift_params=uplift_params,
        refute=refute,
        cross_check=cross_check,
    )


def generate(session: Session, key: str, *, artifact_dir: Path, **options: Any) -> dict[str, Any]:
    """Build the report and store its JSON for later downloads; returns the report."""
    report = build(session, key, artifact_dir=artifact_dir, **options)
    path = report_path(artifact_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, allow_nan=False))
    tmp.replace(path)  # never a half-written report
    return report


def stored(session: Session, key: str, *, artifact_dir: Path) -> dict[str, Any] | None:
    """The last generated report of ``key``, or None."""
    get_experiment(session, key)
    path = report_path(artifact_dir, key)
    return json.loads(path.read_text()) if path.exists() else None


def render(report: dict[str, Any], fmt: str) -> tuple[bytes, str, str]:
    """(body, media type, file name) of ``report`` in ``fmt`` (html, json or csv = zip of CSVs)."""
    _check_format(fmt)
    from experiments.reports.render import render as render_report

    return render_report(report, fmt)


def render_stored(
    session: Session, key: str, fmt: str, *, artifact_dir: Path
) -> tuple[bytes, str, str]:
    _check_format(fmt)
    report = stored(session, key, artifact_dir=artifact_dir)
    if report is None:
        raise NotFoundError("report", key)
    return render(report, fmt)
