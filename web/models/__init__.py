"""Uplift model runs in the admin: the list with their metrics, a run's Qini curves, promotion."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("models", __name__, url_prefix="/models")


def init_app(app: Flask) -> None:
    from web.models import views  # noqa: F401 - registers the routes

    app.register_blueprint(bp)
