"""Model-run pages: the list with metrics, one run (Qini curves per arm), promote and demote.

Training is a job (``liftlab models train EXPERIMENT --population PATH``); these pages read the
recorded runs and never load a model.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from experiments.db import ModelRun
from experiments.errors import ConflictError
from experiments.services import models, strategies
from web.auth.user import actor, role_required
from web.db import get_session
from web.models import bp
from web.models.chart import qini_chart
from web.models.forms import PromotionForm


def arm_rows(run: ModelRun) -> list[dict[str, Any]]:
    """Qini and AUUC per arm, in the model's arm order."""
    metrics = run.metrics or {}
    qini, auuc = metrics.get("qini") or {}, metrics.get("auuc") or {}
    arms = list(metrics.get("arms") or []) or sorted(set(qini) | set(auuc))
    share = metrics.get("policy_share") or {}
    return [
        {"arm": a, "qini": qini.get(a), "auuc": auuc.get(a), "share": share.get(a)} for a in arms
    ]


@bp.route("/")
@role_required("viewer")
def index() -> str:
    session = get_session()
    runs = models.list_runs(session)
    return render_template(
        "models/index.html",
        runs=runs,
        arms={r.id: arm_rows(r) for r in runs},
        experiment_keys=models.experiment_keys(session),
    )


@bp.route("/<int:run_id>")
@role_required("viewer")
def show(run_id: int) -> str:
    session = get_session()
    run = models.get_run(session, run_id)
    using = [
        s
        for s in strategies.list_strategies(session)
        if s.model_run_id == run.id or (s.config or {}).get("model_run_id") == run.id
    ]
    return render_template(
        "models/show.html",
        run=run,
        experiment_key=models.experiment_keys(session).get(run.experiment_id or 0),
        arms=arm_rows(run),
        chart=qini_chart((run.metrics or {}).get("qini_curves") or {}),
        strategies=using,
        can_promote=current_user.can("analyst"),
        form=PromotionForm(formdata=None),
    )


def _change(run_id: int, promote: bool) -> Response:
    session = get_session()
    form = PromotionForm()
    if not form.validate_on_submit():  # pragma: no cover - CSRFProtect refuses first
        flash("The form expired; try again.", "error")
        return redirect(url_for("models.show", run_id=run_id))
    change = models.promote if promote else models.demote
    try:
        run = change(session, run_id, actor=actor())
    except ConflictError as exc:
        session.rollback()
        flash(f"Nothing changed: {exc.message}", "error")
    else:
        session.commit()
        flash(f"Model run {run.id} {'promoted' if promote else 'demoted'}.", "success")
    return redirect(url_for("models.show", run_id=run_id))


@bp.route("/<int:run_id>/promote", methods=["POST"])
@role_required("analyst")
def promote(run_id: int) -> Response:
    return _change(run_id, promote=True)


@bp.route("/<int:run_id>/demote", methods=["POST"])
@role_required("analyst")
def demote(run_id: int) -> Response:
    return _change(run_id, promote=False)
