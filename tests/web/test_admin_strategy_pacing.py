"""Daily pacing on the strategy page: the budget period in the configuration form; pacing set,
shown (today's target, cap, forecast) and stopped by an analyst, audited; bad input kept with
the error next to the field and nothing stored; viewers see it without the forms."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from experiments.db import AuditEntry, Strategy
from experiments.services import catalog, demo_data, strategies

TODAY = dt.datetime.now(dt.UTC).date().isoformat()


@pytest.fixture
def summer(app):  # type: ignore[no-untyped-def]
    """A strategy with a 700 budget over 7 days and nothing spent yet."""
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        strategies.create_strategy(
            session,
            {
                "key": "summer",
                "budget": 700.0,
                "approved_incentives": ["coupon_5"],
                "fallback": "coupon_5",
                "status": "active",
            },
            actor="test",
        )
    return app


def stored(app) -> Strategy:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        strategy = session.scalar(select(Strategy).where(Strategy.key == "summer"))
        assert strategy is not None
        session.expunge(strategy)
        return strategy


def pacing_data(token: str, **changes: Any) -> dict[str, Any]:
    return {"csrf_token": token, "start": TODAY, "schedule": "even", "daily_units": "50", **changes}


def set_period(client, auth, days: str) -> Any:  # type: ignore[no-untyped-def]
    token = auth.csrf_token("/strategy/summer")
    data = {
        "csrf_token": token, "budget": "700", "budget_period_days": days, "holdout_share": "0.05",
        "explore_share": "0.05", "objective": "profit", "status": "active",
        "approved_incentives": ["coupon_5"], "fallback": "coupon_5", "model_run_id": "",
    }  # fmt: skip
    return client.post("/strategy/summer", data=data)


def test_an_analyst_paces_the_budget_and_sees_todays_cap(client, auth, summer) -> None:
    auth.login("ana@example.com", "analyst")
    page = client.get("/strategy/summer").get_data(as_text=True)
    assert 'id="pacing-off"' in page and 'id="save-pacing"' in page
    assert 'id="budget_period_days"' in page and 'value="30"' in page
    assert set_period(client, auth, "7").status_code == 302
    assert stored(summer).budget_period_days == 7
    token = auth.csrf_token("/strategy/summer")
    saved = client.post("/strategy/summer/pacing", data=pacing_data(token))
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#pacing")
    assert stored(summer).config["pacing"] == {
        "start": TODAY, "schedule": "even", "daily_units": 50.0,
    }  # fmt: skip
    page = client.get("/strategy/summer").get_data(as_text=True)
    today = re.search(r'id="pacing-today">([^<]*)<', page)
    assert today and "day 1 of 7: target 100, spent 0.00" in today.group(1)
    assert "planned spend of 100" in today.group(1)  # nothing spent: 700 / 7 days
    assert "50.0 new units today (as configured)" in page
    assert 'id="stop-pacing"' in page
    with summer.extensions["liftlab.sessions"]() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "strategy.pacing"))
        assert entry is not None and entry.actor == "ana@example.com"
        assert entry.after["pacing"]["daily_units"] == 50.0
    token = auth.csrf_token("/strategy/summer")
    stopped = client.post("/strategy/summer/pacing/off", data={"csrf_token": token})
    assert stopped.status_code == 302 and "pacing" not in stored(summer).config


def test_bad_pacing_is_kept_with_the_error_next_to_the_field(client, auth, summer) -> None:
    auth.login("ana@example.com", "analyst")
    set_period(client, auth, "7")
    token = auth.csrf_token("/strategy/summer")
    for changes, field, message in (
        ({"start": "next monday"}, "start", "YYYY-MM-DD"),
        ({"schedule": "1,2,3"}, "schedule", "one per day (7)"),
        ({"daily_units": "0"}, "daily_units", "above 0"),
        ({"daily_units": "many"}, "daily_units", "Not a valid float value"),
    ):
        response = client.post("/strategy/summer/pacing", data=pacing_data(token, **changes))
        assert response.status_code == 400, changes
        page = response.get_data(as_text=True)
        label = re.search(
            rf'<label class="field [^"]*has-error">\s*<span>[^<]*</span>\s*<[^>]*id="{field}"'
            rf"[^>]*>.*?</label>",
            page,
            re.S,
        )
        assert label and message in label.group(0), (changes, label and label.group(0))
        value = next(iter(changes.values()))
        assert f'value="{value}"' in page  # the input is kept
        assert "pacing" not in stored(summer).config
    bad_period = set_period(client, auth, "0")
    assert bad_period.status_code == 400 and "must be 1 to 366 days" in bad_period.get_data(
        as_text=True
    )
    assert stored(summer).budget_period_days == 7


def test_viewers_see_the_pacing_without_the_forms(client, auth, summer) -> None:
    auth.login("ana@example.com", "analyst")
    set_period(client, auth, "7")
    client.post("/strategy/summer/pacing", data=pacing_data(auth.csrf_token("/strategy/summer")))
    client.get("/auth/logout")
    auth.login("vic@example.com", "viewer")
    page = client.get("/strategy/summer").get_data(as_text=True)
    assert 'id="pacing-today"' in page and 'id="save-pacing"' not in page
    assert 'id="stop-pacing"' not in page
    token = auth.csrf_token("/strategy/summer")
    refused = client.post("/strategy/summer/pacing/off", data={"csrf_token": token})
    assert refused.status_code == 403 and "pacing" in stored(summer).config
