"""An experiment's results: the metric table, SRM banner, lift chart, recommendation, winner."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("results", __name__, url_prefix="/experiments")


def init_app(app: Flask) -> None:
    from web.results import views  # noqa: F401 - registers the routes

    app.register_blueprint(bp)
