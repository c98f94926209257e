"""liftlab's web layer: the Flask admin, the REST API and authentication.

``create_app`` only wires: each part registers itself with ``init_app(app)``. The web layer calls
``experiments.services``; it never imports torch, econml, dowhy or the uplift library.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from experiments.settings import Settings, load_settings


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    settings: Settings = (test_config or {}).get("LIFTLAB_SETTINGS") or load_settings()
    if test_config and "DATABASE_URL" in test_config:
        settings = settings.with_overrides(
            database_url=test_config["DATABASE_URL"],
            warehouse_url=test_config.get("WAREHOUSE_URL", test_config["DATABASE_URL"]),
        )
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        LIFTLAB_SETTINGS=settings,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update({k: v for k, v in test_config.items() if k != "DATABASE_URL"})

    from web import (
        admin,
        api,
        auth,
        dashboard,
        db,
        errors,
        experiments,
        extensions,
        incentives,
        layout,
        models,
        observability,
        reports,
        results,
        strategy,
    )

    observability.init_app(app)  # first: times whole requests, sees final status
    db.init_app(app)
    extensions.init_app(app)
    errors.init_app(app)
    layout.init_app(app)
    auth.init_app(app)
    dashboard.init_app(app)
    admin.init_app(app)
    experiments.init_app(app)
    results.init_app(app)
    reports.init_app(app)
    incentives.init_app(app)
    models.init_app(app)
    strategy.init_app(app)
    api.init_app(app)
    return app
