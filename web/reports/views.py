"""The report page: the last generated report with its downloads, and generating a new one."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from experiments.errors import NotFoundError
from experiments.services import experiments, report_jobs, reporting
from web.auth.user import actor, role_required
from web.db import get_session
from web.reports import bp
from web.reports.forms import GenerateForm


def _artifact_dir():  # type: ignore[no-untyped-def]
    return current_app.config["LIFTLAB_SETTINGS"].artifact_dir


@bp.route("/<key>/report")
@role_required("viewer")
def show(key: str) -> str:
    session = get_session()
    experiment = experiments.get_experiment(session, key)
    report = reporting.stored(session, key, artifact_dir=_artifact_dir())
    return render_template(
        "reports/show.html",
        experiment=experiment,
        report=report,
        job=report_jobs.latest_job(session, key),
        formats=reporting.FORMATS,
        can_generate=current_user.can("analyst"),
        form=GenerateForm(formdata=None),
    )


@bp.route("/<key>/report/generate", methods=["POST"])
@role_required("analyst")
def generate(key: str) -> Response:
    """Queue a build: the report worker builds it (minutes for a large experiment, longer than
    a request may run); the report page shows the job until it is done."""
    session = get_session()
    experiments.get_experiment(session, key)  # 404 for an unknown key
    form = GenerateForm()
    if not form.validate_on_submit():
        abort(400, description="k must be a whole number >= 1 and epsilon a positive number.")
    epsilon = float(form.epsilon.data) if form.epsilon.data is not None else None
    job = report_jobs.request_report(
        session, key, actor=actor(), k_min=form.k_min.data, dp_epsilon=epsilon
    )
    session.commit()
    flash(
        f"Report queued (job {job.id}); the report worker builds it, and this page shows it "
        "when it is done.",
        "success",
    )
    return redirect(url_for("reports.show", key=key))


@bp.route("/<key>/report.<fmt>")
@role_required("viewer")
def download(key: str, fmt: str) -> Response:
    if fmt not in ("html", "json", "zip"):
        abort(404)
    session = get_session()
    try:
        body, media_type, name = reporting.render_stored(
            session, key, "csv" if fmt == "zip" else fmt, artifact_dir=_artifact_dir()
        )
    except NotFoundError:
        abort(404, description="No report yet: an analyst can generate one on the report page.")
    disposition = "inline" if fmt == "html" else "attachment"
    return Response(
        body,
        mimetype=media_type.split(";")[0],
        headers={"Content-Disposition": f'{disposition}; filename="{name}"'},
    )
