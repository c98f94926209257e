"""The incentive catalog and the form that adds to it."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from experiments.errors import ConflictError, ValidationError
from experiments.services import catalog
from web.auth.user import actor, role_required
from web.db import get_session
from web.experiments.convert import parse_json_object
from web.incentives import bp
from web.incentives.forms import COST_MODELS, KIND_LABELS, IncentiveForm


@bp.route("/")
@role_required("viewer")
def index() -> str:
    return render_template(
        "incentives/index.html",
        incentives=catalog.list_incentives(get_session()),
        kinds=KIND_LABELS,
        cost_models=COST_MODELS,
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required("analyst")
def new() -> str | Response | tuple[str, int]:
    session = get_session()
    form = IncentiveForm()
    status = 200
    if form.validate_on_submit():
        try:
            incentive = catalog.create_incentive(
                session,
                key=(form.key.data or "").strip(),
                name=form.name.data or "",
                kind=form.kind.data or "",
                params=parse_json_object("params", form.params.data, '{"percent": 10}') or {},
                cost_model={"model": form.cost_model.data},
                description=(form.description.data or "").strip() or None,
                actor=actor(),
            )
        except (ValidationError, ConflictError) as exc:
            session.rollback()
            name = exc.field.split(".")[0]  # params.percent → the params field
            target = getattr(form, name, form.key)
            target.errors.append(
                exc.message if name == exc.field else f"{exc.field}: {exc.message}"
            )
            status = 400
        else:
            session.commit()
            flash(f"Added {incentive.name} ({incentive.key}) to the catalog.", "success")
            return redirect(url_for("incentives.index"))
    elif request.method == "POST":
        status = 400
    return render_template("incentives/form.html", form=form), status
