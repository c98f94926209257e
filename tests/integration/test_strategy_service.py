"""Strategy service on both backends: the winner feed, serving decisions through the buckets, the
batch run (uplift model → economics → knapsack → logged decisions) within budget."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from experiments.db import Decision, ResultSnapshot
from experiments.errors import ConflictError, ValidationError
from experiments.services import catalog, demo_data, experiments, strategies

SPEC = {
    "key": "feed",
    "name": "Feed test",
    "variants": [
        {"key": "control", "weight": 0.25},
        {"key": "d20", "weight": 0.25, "incentive": "discount_20"},
        {"key": "c5", "weight": 0.25, "incentive": "coupon_5"},
        {"key": "ship", "weight": 0.25, "incentive": "free_shipping"},
    ],
    "metrics": {"primary": "conversion", "guardrail": ["margin"]},
}


def variant(key: str, mean: float, ci=None, harm=None):  # type: ignore[no-untyped-def]
    row = {"variant": key, "n": 1000, "mean": mean, "ci": ci, "lift": None}
    if harm is not None:
        row["harm"] = harm
    return row


def concluded_experiment(session):  # type: ignore[no-untyped-def]
    catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    experiment = experiments.create_experiment(session, SPEC, actor="test")
    experiments.transition(session, "feed", "running", actor="test")
    results = {
        "metrics": [
            {
                "metric": "conversion",
                "role": "primary",
                "variants": [
                    variant("control", 0.10),
                    variant("d20", 0.15, [0.3, 0.7]),
                    variant("c5", 0.14, [0.25, 0.55]),
                    variant("ship", 0.101, [-0.2, 0.22]),
                ],
            },
            {
                "metric": "margin",
                "role": "guardrail",
                "variants": [
                    variant("control", 3.0),
                    variant("d20", 2.0, harm=True),
                    variant("c5", 3.4, harm=False),
                    variant("ship", 2.9, harm=False),
                ],
            },
        ]
    }
    session.add(ResultSnapshot(experiment_id=experiment.id, n_units=4000, results=results))
    experiments.transition(session, "feed", "stopped", actor="test")
    experiments.transition(session, "feed", "concluded", actor="test", winner="c5")
    return experiment


def test_concluding_with_a_winner_feeds_the_strategy(db_session) -> None:
    concluded_experiment(db_session)
    strategy = strategies.get_strategy(db_session, "from-feed")
    shown = strategies.snapshot(db_session, strategy)
    assert shown["fallback"] == "coupon_5"
    # d20 wins on conversion but harms the margin guardrail; ship's interval is too wide
    assert shown["approved_incentives"] == ["coupon_5"]
    calibration = shown["config"]["calibration"]
    assert calibration["discount_20"]["experiment_ate"] == pytest.approx(0.05)
    assert calibration["coupon_5"]["experiment_ate"] == pytest.approx(0.04)
    assert shown["config"]["source_experiment"] == "feed"


def test_decide_serves_the_fallback_through_logged_buckets(db_session) -> None:
    concluded_experiment(db_session)
    with pytest.raises(ConflictError):
        strategies.decide(db_session, "from-feed", "u1")  # still a draft
    strategies.update_strategy(
        db_session,
        "from-feed",
        {"status": "active", "holdout_share": 0.1, "explore_share": 0.2},
        actor="test",
    )
    buckets = {}
    for i in range(400):
        decision = strategies.decide(db_session, "from-feed", f"user-{i}", {"country": "DE"})
        buckets[decision.bucket] = buckets.get(decision.bucket, 0) + 1
        assert 0 < decision.propensity <= 1
        if decision.bucket == "holdout":
            assert decision.incentive_id is None
    again = strategies.decide(db_session, "from-feed", "user-7")
    assert again.decision_id == strategies.decide(db_session, "from-feed", "user-7").decision_id
    assert 20 <= buckets["holdout"] <= 65 and 50 <= buckets["explore"] <= 115
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 400
    with pytest.raises(ValidationError):
        strategies.decide(db_session, "from-feed", "")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"budget": -1}, "budget"),
        ({"holdout_share": 1.2}, "holdout_share"),
        ({"holdout_share": 0.6, "explore_share": 0.5}, "explore_share"),
        ({"approved_incentives": ["nope"]}, "approved_incentives"),
        ({"objective": "fun"}, "objective"),
    ],
)
def test_bad_strategy_settings_name_the_field(db_session, change, field) -> None:
    concluded_experiment(db_session)
    with pytest.raises(ValidationError) as error:
        strategies.update_strategy(db_session, "from-feed", change, actor="test")
    assert error.value.field == field


@pytest.mark.slow
def test_batch_run_respects_the_budget_and_logs_propensities(db_session, tmp_path) -> None:
    from experiments.db import ModelRun
    from experiments.jobs.strategy_run import run_strategy
    from experiments.simulation import simulate_shop
    from uplift import UpliftModel

    concluded_experiment(db_session)
    shop = simulate_shop(n_users=3000, seed=4)
    data = shop.randomized_experiment(arms=["none", "discount_20", "coupon_5"], seed=1)
    features = [c for c in shop.users.columns if c != "unit_id"]
    data["conversion"] = data["converted"].astype(float)
    model = UpliftModel(
        representation=(32,), head=(16,), max_epochs=3, random_state=0, verbose=False
    ).fit(
        data[features],
        data["treatment"].to_numpy(),
        data[["conversion", "revenue"]],
        control="none",
    )
    model.save(tmp_path / "model")
    run = ModelRun(
        architecture="dragonnet",
        status="succeeded",
        artifact_path=str(tmp_path / "model"),
        metrics={"features": features},
    )
    db_session.add(run)
    db_session.flush()
    strategies.update_strategy(
        db_session,
        "from-feed",
        {
            "budget": 3000.0,
            "status": "active",
            "model_run_id": run.id,
            "approved_incentives": ["coupon_5", "discount_20"],
            "holdout_share": 0.05,
            "explore_share": 0.05,
        },
        actor="test",
    )
    plan = run_strategy(db_session, "from-feed", shop.users)
    assert plan["spend"] <= 3000.0 + 1e-6
    assert plan["dual_bound"] >= plan["value"] - 1e-9
    decisions = list(db_session.scalars(select(Decision)))
    assert len(decisions) == 3000
    props = np.array([d.propensity for d in decisions])
    assert ((props > 0) & (props <= 1)).all()
    exploit_cost = sum(d.expected_cost for d in decisions if d.bucket == "exploit")
    assert exploit_cost <= 3000.0 + 1e-6
    ledger = strategies.spend_summary(db_session, "from-feed")
    assert ledger["planned_spend"] == pytest.approx(sum(d.expected_cost for d in decisions))
    frontier = strategies.get_strategy(db_session, "from-feed").config["frontier"]
    values = [p["value"] for p in frontier]
    assert values == sorted(values)  # more budget never earns less
