"""End to end in headless chromium: an analyst adds an incentive, creates an experiment through the
form (a validation error first), starts it, sees it on the dashboard, simulated traffic flows in
through the HTTP API (batch assignment, events, refreshes),
the analyst refreshes the results and declares the winner, which the strategy page then shows
approved; a viewer sees no write control and is
refused; an API key is shown once.

SQLite only (see conftest.py).
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from experiments.db import Experiment
from experiments.services import catalog, demo_data, experiments
from web.results import views as results_views

pytestmark = pytest.mark.browser

FORM_SCREENSHOT = "/tmp/liftlab-experiment-form.png"
RESULTS_SCREENSHOT = "/tmp/liftlab-results.png"


def results_at(n_units: int, lift: float, half: float) -> dict[str, Any]:
    control = {
        "variant": "control",
        "n": n_units // 2,
        "mean": 0.05,
        "lift": None,
        "ci": None,
        "p_value": None,
        "p_value_running_min": None,
        "chance_to_win": None,
        "error": None,
    }
    treated = {"variant": "fifteen", "n": n_units // 2, "mean": 0.05 * (1 + lift), "lift": lift,
               "ci": [lift - half, lift + half], "p_value": 0.004, "p_value_running_min": 0.004,
               "chance_to_win": 0.98, "error": None}  # fmt: skip
    return {
        "computed_at": "2026-11-28T12:00:00+00:00",
        "n_units": n_units,
        "srm": {"p_value": 0.7, "alert": False, "observed": [n_units // 2] * 2,
                "expected_share": [0.5, 0.5]},
        "metrics": [{"metric": "conversion", "name": "Conversion", "role": "primary",
                     "kind": "binary", "cuped": True, "variants": [control, treated],
                     "sql": "SELECT variant_id, count(*) FROM assignments GROUP BY variant_id"}],
        "recommendation": {"action": "ship fifteen", "reason": "conversion is up, no guardrail hit"},
    }  # fmt: skip


HISTORY = [results_at(n, lift, half) for n, lift, half in ((2000, 0.03, 0.3), (6000, 0.1, 0.12),
                                                            (12000, 0.12, 0.06))]  # fmt: skip


def status_of(app, key: str) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        experiment = session.scalar(select(Experiment).where(Experiment.key == key))
        assert experiment is not None
        return experiment.status, experiment.winner_variant_key


@pytest.fixture
def shop(app):  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    return app


def simulate_traffic(app, base_url: str, key: str, waves: int = 2) -> None:  # type: ignore[no-untyped-def]
    """Simulated shop users go through the live HTTP API: batch assignment, then their orders as
    events; the admin key refreshes the results after each wave (as the scheduler would)."""
    import datetime as dt
    import json
    import urllib.error
    import urllib.request

    import numpy as np

    from experiments.services import accounts
    from experiments.simulation import simulate_shop

    with app.extensions["liftlab.sessions"].begin() as session:
        _, secret = accounts.create_api_key(
            session,
            name="shop",
            scopes=["assign", "ingest", "admin"],
            actor="test",
            account_id=None,
        )

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{base_url}/api/v1{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path}: {error.code} {error.read().decode()}") from None

    shop = simulate_shop(n_users=1600, seed=0)
    ids = shop.users["unit_id"].tolist()
    devices = dict(zip(ids, shop.users["device"].astype(str), strict=True))
    for wave in range(waves):
        units = ids[wave::waves]
        results = []
        for start in range(0, len(units), 1000):
            batch = [
                {"unit_id": u, "attributes": {"device": devices[u]}}
                for u in units[start : start + 1000]
            ]
            results += post("/assign", {"units": batch})["results"]
        arm = np.zeros(shop.n_users, dtype=np.int64)
        row = {u: i for i, u in enumerate(ids)}
        exposed = []
        for result in results:
            if result["assignments"]:
                incentive = result["assignments"][0]["incentive"]
                arm[row[result["unit_id"]]] = shop.arms.index(
                    incentive["key"] if incentive else "none"
                )
                exposed.append(row[result["unit_id"]])
        outcomes = shop.sample_outcomes(arm, seed=wave)
        when = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
        events = [
            {
                "event_id": f"w{wave}-{i}",
                "unit_id": ids[i],
                "name": "order",
                "value": float(outcomes["revenue"].iloc[i]),
                "occurred_at": when,
            }
            for i in exposed
            if outcomes["converted"].iloc[i]
        ]
        assert events, "no simulated user converted"
        assert post("/events", {"events": events})["inserted"] == len(events)
        post(f"/experiments/{key}/refresh", {})


def test_analyst_runs_an_experiment_from_form_to_winner(shop, login, live_server) -> None:
    page = login("ana@example.com", "analyst")

    page.get_by_role("link", name="Incentives").click()
    page.get_by_role("link", name="New incentive").click()
    page.get_by_label("Key").fill("discount_15")
    page.get_by_label("Name").fill("15% off")
    page.get_by_label("Parameters (JSON)").fill('{"percent": 15}')
    page.get_by_role("button", name="Add to the catalog").click()
    expect(page.locator("#incentives")).to_contain_text("15% off")

    page.get_by_role("link", name="Experiments").click()
    page.get_by_role("link", name="New experiment").click()
    page.get_by_label("Key (lowercase").fill("checkout-15")
    page.get_by_label("Name", exact=True).fill("Checkout 15% off")
    page.locator("#variants-1-key").fill("ten")
    page.locator("#variants-1-incentive").select_option("discount_15")
    page.locator("#variants-1-weight").fill("0.6")
    expect(page.locator("#weight-sum")).to_contain_text("must sum to 1")
    page.get_by_role("button", name="+ Add variant").click()
    expect(page.locator("tr.variant-row")).to_have_count(3)
    expect(page.locator("#variants-2-key")).to_be_focused()
    page.locator("tr.variant-row").nth(2).get_by_role("button", name="Remove this variant").click()
    expect(page.locator("tr.variant-row")).to_have_count(2)
    page.get_by_label("Targeting condition").fill('{"device": "mobile"}')
    page.get_by_role("button", name="Check the share that qualifies").click()
    expect(page.locator("#targeting-share")).to_contain_text("of a sample of 2000")
    page.get_by_label("Primary metric").select_option("conversion")
    page.locator("#metric_guardrail-group").get_by_label("Incentive cost per user").check()
    page.get_by_role("button", name="Calculate").click()
    expect(page.locator("#power-result table")).to_contain_text("Users per arm")
    page.locator("#power-use").click()
    assert page.locator("#design_n_star").input_value() != "10000"

    page.get_by_role("button", name="Create experiment").click()
    expect(page.locator("#variants-error")).to_contain_text("weights sum to 1.1")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Checkout 15% off")
    expect(page.locator("#variants-1-incentive")).to_have_value("discount_15")
    expect(page.locator("#targeting-share")).to_contain_text("% of a sample")
    page.screenshot(path=FORM_SCREENSHOT, full_page=True)
    page.locator("#variants-1-weight").fill("0.5")
    page.locator("#variants-1-incentive").select_option("discount_10")  # one the shop simulates
    page.get_by_role("button", name="Create experiment").click()
    page.wait_for_url("**/experiments/checkout-15")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Start").click()
    assert status_of(shop, "checkout-15") == ("draft", None)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".flash")).to_contain_text("checkout-15 is now running")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("main")).to_contain_text("checkout-15")

    page.get_by_role("link", name="Experiments").click()
    page.get_by_role("link", name="checkout-15").click()
    page.get_by_role("link", name="Results").click()
    expect(page.locator("#no-results")).to_contain_text("No results yet — refresh")
    simulate_traffic(shop, live_server, "checkout-15")
    page.get_by_role("button", name="Refresh now").click()
    expect(page.locator(".flash")).to_contain_text("Results refreshed")
    expect(page.locator("#metric-conversion tbody tr")).to_have_count(2)
    expect(page.locator("#metric-incentive_cost")).to_contain_text("CUPED")
    expect(page.locator("#lift-chart path.lift-line")).to_have_count(1)
    expect(page.locator("#lift-chart circle")).to_have_count(3)  # two API refreshes + ours
    assert page.locator("#lift-chart").bounding_box()["height"] > 100  # type: ignore[index]
    page.locator("#metric-conversion").get_by_text("Show SQL").click()
    expect(page.locator("#metric-conversion details.sql pre")).to_contain_text("FROM assignments")
    page.screenshot(path=RESULTS_SCREENSHOT, full_page=True)

    page.get_by_label("Winning variant").select_option("ten")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Declare winner").click()
    expect(page.locator("#winner-banner")).to_contain_text("ten")
    expect(page.locator(".badge.status-concluded")).to_be_visible()
    assert status_of(shop, "checkout-15") == ("concluded", "ten")

    # the declared winner feeds the strategy: its page shows the winner's incentive approved
    page.get_by_role("link", name="Strategy").click()
    page.get_by_role("link", name="from-checkout-15").click()
    expect(page.locator("main")).to_contain_text("discount_10")


def test_viewer_sees_no_write_controls_and_is_refused(shop, login, monkeypatch) -> None:
    service = SimpleNamespace(latest=lambda s, k: HISTORY[-1], history=lambda s, k: HISTORY)
    monkeypatch.setattr(results_views, "results_service", lambda: service)
    with shop.extensions["liftlab.sessions"].begin() as session:
        experiments.create_experiment(
            session,
            {"key": "checkout-15", "name": "Checkout", "metrics": {"primary": "conversion"},
             "variants": [{"key": "control", "weight": 0.5},
                          {"key": "fifteen", "weight": 0.5, "incentive": "discount_10"}]},
            actor="test",
        )  # fmt: skip
        experiments.transition(session, "checkout-15", "running", actor="test")
    page = login("vic@example.com", "viewer")
    page.goto("/experiments/")
    expect(page.locator("#experiments")).to_contain_text("checkout-15")
    expect(page.get_by_role("link", name="New experiment")).to_have_count(0)
    page.goto("/experiments/checkout-15")
    expect(page.locator("#lifecycle button")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    page.goto("/experiments/checkout-15/results")
    expect(page.locator("#metric-conversion")).to_be_visible()
    expect(page.get_by_role("button", name="Declare winner")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for path, form in (
        ("/experiments/checkout-15/status", {"status": "stopped"}),
        ("/experiments/checkout-15/results/winner", {"winner": "fifteen"}),
    ):
        response = page.request.post(path, form={"csrf_token": token or "", **form})
        assert response.status == 403, path
    assert status_of(shop, "checkout-15") == ("running", None)


def test_api_key_is_shown_once(login) -> None:
    page = login("root@example.com", "admin")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("shop app")
    page.get_by_label("assign").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("pre.secret-value").inner_text().strip()
    assert re.fullmatch(r"ll_\w+_\S+", secret), secret
    page.goto("/admin/api-keys")
    expect(page.locator("table")).to_contain_text("shop app")
    expect(page.locator("pre.secret-value")).to_have_count(0)
    assert secret not in page.content()
