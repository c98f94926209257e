"""The incentive catalog in the admin: kinds, parameters and cost models; creating incentives."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("incentives", __name__, url_prefix="/incentives")


def init_app(app: Flask) -> None:
    from web.incentives import views  # noqa: F401 - registers the routes

    app.register_blueprint(bp)
