"""Online decisions of a strategy, on both backends: a unit with features is scored by the model of
the last batch plan exactly as the batch functions score it; the fallback logs the cost model's
cost; the hard budget cap withholds incentives (with the capped policy's propensity), also under
concurrent requests; bad feature values are a 400 naming the field, with nothing written."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from sqlalchemy import func, select

from experiments.db import Decision, Incentive
from experiments.errors import ValidationError
from experiments.jobs.strategy_run import (
    calibrate,
    cost_model,
    plan_population,
    population_economics,
    raw_outcomes,
    run_strategy,
    strategy_inputs,
)
from experiments.services import accounts, catalog, demo_data, strategies
from experiments.strategy.exact import exact_mean


@pytest.fixture(scope="module")
def newcomers():  # type: ignore[no-untyped-def]
    """Users the batch never saw (their own ids, features of another simulated shop)."""
    from experiments.simulation import simulate_shop

    users = simulate_shop(n_users=120, seed=11).users
    return users.assign(unit_id=[f"new-{i}" for i in range(len(users))])


def batch_reference(session, population):  # type: ignore[no-untyped-def]
    """The batch path's functions called directly: inputs, model, shifts, economics, plan."""
    inputs, model = strategy_inputs(session, "online", list(population.columns))
    shifts, economics, plan = plan_population(inputs, model, population)
    return inputs, model, shifts, economics, plan


def test_a_unit_with_features_gets_the_batch_computation(
    db_session, online_strategy, population, newcomers, features_of
) -> None:
    online_strategy(db_session)
    summary = run_strategy(db_session, "online", population)
    inputs, model, shifts, _, batch = batch_reference(db_session, population)
    assert summary["lambda"] == batch.lambda_ > 0  # the budget binds: lambda matters
    # more budget for online decisions; the plan (its lambda) stays the batch's
    strategies.update_strategy(db_session, "online", {"budget": 1e6}, actor="test")
    always = dataclasses.replace(batch.policy, holdout=0.0, explore=0.0)  # the exploit rule
    served = {"holdout": 0, "explore": 0, "exploit": 0, "incentive": 0}
    for i in range(len(newcomers)):
        unit = newcomers["unit_id"].iloc[i]
        decision = strategies.decide(db_session, "online", unit, features_of(newcomers, i))
        q, revenue = raw_outcomes(model, newcomers.iloc[[i]][inputs.features], inputs.arms)
        q, order_value = calibrate(q, revenue, shifts)
        economics = population_economics(inputs, q, order_value)
        ref = batch.policy.decide([unit], economics.value, economics.cost)
        arm = int(ref.arm[0])
        assert decision.context["source"] == "online-model"
        assert decision.context["model_run_id"] == inputs.model_run_id
        assert decision.bucket == ref.bucket[0]
        assert decision.incentive_id == (inputs.incentive_ids[arm] if arm >= 0 else None)
        assert decision.propensity == pytest.approx(float(ref.propensity[0]), abs=1e-12)
        value = float(economics.value[0, arm]) if arm >= 0 else 0.0
        cost = float(economics.cost[0, arm]) if arm >= 0 else 0.0
        assert decision.expected_value == pytest.approx(value, abs=1e-9)
        assert decision.expected_cost == pytest.approx(cost, abs=1e-9)
        if decision.bucket == "holdout":
            # control, with the probability of none: the holdout, none's explore share, and the
            # exploit share when the exploit rule gives this unit none too
            exploit_none = always.decide([unit], economics.value, economics.cost).arm[0] < 0
            assert decision.incentive_id is None
            assert decision.propensity == pytest.approx(0.1 + 0.05 / 3 + 0.85 * exploit_none)
        served[decision.bucket] += 1
        served["incentive"] += decision.incentive_id is not None
    assert min(served.values()) > 0, served
    again = strategies.decide(db_session, "online", "new-3", features_of(newcomers, 3))
    assert again.context["source"] == "online-model"  # logged once, then repeated
    ledger = strategies.spend_summary(db_session, "online")
    online = db_session.scalars(select(Decision).where(Decision.unit_id.like("new-%"))).all()
    assert len(online) == len(newcomers)
    assert ledger["planned_spend"] == pytest.approx(
        summary["spend"] + sum(d.expected_cost for d in online), rel=1e-12
    )


def test_the_fallback_logs_the_cost_models_cost(
    db_session, online_strategy, population, features_of
) -> None:
    catalog.ensure_defaults(db_session, demo_data.default_incentive_specs())
    incentives = {i.key: i for i in db_session.scalars(select(Incentive))}
    strategies.create_strategy(
        db_session,
        {
            "key": "plain",
            "approved_incentives": ["coupon_5", "free_gift", "discount_10"],
            "fallback": "coupon_5",
            "holdout_share": 0.1,
            "explore_share": 0.4,
            "budget": 1e6,
            "status": "active",
        },
        actor="test",
    )
    seen = set()
    for i in range(80):  # no batch plan: the cost of one redemption, from the cost model
        decision = strategies.decide(db_session, "plain", f"u-{i}")
        assert decision.context["source"] == "online-fallback"
        assert decision.context["online_reason"] == "no_batch_plan"
        assert decision.expected_value == 0.0
        if decision.incentive_id is None:
            assert decision.expected_cost == 0.0
            continue
        key = next(k for k, v in incentives.items() if v.id == decision.incentive_id)
        model = cost_model(incentives[key])
        seen.add(key)
        if key == "discount_10":  # a percentage of an order value nobody sent
            assert decision.context["cost_basis"] == "percentage_not_counted"
            assert decision.expected_cost == 0.0
        else:
            assert decision.context["cost_basis"] == "redemption"
            assert decision.expected_cost == model.per_order_fixed + model.per_user
    assert seen == {"coupon_5", "free_gift", "discount_10"}

    # with a batch plan: the mean expected spend of the arm over the batch population
    online_strategy(db_session)
    run_strategy(db_session, "online", population)
    inputs, _, _, economics, _ = batch_reference(db_session, population)
    strategies.update_strategy(db_session, "online", {"budget": 1e6}, actor="test")
    mean_cost = [exact_mean(economics.cost[:, j]) for j in range(len(inputs.arms))]
    partial = {k: v for k, v in features_of(population, 0).items() if k != "region"}
    reasons = set()
    for i in range(60):
        decision = strategies.decide(db_session, "online", f"f-{i}", partial if i % 2 else None)
        reasons.add(decision.context["online_reason"])
        if i % 2:
            assert decision.context["missing_features"] == ["region"]
        if decision.incentive_id is not None:
            arm = inputs.incentive_ids.index(decision.incentive_id)
            assert decision.context["cost_basis"] == "plan_mean"
            assert decision.expected_cost == pytest.approx(mean_cost[arm], abs=1e-12)
    assert reasons == {"no_features", "features_missing"}


def test_the_hard_cap_stops_online_spend_at_the_budget(db_session) -> None:
    catalog.ensure_defaults(db_session, demo_data.default_incentive_specs())
    strategies.create_strategy(
        db_session,
        {
            "key": "capped",
            "approved_incentives": ["coupon_5", "free_gift"],  # 5.00 and 4.00 a redemption
            "fallback": "coupon_5",
            "holdout_share": 0.1,
            "explore_share": 0.2,
            "budget": 23.0,
            "status": "active",
        },
        actor="test",
    )
    updated_at = strategies.get_strategy(db_session, "capped").updated_at
    ids = {i.id: i.key for i in db_session.scalars(select(Incentive))}
    cost = {"coupon_5": 5.0, "free_gift": 4.0}
    # the uncapped draw: holdout, explore uniform over none and both, exploit on the fallback
    drawn_p = {"none": 0.1 + 0.2 / 3, "coupon_5": 0.7 + 0.2 / 3, "free_gift": 0.2 / 3}
    spent, withheld = 0.0, 0
    for i in range(60):
        decision = strategies.decide(db_session, "capped", f"u-{i}")
        fits = {k: spent + c <= 23.0 for k, c in cost.items()}
        served = ids[decision.incentive_id] if decision.incentive_id else "none"
        context = decision.context
        drawn = context["withheld"]["incentive"] if context.get("budget_exhausted") else served
        if served != "none":
            assert fits[served] and decision.propensity == pytest.approx(drawn_p[served])
        else:  # none: its own probability plus that of every arm that no longer fits
            lost = sum(drawn_p[k] for k, ok in fits.items() if not ok)
            assert decision.propensity == pytest.approx(drawn_p["none"] + lost)
        if drawn != served:
            withheld += 1
            assert not fits[drawn] and served == "none"
            assert context["withheld"]["expected_cost"] == cost[drawn]
            assert context["budget_cap"] == {"planned_spend": spent, "budget": 23.0}
        spent += decision.expected_cost
    ledger = strategies.spend_summary(db_session, "capped")
    assert ledger["planned_spend"] == pytest.approx(spent) and spent <= 23.0 + 1e-9
    assert spent > 23.0 - 5.0  # it did spend up to the cap
    assert withheld > 0
    late = strategies.decide(db_session, "capped", "late-unit")
    assert late.incentive_id is None and late.propensity == pytest.approx(1.0)
    assert strategies.spend_summary(db_session, "capped")["planned_spend"] == pytest.approx(spent)
    db_session.expire_all()  # the ledger lock (a no-op write on SQLite) changed nothing
    assert strategies.get_strategy(db_session, "capped").updated_at == updated_at


def test_concurrent_decisions_cannot_overspend(db_url, coupon_strategy) -> None:
    """The second request waits for the first one's ledger lock, then sees its spend."""
    from experiments.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        # every unit draws the coupon, costing 5
        coupon_strategy(session, "tight", holdout_share=0.0, explore_share=0.0, budget=5.0)
    first = factory()
    decided = strategies.decide(first, "tight", "a")
    assert decided.incentive_id is not None  # 5 of 5, not committed yet
    outcome: dict[str, object] = {}

    def second() -> None:
        with factory.begin() as session:
            other = strategies.decide(session, "tight", "b")
            outcome["incentive"] = other.incentive_id
            outcome["context"] = dict(other.context)

    worker = threading.Thread(target=second)
    worker.start()
    worker.join(timeout=1.0)  # without the lock it would decide (and commit) now
    first.commit()
    first.close()
    worker.join()
    assert outcome["incentive"] is None and outcome["context"]["budget_exhausted"] is True
    with factory() as session:
        assert strategies.spend_summary(session, "tight")["planned_spend"] == 5.0
    engine.dispose()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recency_days": "12"}, "features.recency_days"),
        ({"monetary": True}, "features.monetary"),
        ({"tenure_days": None}, "features.tenure_days"),
        ({"channel": 1.5}, "features.channel"),
        ({"device": ["mobile"]}, "features.device"),
    ],
)
def test_bad_feature_values_name_the_field_and_write_nothing(
    db_session, online_strategy, population, change, field, features_of
) -> None:
    online_strategy(db_session)
    run_strategy(db_session, "online", population)
    before = db_session.scalar(select(func.count()).select_from(Decision))
    with pytest.raises(ValidationError) as error:
        strategies.decide(db_session, "online", "bad", {**features_of(population, 0), **change})
    assert error.value.field == field
    assert error.value.errors[0]["field"] == field
    assert db_session.scalar(select(func.count()).select_from(Decision)) == before


def test_unknown_levels_score_as_unknown_and_are_logged(
    db_session, online_strategy, population, features_of
) -> None:
    online_strategy(db_session, budget=1e6)
    run_strategy(db_session, "online", population)
    features = {**features_of(population, 0), "channel": "carrier-pigeon", "extra": "kept"}
    decision = strategies.decide(db_session, "online", "odd", features)
    assert decision.context["source"] == "online-model"
    assert decision.context["unknown_levels"] == {"channel": "carrier-pigeon"}
    assert decision.context["features"]["extra"] == "kept"


def test_the_api_serves_model_decisions_and_refuses_bad_features(
    app, client, online_strategy, population, features_of
) -> None:
    with app.extensions["liftlab.sessions"].begin() as session:
        online_strategy(session, budget=1e6, holdout_share=0.0, explore_share=0.0)
        run_strategy(session, "online", population)
        _, key = accounts.create_api_key(
            session, name="app", scopes=["assign"], actor="test", account_id=None
        )
    headers = {"Authorization": f"Bearer {key}"}
    features = features_of(population, 1)
    body = client.post(
        "/api/v1/decide",
        json={"strategy": "online", "unit_id": "web-1", "features": features},
        headers=headers,
    ).get_json()
    assert body["source"] == "online-model" and body["bucket"] == "exploit"
    assert body["propensity"] == 1.0 and body["budget_exhausted"] is False
    with app.extensions["liftlab.sessions"]() as session:
        logged = session.scalar(select(Decision).where(Decision.unit_id == "web-1"))
        assert (body["expected_value"], body["expected_cost"]) == (
            logged.expected_value,
            logged.expected_cost,
        )
    bad = client.post(
        "/api/v1/decide",
        json={
            "strategy": "online",
            "unit_id": "web-2",
            "features": {**features, "frequency": "often", "region": 3.5},
        },
        headers=headers,
    )
    assert bad.status_code == 400
    error = bad.get_json()
    assert error["field"] == "features.frequency"
    assert [e["field"] for e in error["errors"]] == ["features.frequency", "features.region"]
    with app.extensions["liftlab.sessions"]() as session:
        assert session.scalar(select(func.count()).where(Decision.unit_id == "web-2")) == 0
