"""Authentication: login/logout with Flask-Login, roles enforced by a decorator."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("auth", __name__, url_prefix="/auth")


def init_app(app: Flask) -> None:
    from web.auth import user, views  # noqa: F401 - registers routes and the user loader

    app.register_blueprint(bp)
