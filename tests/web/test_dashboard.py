"""The dashboard: running experiments link to their page and show the engine's recommendation;
SRM and guardrail alerts come from the latest results; active strategies show planned spend
against budget. Every role may see it; anonymous users are sent to the login."""

from __future__ import annotations

from typing import Any

import pytest

from experiments.db import ResultSnapshot
from experiments.services import catalog, demo_data, experiments, strategies


def spec(key: str, name: str) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "variants": [
            {"key": "control", "weight": 0.5, "incentive": None},
            {"key": "twenty", "weight": 0.5, "incentive": "discount_20"},
        ],
        "metrics": {"primary": "conversion", "guardrail": ["incentive_cost"]},
    }


def results(*, srm: bool, harm: bool) -> dict[str, Any]:
    """The parts of ``results.latest``'s dict that the dashboard reads."""
    variant = {"variant": "twenty", "lift": -0.083, "harm": harm}
    return {
        "n_units": 12345,
        "srm": {"alert": srm, "p_value": 0.00012 if srm else 0.4},
        "recommendation": {"action": "stop", "reason": "twenty harms the margin guardrail"},
        "metrics": [
            {"metric": "conversion", "name": "Conversion", "role": "primary",
             "variants": [{"variant": "control"}, {"variant": "twenty", "lift": 0.1}]},
            {"metric": "margin", "name": "Margin per user", "role": "guardrail",
             "variants": [{"variant": "control"}, variant]},
        ],
    }  # fmt: skip


@pytest.fixture
def shop(app):  # type: ignore[no-untyped-def]
    """Three running experiments (one with alerts, one healthy, one never refreshed), a draft,
    an active strategy with a plan and a paused one."""
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        for key, name in (("alarm", "Alarm test"), ("calm", "Calm test"), ("fresh", "Fresh")):
            experiment = experiments.create_experiment(session, spec(key, name), actor="test")
            experiments.transition(session, key, "running", actor="test")
            if key != "fresh":
                data = results(srm=key == "alarm", harm=key == "alarm")
                session.add(ResultSnapshot(experiment_id=experiment.id, results=data))
        experiments.create_experiment(session, spec("later", "Later test"), actor="test")
        plan = {"spend": 612.0, "value": 1480.0, "budget": 800.0}
        strategies.create_strategy(
            session,
            {"key": "spring", "name": "Spring offers", "budget": 800.0, "status": "active",
             "config": {"plan": plan}},
            actor="test",
        )  # fmt: skip
        strategies.create_strategy(
            session, {"key": "idle", "name": "Idle strategy", "status": "paused"}, actor="test"
        )
    return app


def test_dashboard_shows_recommendations_alerts_and_spend(client, auth, shop) -> None:
    assert client.get("/").status_code == 302  # anonymous: to the login
    auth.login("viewer@example.com", "viewer")
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    running = page[page.index('id="running"') : page.index('id="active-strategies"')]
    for key in ("alarm", "calm", "fresh"):
        assert f'href="/experiments/{key}"' in running
    assert "Later test" not in running  # a draft is not running
    assert running.count("<b>stop</b>") == 2 and "harms the margin guardrail" in running
    assert "12,345" in running and "no results yet" in running
    alerts = page[page.index('id="alerts"') : page.index('id="running"')]
    assert alerts.count("<li") == 2
    assert "Sample ratio mismatch" in alerts and "0.00012" in alerts
    assert "Guardrail harmed" in alerts and "twenty moves Margin per user by -8.3%" in alerts
    assert 'href="/experiments/alarm/results"' in alerts and "Calm test" not in alerts
    active = page[page.index('id="active-strategies"') :]
    active = active[: active.index("</section>")]
    assert 'href="/strategy/spring"' in active and "<b>612</b> of 800" in active
    assert 'aria-label="76% of the budget"' in active and "1,480" in active
    assert "Idle strategy" not in active


def test_a_quiet_dashboard_has_no_alerts(client, auth, app) -> None:
    auth.login("ana@example.com", "analyst")
    page = client.get("/").get_data(as_text=True)
    assert 'id="alerts"' not in page and "No active strategy" in page
