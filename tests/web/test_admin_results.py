"""The results page against the results service's contract (a constructed results dict), the lift
chart, declaring the winner (role-guarded, audited), refresh, and the page before any result."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from experiments.db import AuditEntry, Experiment
from experiments.services import catalog, demo_data, experiments
from web.results import views
from web.results.chart import lift_chart, nice_ticks

SPEC: dict[str, Any] = {
    "key": "checkout-test",
    "name": "Checkout test",
    "variants": [
        {"key": "control", "weight": 0.5, "incentive": None},
        {"key": "ten", "weight": 0.5, "incentive": "discount_10"},
    ],
    "metrics": {"primary": "conversion", "guardrail": ["incentive_cost"]},
}


def results_at(
    n_units: int, lift: float, half: float, *, srm_alert: bool = False
) -> dict[str, Any]:
    """A results dict in the shape ``experiments.services.results.latest`` returns."""

    def variants(mean: float, p: float | None) -> list[dict[str, Any]]:
        return [
            {"variant": "control", "n": n_units // 2, "mean": mean, "lift": None, "ci": None,
             "p_value": None, "p_value_running_min": None, "chance_to_win": None, "error": None},
            {"variant": "ten", "n": n_units // 2, "mean": mean * (1 + lift), "lift": lift,
             "ci": [lift - half, lift + half], "p_value": p, "p_value_running_min": p,
             "chance_to_win": 0.97, "error": None},
        ]  # fmt: skip

    return {
        "computed_at": "2026-11-28T12:00:00+00:00",
        "n_units": n_units,
        "srm": {
            "p_value": 0.0001 if srm_alert else 0.61,
            "alert": srm_alert,
            "observed": [n_units // 2, n_units // 2],
            "expected_share": [0.5, 0.5],
        },
        "metrics": [
            {
                "metric": "conversion",
                "name": "Conversion",
                "role": "primary",
                "kind": "binary",
                "cuped": True,
                "variants": variants(0.05, 0.012),
                "sql": "SELECT variant, count(*) AS n FROM exposures GROUP BY variant",
            },
            {
                "metric": "incentive_cost",
                "name": "Incentive cost per user",
                "role": "guardrail",
                "kind": "sum",
                "cuped": False,
                "variants": [
                    *variants(1.0, None)[:1],
                    {**variants(1.0, None)[1], "error": "zero variance in control"},
                ],
                "sql": "SELECT 2",
            },
        ],  # fmt: skip
        "recommendation": {"action": "ship ten", "reason": "conversion is up and guardrails hold"},
    }


HISTORY = [results_at(1000, 0.02, 0.2), results_at(4000, 0.08, 0.09), results_at(9000, 0.1, 0.05)]


@pytest.fixture
def running(app):  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        experiments.create_experiment(session, SPEC, actor="test")
        experiments.transition(session, "checkout-test", "running", actor="test")
    return app


@pytest.fixture
def fake_results(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Stands in for ``experiments.services.results`` (the contract, not the implementation)."""
    calls: list[str] = []
    service = SimpleNamespace(
        latest=lambda session, key: HISTORY[-1],
        history=lambda session, key: HISTORY,
        refresh=lambda session, key, actor: calls.append(actor) or HISTORY[-1],
        calls=calls,
    )
    monkeypatch.setattr(views, "results_service", lambda: service)
    return service


def status_of(app) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        experiment = session.scalar(select(Experiment).where(Experiment.key == "checkout-test"))
        assert experiment is not None
        return experiment.status, experiment.winner_variant_key


def test_results_page_shows_the_table_chart_sql_and_recommendation(
    client, auth, running, fake_results
) -> None:
    auth.login("viewer@example.com", "viewer")
    response = client.get("/experiments/checkout-test/results")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    table = page[page.index('id="metric-conversion"') :]
    assert "4,500" in table and "+10.00%" in table and "[+5.00%, +15.00%]" in table
    assert "0.012" in table and "97.0%" in table and "CUPED on" in table
    assert "zero variance in control" in page and "CUPED off" in page
    assert "<details" in page and "SELECT variant, count(*) AS n FROM exposures" in page
    assert "ship ten" in page and "guardrails hold" in page
    assert 'id="srm-ok"' in page and 'id="srm-banner"' not in page
    assert re.search(r'<svg id="lift-chart"[^>]*>', page) and 'class="lift-line"' in page
    assert "<polygon" in page  # the confidence sequence's band
    # a viewer sees no write control and may not post
    assert 'id="declare-winner"' not in page and 'id="refresh"' not in page
    token = auth.csrf_token("/experiments/checkout-test/results")
    for path in ("winner", "refresh"):
        refused = client.post(
            f"/experiments/checkout-test/results/{path}",
            data={"csrf_token": token, "winner": "ten"},
        )
        assert refused.status_code == 403
    assert status_of(running) == ("running", None) and fake_results.calls == []
    alert = results_at(9000, 0.1, 0.05, srm_alert=True)
    fake_results.latest = lambda session, key: alert
    page = client.get("/experiments/checkout-test/results").get_data(as_text=True)
    assert 'id="srm-banner"' in page and "Sample ratio mismatch" in page


def test_analyst_declares_the_winner_audited(client, auth, running, fake_results) -> None:
    auth.login("ana@example.com", "analyst")
    page = client.get("/experiments/checkout-test/results").get_data(as_text=True)
    assert 'id="declare-winner"' in page and "data-confirm=" in page
    assert '<option selected value="ten">' in page  # the engine's best variant is proposed
    token = auth.csrf_token("/experiments/checkout-test/results")
    assert (
        client.post("/experiments/checkout-test/results/winner", data={"winner": "ten"}).status_code
        == 400
    )
    bad = client.post(
        "/experiments/checkout-test/results/winner", data={"csrf_token": token, "winner": "nope"}
    )
    assert bad.status_code == 400 and status_of(running) == ("running", None)
    response = client.post(
        "/experiments/checkout-test/results/winner",
        data={"csrf_token": token, "winner": "ten", "note": "clear win"},
    )
    assert response.status_code == 302
    assert status_of(running) == ("concluded", "ten")
    with running.extensions["liftlab.sessions"]() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [(e.action, e.actor, e.note) for e in entries[-3:]] == [
        ("experiment.stopped", "ana@example.com", "clear win"),
        ("experiment.concluded", "ana@example.com", "clear win"),
        ("strategy.create", "ana@example.com", None),  # the declared winner feeds a strategy
    ]
    page = client.get("/experiments/checkout-test/results").get_data(as_text=True)
    assert 'id="winner-banner"' in page and 'id="declare-winner"' not in page


def test_no_results_yet(client, auth, running, monkeypatch) -> None:
    empty = SimpleNamespace(latest=lambda s, k: None, history=lambda s, k: [])
    monkeypatch.setattr(views, "results_service", lambda: empty)
    auth.login("ana@example.com", "analyst")
    page = client.get("/experiments/checkout-test/results").get_data(as_text=True)
    assert "No results yet — refresh" in page and 'id="refresh"' in page
    monkeypatch.setattr(views, "results_service", lambda: None)
    page = client.get("/experiments/checkout-test/results").get_data(as_text=True)
    assert "No results yet — refresh" in page and "not installed yet" in page
    assert client.get("/experiments/nope/results").status_code == 404


def test_lift_chart_geometry() -> None:
    chart = lift_chart(HISTORY, "conversion", "Conversion")
    assert chart is not None and [s.variant for s in chart.series] == ["ten"]
    (series,) = chart.series
    xs = [x for x, _ in series.points]
    ys = [y for _, y in series.points]
    assert xs == sorted(xs) and len(xs) == 3
    assert ys[0] > ys[-1]  # a larger lift is drawn higher (smaller y)
    left, top, right, bottom = chart.plot
    assert all(left <= x <= right for x in xs) and all(top <= y <= bottom for y in ys)
    assert top <= chart.zero_y <= bottom
    assert len(series.band.split()) == 6  # upper then lower bound at three refreshes
    assert lift_chart(HISTORY, "unknown") is None
    assert nice_ticks(0, 9000) == [0, 2000, 4000, 6000, 8000, 10000]
    assert nice_ticks(-0.13, 0.3) == [-0.2, -0.1, 0.0, 0.1, 0.2, 0.3]


def test_results_from_the_engine_after_simulated_traffic(client, auth, running) -> None:
    from experiments.services import results
    from experiments.services.simulated_experiment import run_on_shop
    from experiments.simulation import simulate_shop

    assert views.results_service() is results
    with running.extensions["liftlab.sessions"].begin() as session:
        run_on_shop(session, simulate_shop(n_users=2000, seed=0), "checkout-test", days=3)
    auth.login("ana@example.com", "analyst")
    page = client.get("/experiments/checkout-test/results").get_data(as_text=True)
    start = page.index('id="metric-conversion"')
    table = page[start : page.index("</section>", start)]
    assert table.count("<tr") == 3  # the header, control, ten
    assert 'class="lift-line"' in page and "<details" in page and "FROM assignments" in page
    token = auth.csrf_token("/experiments/checkout-test/results")
    response = client.post("/experiments/checkout-test/results/refresh", data={"csrf_token": token})
    assert response.status_code == 302
    with running.extensions["liftlab.sessions"]() as session:
        assert len(results.history(session, "checkout-test")) == 4
