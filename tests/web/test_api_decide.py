"""POST /api/v1/decide: under a strategy (the fallback priced by the cost model, the hard budget
cap), and in an experiment whose variants are strategies (assigned, served the variant's decision,
logged with experiment, variant and propensity); bad requests get a 4xx naming the field and write
nothing. The online model's decisions: tests/integration/test_strategy_online.py."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from experiments.assignment import run_experiment
from experiments.db import Assignment, Decision
from experiments.services import accounts, catalog, demo_data, experiments, strategies
from experiments.services.strategy_experiments import create_strategy_experiment


@pytest.fixture
def keys(app) -> dict[str, str]:
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        strategies.create_strategy(
            session,
            {
                "key": "targeting",
                "approved_incentives": ["coupon_5", "discount_10"],
                "fallback": "coupon_5",
                "holdout_share": 0.1,
                "explore_share": 0.2,
                "budget": 1000.0,
                "status": "active",
            },
            actor="test",
        )
        create_strategy_experiment(session, "strategy-ab", "targeting", actor="test")
        experiments.transition(session, "strategy-ab", "running", actor="test")
        out = {}
        for name, scopes in (("app", ["assign"]), ("pipe", ["ingest"])):
            _, out[name] = accounts.create_api_key(
                session, name=name, scopes=scopes, actor="test", account_id=None
            )
    return out


def decide(client, key: str, body: dict):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/decide", json=body, headers={"Authorization": f"Bearer {key}"})


def _count(app, where=None) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(Decision)
    with app.extensions["liftlab.sessions"]() as session:
        return int(session.scalar(query if where is None else query.where(where)))


def test_decide_under_a_strategy(client, keys, app) -> None:
    body = decide(client, keys["app"], {"strategy": "targeting", "unit_id": "u-1"}).get_json()
    assert set(body) == {
        "decision_id",
        "unit_id",
        "incentive",
        "bucket",
        "propensity",
        "source",
        "expected_value",
        "expected_cost",
        "budget_exhausted",
        "daily_budget_spent",
    }
    assert body["bucket"] in ("holdout", "explore", "exploit") and 0 < body["propensity"] <= 1
    assert body["source"] == "online-fallback" and body["budget_exhausted"] is False
    again = decide(client, keys["app"], {"strategy": "targeting", "unit_id": "u-1"}).get_json()
    assert again == body
    assert _count(app) == 1


def test_a_paced_strategy_stops_at_the_days_cap(client, keys, app) -> None:
    """Paced over 10 days from today with 1000 to spend: the day's cap is 100, so the coupons
    (5.00 each) stop there, marked daily_budget_spent; the budget is far from exhausted."""
    import datetime as dt

    from experiments.services import strategy_pacing

    with app.extensions["liftlab.sessions"].begin() as session:
        strategies.update_strategy(session, "targeting", {"budget_period_days": 10}, actor="test")
        strategy = strategies.get_strategy(session, "targeting")
        today = dt.datetime.now(dt.UTC).date()
        strategy_pacing.set_pacing(session, strategy, start=today, daily_units=50, actor="test")
    bodies = [
        decide(client, keys["app"], {"strategy": "targeting", "unit_id": f"p-{i}"}).get_json()
        for i in range(60)
    ]
    spent = sum(b["expected_cost"] for b in bodies)
    refused = [b for b in bodies if b["daily_budget_spent"]]
    assert refused and all(b["incentive"] is None for b in refused)
    assert not any(b["budget_exhausted"] for b in bodies)
    assert 100.0 - 5.0 < spent <= 100.0  # stopped at the day's cap, not at the budget
    with app.extensions["liftlab.sessions"]() as session:
        logged = session.scalar(
            select(Decision).where(Decision.decision_id == refused[0]["decision_id"])
        )
        assert logged.context["pacing"]["daily_cap"] == pytest.approx(100.0)
        assert logged.context["withheld"]["incentive"] == "coupon_5"


def test_the_fallback_is_priced_and_capped_by_the_budget(client, keys, app) -> None:
    """No batch plan: a coupon costs its amount, 10% off counts 0 (no order value); the ledger
    never passes the budget, and the units after it get no incentive, marked."""
    with app.extensions["liftlab.sessions"].begin() as session:
        strategies.update_strategy(session, "targeting", {"budget": 12.0}, actor="test")
    bodies = [
        decide(client, keys["app"], {"strategy": "targeting", "unit_id": f"c-{i}"}).get_json()
        for i in range(30)
    ]
    for body in bodies:
        key = body["incentive"]["key"] if body["incentive"] else None
        assert body["expected_cost"] == {"coupon_5": 5.0, "discount_10": 0.0, None: 0.0}[key]
        assert body["expected_value"] == 0.0
    exhausted = [b for b in bodies if b["budget_exhausted"]]
    assert exhausted and all(b["incentive"] is None for b in exhausted)
    assert {b["bucket"] for b in exhausted} <= {"explore", "exploit"}  # the bucket stays
    assert all(
        b["incentive"]["key"] != "coupon_5"
        for b in bodies[bodies.index(exhausted[0]) :]
        if b["incentive"]
    )
    # the capped policy gives none the coupon's probability too
    assert exhausted[0]["propensity"] == pytest.approx(0.1 + 0.2 / 3 + 0.7 + 0.2 / 3)
    with app.extensions["liftlab.sessions"]() as session:
        ledger = strategies.spend_summary(session, "targeting")
        withheld = session.scalar(
            select(Decision).where(Decision.decision_id == exhausted[0]["decision_id"])
        ).context["withheld"]
    assert ledger["planned_spend"] == 10.0  # two coupons; a third would make 15 > 12
    assert withheld["incentive"] == "coupon_5" and withheld["expected_cost"] == 5.0


def test_decide_in_a_strategy_experiment_serves_and_logs_the_variant(client, keys, app) -> None:
    with app.extensions["liftlab.sessions"]() as session:
        experiment = experiments.get_experiment(session, "strategy-ab")
        config = experiments.assignment_config(experiment)
        variant_keys = [v.key for v in experiment.variants]
    seen = set()
    for i in range(60):
        unit = f"user-{i}"
        body = decide(
            client, keys["app"], {"experiment": "strategy-ab", "unit_id": unit}
        ).get_json()
        expected = variant_keys[run_experiment(config, {"id": unit}).variation]
        assert body["experiment"] == "strategy-ab" and body["variant"] == expected
        assert body["reason"] == "assigned"
        seen.add(expected)
        if expected == "holdout":
            assert body["incentive"] is None and body["bucket"] == "holdout"
            assert body["propensity"] == pytest.approx(0.34)
        elif expected == "winner":
            assert body["incentive"]["key"] == "coupon_5" and body["strategy"] is None
            assert body["propensity"] == pytest.approx(0.33)
        else:
            assert body["strategy"] == "targeting"
            # the strategy's own propensity (holdout 0.1, explore 0.2 uniform over none and its two
            # arms, exploit 0.7 on the fallback coupon_5), times the variant's share
            arm = body["incentive"]["key"] if body["incentive"] else "none"
            own = {"none": 0.1 + 0.2 / 3, "coupon_5": 0.7 + 0.2 / 3, "discount_10": 0.2 / 3}[arm]
            assert body["propensity"] == pytest.approx(0.33 * own)
        # /assign agrees and names the strategy of a strategy variant
        assigned = client.post(
            "/api/v1/assign",
            json={"unit_id": unit},
            headers={"Authorization": f"Bearer {keys['app']}"},
        ).get_json()["assignments"]
        assert [(a["variant"], a["reason"]) for a in assigned] == [(expected, "sticky")]
        assert assigned[0]["strategy"] == ("targeting" if expected == "targeted" else None)
    assert seen == {"holdout", "winner", "targeted"}
    sticky = decide(client, keys["app"], {"experiment": "strategy-ab", "unit_id": "user-3"})
    assert sticky.get_json()["reason"] == "sticky"
    assert _count(app, Decision.experiment_id.isnot(None)) == 60
    with app.extensions["liftlab.sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(Assignment)) == 60
    payload = client.get(
        "/api/v1/features", headers={"Authorization": f"Bearer {keys['app']}"}
    ).get_json()
    rule = payload["features"]["strategy-ab"]["rules"][0]
    assert rule["variations"] == ["none", "coupon_5", "strategy:targeting"]


def test_a_strategy_variant_is_capped_by_the_strategys_budget(client, keys, app) -> None:
    """Budget 5: the first coupon the strategy variant draws fits, later ones are withheld (no
    incentive, budget_exhausted, the capped propensity times the share); 10% off costs 0."""
    with app.extensions["liftlab.sessions"].begin() as session:
        strategies.update_strategy(session, "targeting", {"budget": 5.0}, actor="test")
    bodies = [
        decide(client, keys["app"], {"experiment": "strategy-ab", "unit_id": f"v-{i}"}).get_json()
        for i in range(90)
    ]
    targeted = [b for b in bodies if b["variant"] == "targeted"]
    coupons = [b for b in targeted if b["incentive"] and b["incentive"]["key"] == "coupon_5"]
    exhausted = [b for b in targeted if b["budget_exhausted"]]
    assert len(coupons) == 1 and coupons[0]["expected_cost"] == 5.0
    assert exhausted and all(b["incentive"] is None for b in exhausted)
    assert targeted.index(exhausted[0]) > targeted.index(coupons[0])
    for b in exhausted:  # none takes the withheld coupon's probability too
        assert b["propensity"] == pytest.approx(0.33 * (0.1 + 0.2 / 3 + 0.7 + 0.2 / 3))
    assert not any(b["budget_exhausted"] for b in bodies if b["variant"] != "targeted")
    with app.extensions["liftlab.sessions"]() as session:
        ledger = strategies.spend_summary(session, "targeting")
    assert (ledger["planned_spend"], ledger["variant_spend"]) == (0.0, 5.0)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"unit_id": "u"}, 400, "strategy"),
        ({"strategy": "targeting", "experiment": "strategy-ab", "unit_id": "u"}, 400, "strategy"),
        ({"experiment": 5, "unit_id": "u"}, 400, "experiment"),
        ({"experiment": "strategy-ab"}, 400, "unit_id"),
        ({"experiment": "strategy-ab", "unit_id": "u", "attributes": [1]}, 400, "attributes"),
        ({"experiment": "nope", "unit_id": "u"}, 404, None),
        ({"strategy": "nope", "unit_id": "u"}, 404, None),
        ({"strategy": "targeting", "unit_id": "u", "features": [1]}, 400, "features"),
        (
            {"strategy": "targeting", "unit_id": "u", "features": {f"k{i}": 1 for i in range(201)}},
            400,
            "features",
        ),
        ({"strategy": "targeting", "unit_id": "u", "features": {"k" * 101: 1}}, 400, "features"),
        (
            {"strategy": "targeting", "unit_id": "u", "features": {"monetary": float("nan")}},
            400,
            "features.monetary",
        ),
        (
            {"experiment": "strategy-ab", "unit_id": "u", "features": {"a": {"b": float("inf")}}},
            400,
            "features.a.b",
        ),
    ],
)
def test_bad_decide_requests_name_the_field_and_write_nothing(
    client, keys, app, body, status, field
) -> None:
    response = decide(client, keys["app"], body)
    assert response.status_code == status, response.get_json()
    if field is not None:
        assert response.get_json()["field"] == field
    assert _count(app) == 0


def test_decide_needs_the_assign_scope_and_a_running_experiment(client, keys, app) -> None:
    denied = decide(client, keys["pipe"], {"experiment": "strategy-ab", "unit_id": "u"})
    assert denied.status_code == 403
    with app.extensions["liftlab.sessions"].begin() as session:
        experiments.transition(session, "strategy-ab", "stopped", actor="test")
    stopped = decide(client, keys["app"], {"experiment": "strategy-ab", "unit_id": "u"})
    assert stopped.status_code == 409 and stopped.get_json()["field"] == "status"
    assert _count(app) == 0


def test_openapi_describes_both_ways_to_decide(client) -> None:
    operation = client.get("/api/v1/openapi.json").get_json()["paths"]["/decide"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"strategy", "experiment", "unit_id", "attributes"} <= set(schema["properties"])
    assert schema["properties"]["features"]["maxProperties"] == 200
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    fields = {"source", "expected_value", "expected_cost", "budget_exhausted"}
    assert fields <= set(answer["properties"])
    assert "online-model" in answer["properties"]["source"]["enum"]
    assert "budget_exhausted" in operation["description"]
