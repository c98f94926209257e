"""REST API under ``/api/v1/`` (API keys with scopes, JSON only, described by OpenAPI)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from web.api import decide, experiments, health, openapi, results, serving  # noqa: F401
    from web.extensions import csrf

    csrf.exempt(bp)  # API clients authenticate with keys, not cookies
    app.register_blueprint(bp)
    app.register_blueprint(health.bp)
