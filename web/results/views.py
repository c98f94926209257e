"""The results page, its refresh, and declaring the winner.

The results service (``experiments.services.results``: ``latest``, ``history``, ``refresh``) is
imported when a page needs it, so the admin runs, and says "No results yet", before it exists.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from experiments.errors import ConflictError, ValidationError
from experiments.services import experiments
from web.auth.user import actor, role_required
from web.db import get_session
from web.results import bp
from web.results.chart import lift_chart
from web.results.forms import RefreshForm, WinnerForm

RESULTS_MODULE = "experiments.services.results"


def results_service() -> ModuleType | None:
    """The results service, or None while it is not installed."""
    try:
        return importlib.import_module(RESULTS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != RESULTS_MODULE:
            raise
        return None


def _suggested_winner(results: dict[str, Any] | None) -> str | None:
    """The variant with the best chance to win (else the largest lift) on the primary metric."""
    for metric in (results or {}).get("metrics", []):
        if metric.get("role") != "primary":
            continue
        ranked = [v for v in metric["variants"] if v.get("lift") is not None]
        if not ranked:
            return None
        best = max(ranked, key=lambda v: (v.get("chance_to_win") or 0.0, v["lift"]))
        return str(best["variant"])
    return None


def _chart_metric(results: dict[str, Any] | None) -> tuple[str, str] | None:
    metrics = (results or {}).get("metrics", [])
    wanted = request.args.get("chart")
    for metric in metrics:
        if metric["metric"] == wanted:
            return metric["metric"], metric.get("name") or metric["metric"]
    primary = [m for m in metrics if m.get("role") == "primary"] or metrics
    return (
        (primary[0]["metric"], primary[0].get("name") or primary[0]["metric"]) if primary else None
    )


@bp.route("/<key>/results")
@role_required("viewer")
def show(key: str) -> str:
    session = get_session()
    experiment = experiments.get_experiment(session, key)
    service = results_service()
    latest = service.latest(session, key) if service else None
    history = service.history(session, key) if service and latest else []
    chosen = _chart_metric(latest)
    chart = lift_chart(history or [latest], *chosen) if chosen and latest else None
    winner_form = WinnerForm(formdata=None, winner=_suggested_winner(latest))
    winner_form.winner.choices = [v.key for v in experiment.variants]
    can_declare = current_user.can("analyst") and experiment.status in ("running", "stopped")
    return render_template(
        "results/show.html",
        experiment=experiment,
        results=latest,
        chart=chart,
        engine_ready=service is not None,
        can_refresh=current_user.can("analyst") and service is not None,
        can_declare=can_declare,
        winner_form=winner_form,
        refresh_form=RefreshForm(formdata=None),
    )


@bp.route("/<key>/results/refresh", methods=["POST"])
@role_required("analyst")
def refresh(key: str) -> Response:
    session = get_session()
    experiments.get_experiment(session, key)  # 404 for an unknown key
    service = results_service()
    if service is None:
        flash("The results engine is not installed yet; nothing was computed.", "error")
        return redirect(url_for("results.show", key=key))
    service.refresh(session, key, actor=actor())
    session.commit()
    flash("Results refreshed.", "success")
    return redirect(url_for("results.show", key=key))


@bp.route("/<key>/results/winner", methods=["POST"])
@role_required("analyst")
def declare_winner(key: str) -> Response:
    """Conclude the experiment with a winner; a running one is stopped first (both audited)."""
    session = get_session()
    experiment = experiments.get_experiment(session, key)
    form = WinnerForm()
    form.winner.choices = [v.key for v in experiment.variants]
    if not form.validate_on_submit():
        abort(400, description="Choose one of the experiment's variants as the winner.")
    note = form.note.data or f"winner {form.winner.data} declared from the results page"
    try:
        if experiment.status == "running":
            experiments.transition(session, key, "stopped", actor=actor(), note=note)
        experiments.transition(
            session, key, "concluded", actor=actor(), winner=form.winner.data, note=note
        )
    except (ValidationError, ConflictError) as exc:
        session.rollback()
        flash(f"No winner declared: {exc.message}", "error")
    else:
        session.commit()
        flash(
            f"{form.winner.data} declared the winner of {key}; the experiment is concluded.",
            "success",
        )
    return redirect(url_for("results.show", key=key))
