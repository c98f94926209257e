"""Liveness and readiness: ``/healthz`` checks the database, ``/readyz`` also the schema version."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from werkzeug.wrappers import Response

bp = Blueprint("health", __name__)


def _database_ok() -> tuple[bool, str]:
    engine = current_app.extensions["liftlab.engine"]
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the database is not usable
        return False, f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
    return True, engine.dialect.name


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    ok, detail = _database_ok()
    return jsonify({"status": "ok" if ok else "error", "database": detail}), 200 if ok else 503


@bp.route("/readyz")
def readyz() -> tuple[Response, int]:
    from experiments.db.migrate import current_revision, head_revision

    ok, detail = _database_ok()
    if not ok:
        return jsonify({"status": "error", "database": detail}), 503
    current = current_revision(current_app.extensions["liftlab.engine"])
    head = head_revision()
    ready = current == head
    body = {"status": "ok" if ready else "migrations pending", "schema": current, "head": head}
    if not ready:
        body["fix"] = "run `liftlab db upgrade`"
    return jsonify(body), 200 if ready else 503
