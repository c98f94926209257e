"""Strategies in the admin: list, configuration, the plan, the profit frontier, decisions, ledger."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("strategy", __name__, url_prefix="/strategy")


def init_app(app: Flask) -> None:
    from web.strategy import pacing, views  # noqa: F401 - registers the routes

    app.register_blueprint(bp)
