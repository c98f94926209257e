"""What every page's layout needs: the navigation (only pages that exist), the current user."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_login import current_user

# (endpoint, label, minimum role); an entry shows only when its endpoint is registered
NAVIGATION = [
    ("dashboard.index", "Dashboard", "viewer"),
    ("experiments.index", "Experiments", "viewer"),
    ("incentives.index", "Incentives", "viewer"),
    ("models.index", "Uplift models", "viewer"),
    ("strategy.index", "Strategy", "viewer"),
    ("admin.users", "Users", "admin"),
    ("admin.api_keys", "API keys", "admin"),
    ("admin.audit_log", "Audit log", "analyst"),
]


def navigation() -> list[dict[str, object]]:
    if not current_user.is_authenticated:
        return []
    items = []
    for endpoint, label, role in NAVIGATION:
        if endpoint in current_app.view_functions and current_user.can(role):
            blueprint = endpoint.split(".")[0]
            items.append(
                {"endpoint": endpoint, "label": label, "active": request.blueprint == blueprint}
            )
    return items


def init_app(app: Flask) -> None:
    app.jinja_env.globals["navigation"] = navigation
