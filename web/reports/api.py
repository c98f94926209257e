"""The causal report over the API.

- ``GET /api/v1/experiments/<key>/report?format=html|json|csv``: the last generated report;
  builds (and stores) one inside the request when there is none or when ``rebuild=1`` is given
  (``k_min`` and ``epsilon`` apply to that build). Fine for small experiments; a large one takes
  minutes, longer than a web worker may run: queue it instead. When there is none yet and a
  queued job is building one, it answers 202 with that job instead of building it twice.
- ``POST /api/v1/experiments/<key>/report-jobs`` (JSON ``{"k_min": 50, "epsilon": null}``, both
  optional): queue a build for the report worker (``liftlab report-worker``); 202 with the job
  and its ``Location``. The same options already queued or running answer that job.
- ``GET /api/v1/report-jobs/<id>``: the job (``queued``, ``running``, ``done`` or ``failed`` with
  its error); once done, the GET above answers the new report.
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request, url_for
from werkzeug.wrappers import Response

from experiments.errors import ValidationError
from experiments.services import report_jobs, reporting
from web.api.body import json_object
from web.api.keys import require_scope
from web.api.openapi import PATHS, op
from web.db import get_session
from web.reports import api_bp


def _number(name: str, kind: type, default: object) -> object:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValidationError(name, f"{name} must be a {kind.__name__}, got {raw!r}") from None


@api_bp.route("/experiments/<key>/report", methods=["GET"])
@require_scope("admin")
def report(key: str) -> Response:
    fmt = request.args.get("format", "json")
    if fmt not in reporting.FORMATS:
        raise ValidationError("format", f"format must be one of {', '.join(reporting.FORMATS)}")
    session = get_session()
    artifact_dir = current_app.config["LIFTLAB_SETTINGS"].artifact_dir
    rebuild = request.args.get("rebuild") == "1"
    built = None if rebuild else reporting.stored(session, key, artifact_dir=artifact_dir)
    if built is None and not rebuild:
        pending = report_jobs.latest_job(session, key)
        if pending is not None and pending.status in report_jobs.ACTIVE:
            return _accepted(pending, key)  # the worker is building it: never twice
    if built is None:
        built = reporting.generate(
            session,
            key,
            artifact_dir=artifact_dir,
            k_min=_number("k_min", int, 50),
            dp_epsilon=_number("epsilon", float, None),
        )
        session.rollback()  # nothing to keep in the database
    body, media_type, name = reporting.render(built, fmt)
    disposition = "inline" if fmt != "csv" else "attachment"
    return Response(
        body,
        mimetype=media_type.split(";")[0],
        headers={"Content-Disposition": f'{disposition}; filename="{name}"'},
    )


PATHS["/experiments/{key}/report"] = {
    "get": op(
        "Causal report of an experiment (html, json, or csv = a zip of CSV tables); 202 with the "
        "job while a queued build of the first report runs",
        "admin",
        parameters=[
            {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "format",
                "in": "query",
                "schema": {"type": "string", "enum": ["html", "json", "csv"], "default": "json"},
            },
            {"name": "rebuild", "in": "query", "schema": {"type": "string", "enum": ["1"]}},
            {"name": "k_min", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "epsilon", "in": "query", "schema": {"type": "number"}},
        ],
    )
}


_JOB_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "status": {
    "type": "string", "enum": ["queued", "running", "done", "failed"]}}}  # fmt: skip


@api_bp.route("/experiments/<key>/report-jobs", methods=["POST"])
@require_scope("admin")
def queue_report(key: str) -> Response:
    body = json_object() if request.get_data() else {}
    unknown = sorted(set(body) - {"k_min", "epsilon"})
    if unknown:
        raise ValidationError(unknown[0], "unknown field; send only k_min and epsilon")
    session = get_session()
    job = report_jobs.request_report(
        session,
        key,
        actor=f"api-key:{g.api_key_name}",
        k_min=body.get("k_min", 50),
        dp_epsilon=body.get("epsilon"),
    )
    session.commit()
    return _accepted(job, key)


def _accepted(job: report_jobs.ReportJob, key: str) -> Response:
    """202 with the job and where to follow it."""
    response = jsonify(report_jobs.job_json(job, key))
    response.status_code = 202
    response.headers["Location"] = url_for("reports_api.report_job", job_id=job.id)
    return response


@api_bp.route("/report-jobs/<int:job_id>", methods=["GET"])
@require_scope("admin")
def report_job(job_id: int) -> Response:
    return jsonify(report_jobs.describe(get_session(), job_id))


PATHS["/experiments/{key}/report-jobs"] = {
    "post": op(
        "Queue a causal report build for the report worker (202 with the job)",
        "admin",
        request={
            "type": "object",
            "properties": {
                "k_min": {"type": "integer", "minimum": 1, "default": 50},
                "epsilon": {"type": ["number", "null"], "exclusiveMinimum": 0},
            },
            "additionalProperties": False,
        },
        response=_JOB_SCHEMA,
        parameters=[{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
    )
}
PATHS["/report-jobs/{id}"] = {
    "get": op(
        "A queued report build: queued, running, done or failed (with its error)",
        "admin",
        response=_JOB_SCHEMA,
        parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
    )
}
