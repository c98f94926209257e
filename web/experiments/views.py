"""Experiment pages: list, create, detail, edit, lifecycle transitions, coverage ramps, helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from experiments.db import Experiment
from experiments.errors import ConflictError, ValidationError
from experiments.services import audit, catalog, experiments
from experiments.services.power import plan_sample_size
from experiments.services.targeting_sample import qualifying_share
from web.auth.user import actor, role_required
from web.db import get_session
from web.experiments import bp
from web.experiments.convert import form_to_data, parse_condition, show_error
from web.experiments.forms import (
    CoverageForm,
    DraftExperimentForm,
    FilterForm,
    LiveExperimentForm,
    NewExperimentForm,
    TransitionForm,
    initial_data,
)

NEW_DEFAULTS: dict[str, Any] = {
    "coverage": 1.0,
    "variants": [
        {"key": "control", "name": "Control", "weight": 0.5, "incentive": ""},
        {"key": "treatment", "name": "Treatment", "weight": 0.5, "incentive": ""},
    ],
}
# fixed pages start with "_": no experiment key can (keys start with a letter or digit), so
# /experiments/<key> never shadows them
TRANSITION_LABELS = {
    "running": "Start",
    "stopped": "Stop",
    "concluded": "Conclude",
    "archived": "Archive",
}


@bp.route("/")
@role_required("viewer")
def index() -> str:
    filters = FilterForm(request.args)
    rows = experiments.list_experiments(get_session(), status=filters.status.data or None)
    text = (filters.q.data or "").strip().lower()
    if text:
        rows = [e for e in rows if text in e.key.lower() or text in e.name.lower()]
    return render_template("experiments/index.html", rows=rows, filters=filters)


def _share(form: LiveExperimentForm) -> dict[str, Any] | None:
    """The share of the sample population the typed condition admits (None when it is invalid)."""
    if not isinstance(form, DraftExperimentForm) or form.condition.errors:
        return None
    try:
        return qualifying_share(parse_condition(form.condition.data))
    except ValidationError:
        return None


def _form_page(
    form: LiveExperimentForm,
    save: Callable[[dict[str, Any]], Experiment],
    experiment: Experiment | None,
) -> str | Response | tuple[str, int]:
    """Validate, save through the service, or show the form again with the errors in place."""
    session = get_session()
    form.set_choices(catalog.list_incentives(session), catalog.list_metrics(session))
    errors: dict[str, list[str]] = {}
    status = 200
    if form.validate_on_submit():
        try:
            saved = save(form_to_data(form))
        except (ValidationError, ConflictError) as exc:
            session.rollback()
            errors = show_error(form, exc.field, exc.message)
            status = 400
        else:
            session.commit()
            flash(f"Saved experiment {saved.key}.", "success")
            return redirect(url_for("experiments.detail", key=saved.key))
    elif request.method == "POST":
        status = 400
    page = render_template(
        "experiments/form.html",
        form=form,
        errors=errors,
        experiment=experiment,
        share=_share(form) if request.method == "POST" else None,
    )
    return page, status


@bp.route("/_new", methods=["GET", "POST"])
@role_required("analyst")
def new() -> str | Response | tuple[str, int]:
    session = get_session()
    form = NewExperimentForm(data=NEW_DEFAULTS)
    return _form_page(
        form, lambda data: experiments.create_experiment(session, data, actor=actor()), None
    )


@bp.route("/<key>/edit", methods=["GET", "POST"])
@role_required("analyst")
def edit(key: str) -> str | Response | tuple[str, int]:
    session = get_session()
    experiment = experiments.get_experiment(session, key)
    if experiment.status in ("concluded", "archived"):
        flash(f"A {experiment.status} experiment can no longer be edited.", "error")
        return redirect(url_for("experiments.detail", key=key))
    form_class = DraftExperimentForm if experiment.status == "draft" else LiveExperimentForm
    form = form_class(data=initial_data(experiments.snapshot(session, experiment)))
    return _form_page(
        form,
        lambda data: experiments.update_experiment(session, key, data, actor=actor()),
        experiment,
    )


def _detail_page(key: str, ramp_form: CoverageForm | None = None, status: int = 200) -> Any:
    session = get_session()
    experiment = experiments.get_experiment(session, key)
    snapshot = experiments.snapshot(session, experiment)
    incentives = {i.key: i for i in catalog.list_incentives(session)}
    history = [
        a for a in audit.recent(session, limit=500, entity_type="experiment") if a.entity_id == key
    ][:20]
    can_write = current_user.can("analyst")
    page = render_template(
        "experiments/detail.html",
        experiment=experiment,
        snapshot=snapshot,
        incentives=incentives,
        metrics=experiments.metrics_by_role(session, experiment),
        share=qualifying_share(experiment.condition) if experiment.condition else None,
        history=history,
        can_write=can_write,
        transitions=experiments.allowed_transitions(experiment) if can_write else (),
        labels=TRANSITION_LABELS,
        transition_form=TransitionForm(formdata=None),
        ramp_form=ramp_form or CoverageForm(formdata=None, coverage=experiment.coverage),
    )
    return page, status


@bp.route("/<key>")
@role_required("viewer")
def detail(key: str) -> Any:
    return _detail_page(key)


@bp.route("/<key>/status", methods=["POST"])
@role_required("analyst")
def change_status(key: str) -> Response:
    session = get_session()
    form = TransitionForm()
    if not form.validate_on_submit():
        flash("; ".join(form.status.errors) or "Choose a status.", "error")
        return redirect(url_for("experiments.detail", key=key))
    try:
        experiment = experiments.transition(
            session, key, form.status.data or "", actor=actor(), note=form.note.data or None
        )
    except (ValidationError, ConflictError) as exc:
        session.rollback()
        flash(f"Could not change the status: {exc.message}", "error")
    else:
        session.commit()
        flash(f"{experiment.key} is now {experiment.status}.", "success")
    return redirect(url_for("experiments.detail", key=key))


@bp.route("/<key>/coverage", methods=["POST"])
@role_required("analyst")
def ramp(key: str) -> Any:
    session = get_session()
    form = CoverageForm()
    if not form.validate_on_submit():
        return _detail_page(key, ramp_form=form, status=400)
    try:
        experiments.update_experiment(session, key, {"coverage": form.coverage.data}, actor=actor())
    except (ValidationError, ConflictError) as exc:
        session.rollback()
        form.coverage.errors.append(exc.message)
        return _detail_page(key, ramp_form=form, status=400)
    session.commit()
    flash(f"Coverage of {key} is now {form.coverage.data:.0%}.", "success")
    return redirect(url_for("experiments.detail", key=key))


def _float_arg(name: str, default: float | None = None) -> float | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValidationError(name, f"{raw!r} is not a number") from None


@bp.route("/_power")
@role_required("viewer")
def power() -> tuple[Response, int]:
    """The power calculator: sizes per arm and in total, N*, and the duration, as JSON."""
    try:
        plan = plan_sample_size(
            baseline=_float_arg("baseline") or 0.0,
            relative_mde=_float_arg("relative_mde") or 0.0,
            std_dev=_float_arg("std_dev"),
            alpha=_float_arg("alpha", 0.05) or 0.05,
            power=_float_arg("power", 0.8) or 0.8,
            arms=int(_float_arg("arms", 2) or 2),
            daily_units=_float_arg("daily_units"),
            coverage=_float_arg("coverage", 1.0) or 1.0,
        )
    except ValidationError as exc:
        return jsonify({"field": exc.field, "message": exc.message}), 400
    return jsonify(plan.to_dict()), 200


@bp.route("/_targeting-share")
@role_required("viewer")
def targeting_share() -> tuple[Response, int]:
    """The share of the sample population a condition (``?condition=`` JSON) admits."""
    try:
        share = qualifying_share(parse_condition(request.args.get("condition")))
    except ValidationError as exc:
        return jsonify({"field": exc.field, "message": exc.message}), 400
    return jsonify(share), 200
