"""Accessibility basics on the experiment, results and incentive pages: a title per page, a label
for every form field, a visible keyboard focus. SQLite only (see conftest.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from experiments.services import catalog, demo_data, experiments
from web.results import views as results_views

pytestmark = pytest.mark.browser

UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.id || el.name || el.outerHTML)"""
FOCUS_OUTLINE = "() => getComputedStyle(document.activeElement).outlineStyle"


def test_titles_labels_and_visible_focus(app, login, monkeypatch) -> None:
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        experiments.create_experiment(
            session,
            {"key": "checkout-a11y", "name": "Checkout", "metrics": {"primary": "conversion"},
             "variants": [{"key": "control", "weight": 0.5},
                          {"key": "ten", "weight": 0.5, "incentive": "discount_10"}]},
            actor="test",
        )  # fmt: skip
        experiments.transition(session, "checkout-a11y", "running", actor="test")
    empty = SimpleNamespace(latest=lambda s, k: None, history=lambda s, k: [])
    monkeypatch.setattr(results_views, "results_service", lambda: empty)
    page = login("ana@example.com", "analyst")
    titles = {}
    for path in (
        "/experiments/",
        "/experiments/_new",
        "/experiments/checkout-a11y",
        "/experiments/checkout-a11y/edit",
        "/experiments/checkout-a11y/results",
        "/incentives/",
        "/incentives/new",
    ):
        page.goto(path)
        titles[path] = page.title()
        assert page.evaluate(UNLABELLED) == [], path
    assert all(t.endswith(" · liftlab") and len(t) > len(" · liftlab") for t in titles.values())
    assert len(set(titles.values())) == len(titles)  # each page says which it is
    page.goto("/experiments/_new")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUS_OUTLINE) not in ("none", "")
