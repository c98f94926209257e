"""The strategy pages: the list, one strategy's plan, frontier chart, calibration, decision log and
ledger; saving the configuration (analyst+, CSRF, errors next to the field, audited)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from experiments.db import AuditEntry, Decision, Incentive, Strategy
from experiments.services import catalog, demo_data, strategies
from web.strategy.chart import frontier_chart, value_at

PLAN: dict[str, Any] = {
    "lambda": 0.4321, "budget": 500.0, "spend": 480.0, "value": 1234.0, "dual_bound": 1240.0,
    "gap": 6.0, "objective": "profit", "arms": ["discount_10", "coupon_5"],
    "spend_by_arm": [300.0, 180.0], "value_by_arm": [800.0, 434.0], "count_by_arm": [150, 36],
    "count_by_bucket": [12, 18, 200],
}  # fmt: skip
FRONTIER = [{"budget": b, "value": v, "spend": b * 0.96}
            for b, v in ((0, 0), (250, 900), (500, 1234), (750, 1400), (1000, 1450))]  # fmt: skip


@pytest.fixture
def spring(app):  # type: ignore[no-untyped-def]
    """A strategy with a plan, a frontier, a calibration and 230 logged decisions."""
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        strategy = strategies.create_strategy(
            session,
            {
                "key": "spring",
                "name": "Spring offers",
                "budget": 500.0,
                "approved_incentives": ["discount_10", "coupon_5"],
                "fallback": "discount_10",
                "config": {
                    "plan": PLAN,
                    "frontier": FRONTIER,
                    "calibration": {"discount_10": {"experiment_ate": 0.0125}},
                },
            },
            actor="test",
        )
        ten = session.scalar(select(Incentive.id).where(Incentive.key == "discount_10"))
        start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        session.add_all(
            Decision(
                decision_id=f"d{i:04d}",
                strategy_id=strategy.id,
                unit_id=f"user-{i:04d}",
                incentive_id=ten if i % 3 else None,
                bucket="exploit" if i % 3 else "holdout",
                propensity=0.9 if i % 3 else 0.05,
                expected_value=2.0 if i % 3 else 0.0,
                expected_cost=1.5 if i % 3 else 0.0,
                decided_at=start + dt.timedelta(minutes=i),
                batch_run=0,  # the strategy's current run: no batch run logged yet
            )
            for i in range(230)
        )
    return app


def test_viewer_sees_plan_frontier_calibration_log_and_ledger(client, auth, spring) -> None:
    auth.login("viewer@example.com", "viewer")
    listing = client.get("/strategy/").get_data(as_text=True)
    assert "Spring offers" in listing and "/strategy/spring" in listing and "480" in listing
    response = client.get("/strategy/spring")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    plan = page[page.index('id="plan"') : page.index('id="configuration"')]
    assert "480" in plan and "1,234" in plan and "0.4321" in plan and "0.49%" in plan
    assert re.search(r"discount_10</td><td>150</td><td>300</td><td>800</td>", plan)
    assert "holdout <b>12</b>" in plan and "exploit <b>200</b>" in plan
    assert "liftlab strategy run spring --population" in plan and 'id="plan-stale"' not in plan
    chart = page[page.index('id="frontier-chart"') :]
    assert chart.count('class="frontier-point"') == 5 and 'id="budget-marker"' in chart
    assert "budget 500" in chart and "about 1,234 expected" in page
    assert 'id="frontier-sample"' not in page  # a local run's frontier: every user
    assert "+1.25 pp" in page[page.index('id="calibration"') :]
    ledger = page[page.index('id="ledger"') : page.index('id="decisions"')]
    assert re.search(
        r"discount_10</td><td>exploit</td><td>153</td><td>230</td><td>306</td>", ledger
    )
    assert re.search(r"none</td><td>holdout</td><td>77</td>", ledger)
    log = page[page.index('id="decisions"') :]
    assert "latest 200 of 230" in log and log.count("<tr><td>2026-11-01") == 50
    assert "user-0229" in log and "user-0179" not in log  # newest first
    assert 'href="/strategy/spring?page=4#decisions"' in log and "?page=5" not in log
    last = client.get("/strategy/spring?page=4").get_data(as_text=True)
    last = last[last.index('id="decisions"') :]
    assert "user-0030" in last and "user-0029" not in last  # only the latest 200
    # a viewer gets no form, and may not post one
    assert 'id="save-strategy"' not in page and 'id="configuration-facts"' in page
    token = auth.csrf_token("/strategy/spring")
    refused = client.post("/strategy/spring", data={"csrf_token": token, "budget": "9"})
    assert refused.status_code == 403
    assert client.get("/strategy/nope").status_code == 404


def test_the_log_shows_earlier_runs_and_a_units_history(client, auth, spring) -> None:
    """A later batch run supersedes the fixture's run 0: the page shows the current ledger, an
    earlier run with ?run=, one unit across runs and experiments with ?unit=; a bad run is a 400."""
    with spring.extensions["liftlab.sessions"].begin() as session:
        strategy = session.scalar(select(Strategy).where(Strategy.key == "spring"))
        strategy.batch_run = 1
        start = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
        session.add_all(
            Decision(
                decision_id=f"r1-{i}",
                strategy_id=strategy.id,
                unit_id=f"user-{i:04d}",
                bucket="holdout",
                propensity=0.05,
                context={"source": "batch"},
                decided_at=start + dt.timedelta(minutes=i),
                batch_run=1,
            )
            for i in range(3)
        )
    auth.login("viewer@example.com", "viewer")
    page = client.get("/strategy/spring").get_data(as_text=True)
    ledger = page[page.index('id="ledger"') : page.index('id="decisions"')]
    assert re.search(r"none</td><td>holdout</td><td>3</td>", ledger) and "discount_10" not in ledger
    assert "batch run 1 and the online decisions after it" in ledger
    log = page[page.index('id="decisions"') :]
    assert "batch run 1 (current ledger) · latest 3 of 3" in log
    earlier = client.get("/strategy/spring?run=0").get_data(as_text=True)
    earlier = earlier[earlier.index('id="decisions"') :]
    assert "batch run 0 (superseded by run 1) · latest 200 of 230" in earlier
    assert 'href="/strategy/spring?page=2&amp;run=0#decisions"' in earlier
    unit = client.get("/strategy/spring?unit=user-0001").get_data(as_text=True)
    unit = unit[unit.index('id="decisions"') :]
    assert "unit user-0001, every batch run and experiment · latest 2 of 2" in unit
    assert unit.count("<tr><td>2026-11-0") == 2
    for bad, reason in (("2", "has batch runs 0 to 1"), ("-1", "not a run number")):
        refused = client.get(f"/strategy/spring?run={bad}")
        assert refused.status_code == 400 and "run: " in refused.get_data(as_text=True)
        assert reason in refused.get_data(as_text=True)


def form_data(token: str, **changes: Any) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "budget": "500",
        "budget_period_days": "30",
        "holdout_share": "0.05",
        "explore_share": "0.05",
        "objective": "profit",
        "status": "draft",
        "approved_incentives": ["discount_10", "coupon_5"],
        "fallback": "discount_10",
        "model_run_id": "",
        **changes,
    }


def stored(app) -> Strategy:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        strategy = session.scalar(select(Strategy).where(Strategy.key == "spring"))
        assert strategy is not None
        session.expunge(strategy)
        return strategy


def test_analyst_saves_the_configuration_audited(client, auth, spring) -> None:
    auth.login("ana@example.com", "analyst")
    page = client.get("/strategy/spring").get_data(as_text=True)
    assert 'id="save-strategy"' in page and 'value="500.0"' in page
    token = auth.csrf_token("/strategy/spring")
    saved = client.post(
        "/strategy/spring",
        data=form_data(token, budget="750", status="active", approved_incentives=["coupon_5"]),
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/strategy/spring")
    strategy = stored(spring)
    assert strategy.budget == 750 and strategy.status == "active"
    assert strategy.approved_incentives == ["coupon_5"]
    page = client.get("/strategy/spring").get_data(as_text=True)
    assert "Saved strategy spring" in page and 'id="plan-stale"' in page  # plan was for 500
    assert "budget 750" in page  # the chart marks the new budget
    with spring.extensions["liftlab.sessions"]() as session:
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "strategy.update").limit(1)
        )
        assert entry is not None and entry.actor == "ana@example.com"
        assert entry.before["budget"] == 500 and entry.after["budget"] == 750


def test_invalid_input_is_kept_with_the_error_next_to_the_field(client, auth, spring) -> None:
    auth.login("ana@example.com", "analyst")
    token = auth.csrf_token("/strategy/spring")
    cases = [
        ({"budget": "-5"}, "budget", "at least 0"),
        ({"budget": "lots"}, "budget", "Not a valid float value"),
        ({"holdout_share": "0.6", "explore_share": "0.5"}, "explore_share", "below 1"),
        ({"objective": "fame"}, "objective", "Not a valid choice"),
        ({"fallback": "nope"}, "fallback", "not in the catalog"),
    ]
    for changes, field, message in cases:
        response = client.post("/strategy/spring", data=form_data(token, **changes))
        assert response.status_code == 400, changes
        page = response.get_data(as_text=True)
        label = re.search(
            rf'<label class="field [^"]*has-error">\s*<span>[^<]*</span>\s*<[^>]*id="{field}"'
            rf"[^>]*>.*?</label>",
            page,
            re.S,
        )
        assert label and message in label.group(0), (changes, field)
        for name, value in changes.items():
            if name not in ("objective", "fallback"):  # selects keep only known options
                assert f'value="{value}"' in page, (name, value)  # the input is kept
    assert stored(spring).budget == 500


def test_csrf_is_required(client, auth, spring) -> None:
    auth.login("ana@example.com", "analyst")
    response = client.post("/strategy/spring", data=form_data("", budget="900"))
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert stored(spring).budget == 500


def test_frontier_chart_geometry() -> None:
    assert value_at([(0, 0), (100, 50)], 40) == 20
    assert value_at([(0, 0), (100, 50)], 140) is None
    chart = frontier_chart(FRONTIER, 250.0)
    assert chart is not None and chart.budget_value == 900
    left, top, right, bottom = chart.plot
    assert left <= chart.budget_x <= right and top <= chart.budget_y <= bottom
    assert chart.points[0].x == left and chart.points[0].y == chart.zero_y
    assert frontier_chart(FRONTIER[:1], 250.0) is None


def ab_data(token: str, **changes: Any) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "key": "spring-ab",
        "name": "",
        "holdout_weight": "0.2",
        "winner_weight": "0.3",
        "strategy_weight": "0.5",
        **changes,
    }


def test_analyst_creates_a_draft_ab_test_of_the_strategy(client, auth, spring) -> None:
    from experiments.db import Experiment

    auth.login("ana@example.com", "analyst")
    page = client.get("/strategy/spring").get_data(as_text=True)
    assert 'id="create-ab-test"' in page and "No experiment tests this strategy yet" in page
    token = auth.csrf_token("/strategy/spring")
    created = client.post("/strategy/spring/experiment", data=ab_data(token))
    assert created.status_code == 302, created.get_data(as_text=True)
    assert created.headers["Location"].endswith("/experiments/spring-ab")
    detail = client.get("/experiments/spring-ab").get_data(as_text=True)
    assert "Created draft experiment spring-ab testing strategy spring" in detail
    assert 'href="/strategy/spring"' in detail and "per-user decisions under its budget" in detail
    with spring.extensions["liftlab.sessions"]() as session:
        experiment = session.scalar(select(Experiment).where(Experiment.key == "spring-ab"))
        assert experiment is not None and experiment.status == "draft"
        variants = [
            (v.key, v.weight, v.incentive_id is not None, v.strategy_id is not None)
            for v in experiment.variants
        ]
        assert variants == [
            ("holdout", 0.2, False, False),
            ("winner", 0.3, True, False),
            ("targeted", 0.5, False, True),
        ]
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "experiment.create").limit(1)
        )
        assert entry is not None and entry.actor == "ana@example.com"
    page = client.get("/strategy/spring").get_data(as_text=True)
    listed = re.search(r'<ul id="testing-experiments">(.*?)</ul>', page, re.S)
    assert listed and 'href="/experiments/spring-ab"' in listed.group(1)


def test_a_bad_ab_test_is_refused_with_the_error_next_to_the_field(client, auth, spring) -> None:
    from experiments.db import Experiment

    auth.login("ana@example.com", "analyst")
    token = auth.csrf_token("/strategy/spring")
    assert client.post("/strategy/spring/experiment", data=ab_data(token)).status_code == 302
    cases = [
        ({"key": ""}, "key", "give the new experiment a key"),
        ({"key": "spring-ab"}, "key", "already exists"),
        ({"key": "other", "strategy_weight": "0.6"}, "strategy_weight", "must sum to 1"),
        ({"key": "other", "holdout_weight": "1.5"}, "holdout_weight", "1.5 is outside [0.0, 1.0]"),
        ({"key": "other", "winner_weight": "half"}, "winner_weight", "Not a valid float value"),
    ]
    for changes, field, message in cases:
        response = client.post("/strategy/spring/experiment", data=ab_data(token, **changes))
        assert response.status_code == 400, changes
        page = response.get_data(as_text=True)
        label = re.search(
            rf'<label class="field [^"]*has-error">\s*<span>[^<]*</span>\s*<[^>]*id="{field}"'
            rf"[^>]*>.*?</label>",
            page,
            re.S,
        )
        assert label and message in label.group(0), (changes, field)
    with spring.extensions["liftlab.sessions"]() as session:
        keys = session.scalars(select(Experiment.key)).all()
    assert keys == ["spring-ab"]  # nothing else was written


def test_only_analysts_create_ab_tests_and_csrf_is_required(client, auth, spring) -> None:
    auth.login("vic@example.com", "viewer")
    page = client.get("/strategy/spring").get_data(as_text=True)
    assert 'id="ab-test"' in page and 'id="create-ab-test"' not in page
    token = auth.csrf_token("/strategy/spring")
    assert client.post("/strategy/spring/experiment", data=ab_data(token)).status_code == 403
    auth.login("ana@example.com", "analyst")
    refused = client.post("/strategy/spring/experiment", data=ab_data(""))
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    with spring.extensions["liftlab.sessions"]() as session:
        from experiments.db import Experiment

        assert session.scalar(select(Experiment.id).limit(1)) is None


def test_a_spark_plans_frontier_says_it_comes_from_a_sample(client, auth, spring) -> None:
    from experiments.db import Strategy

    with spring.extensions["liftlab.sessions"].begin() as session:
        strategy = session.scalar(select(Strategy).where(Strategy.key == "spring"))
        sample = {"users": 200_311, "of": 1_200_000}
        strategy.config = {**strategy.config, "engine": "spark", "frontier_sample": sample}
    auth.login("viewer@example.com", "viewer")
    page = client.get("/strategy/spring").get_data(as_text=True)
    note = page[page.index('id="frontier-sample"') :]
    assert note.startswith('id="frontier-sample">Computed by the Spark run on a uniform sample')
    assert "200,311 of its 1,200,000 users" in note
    with spring.extensions["liftlab.sessions"].begin() as session:
        strategy = session.scalar(select(Strategy).where(Strategy.key == "spring"))
        strategy.config = {**strategy.config, "frontier_sample": {"users": 9, "of": 9}}
    page = client.get("/strategy/spring").get_data(as_text=True)
    assert "Computed by the Spark run on all its 9 users." in page
