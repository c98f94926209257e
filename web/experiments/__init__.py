"""Experiments in the admin: list and filters, the create/edit form, the lifecycle, coverage ramps."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("experiments", __name__, url_prefix="/experiments")


def init_app(app: Flask) -> None:
    from web.experiments import views  # noqa: F401 - registers the routes

    app.register_blueprint(bp)
