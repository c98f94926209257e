"""End to end in headless chromium: an analyst opens a strategy from the navigation, changes its
budget (a bad value first: the error shows next to the field, the input is kept), saves, and sees
the page update: the flash, the new budget on the profit-frontier chart, the stale-plan notice. A
viewer sees the configuration read-only. An analyst A/B-tests the strategy from its page (shares
that do not sum to 1 first) and lands on the new draft experiment, whose variants name it. An
analyst sets the budget period, paces the budget (a bad forecast first), sees today's target,
and stops pacing.

SQLite only (see conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from experiments.services import catalog, demo_data, strategies

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/liftlab-strategy.png"
PLAN: dict[str, Any] = {
    "lambda": 0.41, "budget": 500.0, "spend": 470.0, "value": 1210.0, "dual_bound": 1215.0,
    "gap": 5.0, "arms": ["discount_10"], "spend_by_arm": [470.0], "value_by_arm": [1210.0],
    "count_by_arm": [180], "count_by_bucket": [10, 12, 300],
}  # fmt: skip
UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.id || el.name || el.outerHTML)"""
FRONTIER = [{"budget": b, "value": v, "spend": b} for b, v in ((0, 0), (500, 1210), (1000, 1500))]


@pytest.fixture
def spring(app):  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        strategies.create_strategy(
            session,
            {"key": "spring", "name": "Spring offers", "budget": 500.0, "status": "active",
             "approved_incentives": ["discount_10"], "fallback": "discount_10",
             "config": {"plan": PLAN, "frontier": FRONTIER}},
            actor="test",
        )  # fmt: skip
    return app


def test_analyst_changes_the_budget_and_sees_the_page_update(spring, login) -> None:
    page = login("ana@example.com", "analyst")
    expect(page.locator("#active-strategies")).to_contain_text("Spring offers")
    page.get_by_role("link", name="Strategy", exact=True).click()
    page.get_by_role("link", name="spring").click()
    expect(page).to_have_title("Strategy · spring · liftlab")
    expect(page.locator("#budget-marker")).to_have_count(1)
    expect(page.locator("#frontier")).to_contain_text("budget 500")
    expect(page.locator("#plan-stale")).to_have_count(0)
    assert page.evaluate(UNLABELLED) == []  # every field of the configuration form has a label

    budget = page.get_by_label("Budget (currency units per period)")
    budget.fill("-20")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.locator("label.has-error")).to_contain_text("must be a finite amount of at least 0")
    expect(budget).to_have_value("-20")

    budget.fill("750")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.locator(".flash")).to_contain_text("Saved strategy spring")
    expect(page.get_by_label("Budget (currency units per period)")).to_have_value("750.0")
    expect(page.locator("#frontier")).to_contain_text("budget 750")
    expect(page.locator("#plan-stale")).to_contain_text("the budget is now 750")
    page.screenshot(path=SCREENSHOT, full_page=True)

    viewer = login("vic@example.com", "viewer")
    viewer.goto("/strategy/spring")
    expect(viewer.locator("#configuration-facts")).to_contain_text("750")
    expect(viewer.get_by_role("button", name="Save configuration")).to_have_count(0)


def test_analyst_creates_an_ab_test_of_the_strategy(spring, login) -> None:
    page = login("ana@example.com", "analyst")
    page.goto("/strategy/spring")
    expect(page.locator("#testing-experiments")).to_contain_text("No experiment tests")
    page.get_by_label("Experiment key").fill("spring-test")
    page.get_by_label("Share targeted by the strategy").fill("0.5")
    page.get_by_role("button", name="Create draft experiment").click()
    expect(page.locator("label.has-error")).to_contain_text("must sum to 1")
    expect(page.get_by_label("Experiment key")).to_have_value("spring-test")
    assert page.evaluate(UNLABELLED) == []  # both forms' fields have labels

    page.get_by_label("Share targeted by the strategy").fill("0.33")
    page.get_by_role("button", name="Create draft experiment").click()
    expect(page).to_have_title("spring-test · liftlab")
    expect(page.locator(".flash")).to_contain_text("Created draft experiment spring-test")
    expect(page.get_by_role("link", name="spring", exact=True)).to_have_count(1)
    page.get_by_role("link", name="spring", exact=True).click()
    expect(page.locator("#testing-experiments")).to_contain_text("spring-test")


def test_analyst_paces_the_budget_and_stops_pacing(spring, login) -> None:
    page = login("ana@example.com", "analyst")
    page.goto("/strategy/spring")
    expect(page.locator("#pacing-off")).to_contain_text("Not paced")
    page.get_by_label("Budget period (days)").fill("10")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.locator(".flash")).to_contain_text("Saved strategy spring")

    page.get_by_label("Expected new units per day").fill("0")  # a bad forecast first
    page.get_by_role("button", name="Pace the budget").click()
    expect(page.locator("label.has-error")).to_contain_text("above 0")
    expect(page.get_by_label("Expected new units per day")).to_have_value("0")
    assert page.evaluate(UNLABELLED) == []  # the pacing form's fields have labels

    page.get_by_label("Expected new units per day").fill("200")
    page.get_by_role("button", name="Pace the budget").click()
    expect(page.locator(".flash")).to_contain_text("paces its budget from")
    # nothing spent yet (the plan's 470 is not a ledger): 500 over 10 days
    expect(page.locator("#pacing-today")).to_contain_text("day 1 of 10: target 50.00")
    expect(page.locator("#pacing-facts")).to_contain_text("200.0 new units today (as configured)")
    page.get_by_role("button", name="Stop pacing").click()
    expect(page.locator(".flash")).to_contain_text("no longer paces")
    expect(page.locator("#pacing-off")).to_have_count(1)
