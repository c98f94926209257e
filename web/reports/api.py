"""``GET /api/v1/experiments/<key>/report?format=html|json|csv``: the experiment's causal report.

Answers the last generated report; builds (and stores) one when there is none or when
``rebuild=1`` is given. ``k_min`` and ``epsilon`` apply to a build.
"""

from __future__ import annotations

from flask import current_app, request
from werkzeug.wrappers import Response

from experiments.errors import ValidationError
from experiments.services import reporting
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
    built = (
        None
        if request.args.get("rebuild") == "1"
        else reporting.stored(session, key, artifact_dir=artifact_dir)
    )
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
        "Causal report of an experiment (html, json, or csv = a zip of CSV tables)",
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
