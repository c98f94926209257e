"""The dashboard: what is running, the catalog, what changed lately."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from experiments.services import audit, catalog, experiments
from web.auth.user import role_required
from web.db import get_session

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@role_required("viewer")
def index() -> str:
    session = get_session()
    all_experiments = experiments.list_experiments(session)
    by_status: dict[str, int] = {}
    for experiment in all_experiments:
        by_status[experiment.status] = by_status.get(experiment.status, 0) + 1
    return render_template(
        "dashboard/index.html",
        running=[e for e in all_experiments if e.status == "running"],
        by_status=by_status,
        incentives=catalog.list_incentives(session),
        recent=audit.recent(session, limit=10),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
