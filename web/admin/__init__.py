"""Administration: users and roles, API keys, the audit log viewer."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("admin", __name__, url_prefix="/admin")


def init_app(app: Flask) -> None:
    from web.admin import views  # noqa: F401 - registers the routes

    app.register_blueprint(bp)
