"""The dashboard: running experiments with the engine's recommendation, SRM and guardrail alerts
from their latest results, the active strategies' planned spend against budget, the catalog and
what changed lately."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template

from experiments.db import Experiment
from experiments.services import audit, catalog, experiments, results, strategies
from web.auth.user import role_required
from web.db import get_session

bp = Blueprint("dashboard", __name__)

WATCHED = ("running", "stopped")  # experiments whose alerts still matter


def alerts_of(experiment: Experiment, latest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """SRM and guardrail-harm alerts of one experiment's latest results."""
    if not latest:
        return []
    out = []
    srm = latest.get("srm") or {}
    if srm.get("alert"):
        out.append({"kind": "srm", "experiment": experiment, "p_value": srm.get("p_value")})
    for metric in latest.get("metrics", []):
        if metric.get("role") != "guardrail":
            continue
        for variant in metric.get("variants", []):
            if variant.get("harm"):
                out.append(
                    {
                        "kind": "guardrail",
                        "experiment": experiment,
                        "metric": metric.get("name") or metric.get("metric"),
                        "variant": variant.get("variant"),
                        "lift": variant.get("lift"),
                    }
                )
    return out


def strategy_rows(session: Any) -> list[dict[str, Any]]:
    """Active strategies with the last plan's spend against the budget."""
    rows = []
    for strategy in strategies.list_strategies(session):
        if strategy.status != "active":
            continue
        plan = (strategy.config or {}).get("plan") or {}
        spend = plan.get("spend")
        rows.append(
            {
                "strategy": strategy,
                "spend": spend,
                "value": plan.get("value"),
                "share": spend / strategy.budget if spend is not None and strategy.budget else None,
            }
        )
    return rows


@bp.route("/")
@role_required("viewer")
def index() -> str:
    session = get_session()
    all_experiments = experiments.list_experiments(session)
    by_status: dict[str, int] = {}
    for experiment in all_experiments:
        by_status[experiment.status] = by_status.get(experiment.status, 0) + 1
    watched = [e for e in all_experiments if e.status in WATCHED]
    latest = {e.key: results.latest(session, e.key) for e in watched}
    return render_template(
        "dashboard/index.html",
        running=[e for e in watched if e.status == "running"],
        latest=latest,
        alerts=[a for e in watched for a in alerts_of(e, latest[e.key])],
        active=strategy_rows(session),
        by_status=by_status,
        incentives=catalog.list_incentives(session),
        recent=audit.recent(session, limit=10),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
