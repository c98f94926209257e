"""Causal reports in the admin (page, generate, downloads) and over the API (``/api/v1``).

Thin views over ``experiments.services.reporting``; the report builder (torch, DoWhy, EconML) is
imported by that service only when a report is built, never by the web layer.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("reports", __name__, url_prefix="/experiments")
api_bp = Blueprint("reports_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from web.extensions import csrf
    from web.reports import api, views  # noqa: F401 - registers the routes

    csrf.exempt(api_bp)  # API clients authenticate with keys, not cookies
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
