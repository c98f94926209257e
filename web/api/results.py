"""Experiment results over the API: the latest snapshot, its history, and a refresh."""

from __future__ import annotations

from flask import g, jsonify
from werkzeug.wrappers import Response

from experiments.services import results
from web.api import bp
from web.api.keys import require_scope
from web.api.openapi import PATHS, op
from web.db import get_session


@bp.route("/experiments/<key>/results", methods=["GET"])
@require_scope("admin")
def latest_results(key: str) -> Response:
    session = get_session()
    return jsonify(
        {"latest": results.latest(session, key), "history": results.history(session, key)}
    )


@bp.route("/experiments/<key>/refresh", methods=["POST"])
@require_scope("admin")
def refresh_results(key: str) -> Response:
    session = get_session()
    body = results.refresh(session, key, actor=f"api-key:{g.api_key_name}")
    session.commit()
    return jsonify(body)


_KEY = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}]
PATHS["/experiments/{key}/results"] = {
    "get": op("Latest results and their history (one entry per refresh)", "admin", parameters=_KEY)
}
PATHS["/experiments/{key}/refresh"] = {
    "post": op(
        "Recompute results inside the database and store a snapshot", "admin", parameters=_KEY
    )
}
