"""A strategy served as an experiment's variant decides like ``POST /decide`` under the strategy,
on both backends: the online model for a unit whose features cover the model columns, the hard
cap of the strategy's budget (its own ledger plus the variants' new draws, never counting a
repeated own decision twice), also under concurrent requests, with the propensity of the capped
policy times the variant's share."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from experiments.assignment import run_experiment
from experiments.db import Assignment, Decision, Incentive, ModelRun
from experiments.jobs.strategy_run import run_strategy
from experiments.services import catalog, demo_data, experiments, strategies
from experiments.services.strategy_experiments import (
    create_strategy_experiment,
    decide_in_experiment,
)
from experiments.services.strategy_ledger import cap_spend, ledger_spend, variant_spend
from experiments.services.strategy_serving import candidate


@pytest.fixture(scope="module")
def newcomers():  # type: ignore[no-untyped-def]
    from experiments.simulation import simulate_shop

    users = simulate_shop(n_users=80, seed=11).users
    return users.assign(unit_id=[f"new-{i}" for i in range(len(users))])


def start_experiment(session, strategy_key: str, weights=(0.2, 0.3, 0.5)):  # type: ignore[no-untyped-def]
    create_strategy_experiment(session, "ab", strategy_key, actor="test", weights=weights)
    experiments.transition(session, "ab", "running", actor="test")


def test_a_strategy_variant_serves_the_online_model(
    db_session, online_strategy, population, newcomers, features_of
) -> None:
    run = db_session.get(ModelRun, online_strategy(db_session, config={}).model_run_id)
    run_strategy(db_session, "online", population)
    strategies.update_strategy(db_session, "online", {"budget": 1e6}, actor="test")
    strategy = strategies.get_strategy(db_session, "online")
    start_experiment(db_session, "online")
    drawn_cost, buckets = 0.0, set()
    for i in range(len(newcomers)):
        unit, row = newcomers["unit_id"].iloc[i], features_of(newcomers, i)
        served = decide_in_experiment(db_session, "ab", unit, row)
        if served.variant != "targeted":
            continue
        d = served.decision
        # what the strategy itself would draw for the unit (deterministic, before the cap)
        drawn = candidate(db_session, strategy, unit, row)
        assert drawn.source == "online-model"
        assert d.context["variant_source"] == "online-model" and d.context["source"] == "experiment"
        assert d.context["model_run_id"] == run.id and d.context["lambda"] > 0
        assert (d.incentive_id, d.bucket) == (drawn.incentive_id, drawn.bucket)
        assert d.context["variant_propensity"] == pytest.approx(drawn.propensity, abs=1e-12)
        assert d.propensity == pytest.approx(0.5 * drawn.propensity, abs=1e-12)
        assert d.expected_value == pytest.approx(drawn.expected_value, abs=1e-9)
        assert d.expected_cost == pytest.approx(drawn.expected_cost, abs=1e-9)
        assert d.reused_decision_id is None and d.context["reused_decision"] is None
        assert d.batch_run == 1 and "budget_cap" not in d.context
        drawn_cost += d.expected_cost
        buckets.add(d.bucket)
    assert buckets == {"holdout", "explore", "exploit"}
    assert variant_spend(db_session, strategy) == pytest.approx(drawn_cost, rel=1e-12)
    # without features the variant falls back, saying why
    for i in range(200):
        served = decide_in_experiment(db_session, "ab", f"bare-{i}")
        if served.variant == "targeted":
            break
    assert served.decision.context["variant_source"] == "online-fallback"
    assert served.decision.context["online_reason"] == "no_features"


def capped_strategy(session, budget: float = 23.0):  # type: ignore[no-untyped-def]
    """Strategy ``capped`` (no plan: the fallback; coupon_5 costs 5, free_gift 4) with a batch run
    of three logged decisions costing 2 each (6 of the budget)."""
    catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    strategy = strategies.create_strategy(
        session,
        {
            "key": "capped",
            "approved_incentives": ["coupon_5", "free_gift"],
            "fallback": "coupon_5",
            "holdout_share": 0.1,
            "explore_share": 0.2,
            "budget": budget,
            "status": "active",
        },
        actor="test",
    )
    gift = session.scalar(select(Incentive.id).where(Incentive.key == "free_gift"))
    strategy.batch_run = 1
    own = {}
    for i in range(3):
        own[f"user-{i}"] = Decision(
            decision_id=f"batch-{i}",
            strategy_id=strategy.id,
            unit_id=f"user-{i}",
            incentive_id=gift,
            bucket="exploit",
            propensity=0.7,
            expected_cost=2.0,
            context={"source": "batch"},
            batch_run=1,
        )
    session.add_all(own.values())
    strategy.planned_spend = 6.0  # what a batch run logging them would have started with
    session.flush()
    return strategy, own


def test_variant_draws_are_capped_by_the_strategys_budget(db_session) -> None:
    strategy, own = capped_strategy(db_session)
    start_experiment(db_session, "capped", weights=(0.1, 0.1, 0.8))
    ids = {i.id: i.key for i in db_session.scalars(select(Incentive))}
    cost = {"coupon_5": 5.0, "free_gift": 4.0}
    drawn_p = {"none": 0.1 + 0.2 / 3, "coupon_5": 0.7 + 0.2 / 3, "free_gift": 0.2 / 3}
    spent, withheld, repeated = 6.0, 0, 0
    for i in range(80):
        served = decide_in_experiment(db_session, "ab", f"user-{i}")
        if served.variant != "targeted":
            continue
        d, context = served.decision, served.decision.context
        assert context["variant_share"] == pytest.approx(0.8)
        if f"user-{i}" in own:  # the batch decision again: in the ledger already, not capped
            assert d.reused_decision_id == context["reused_decision"] == f"batch-{i}"
            assert (d.expected_cost, d.propensity) == (2.0, pytest.approx(0.8 * 0.7))
            assert "budget_cap" not in context
            repeated += 1
            continue
        assert d.reused_decision_id is None and context["reused_decision"] is None
        fits = {k: spent + c <= 23.0 for k, c in cost.items()}
        issued = ids[d.incentive_id] if d.incentive_id else "none"
        drawn = context["withheld"]["incentive"] if context.get("budget_exhausted") else issued
        if issued != "none":
            assert fits[issued]
            assert d.propensity == pytest.approx(0.8 * drawn_p[issued])
        else:  # none: its own probability plus that of every arm that no longer fits
            lost = sum(drawn_p[k] for k, ok in fits.items() if not ok)
            assert context["variant_propensity"] == pytest.approx(drawn_p["none"] + lost)
            assert d.propensity == pytest.approx(0.8 * (drawn_p["none"] + lost))
        if drawn != issued:
            withheld += 1
            assert not fits[drawn] and issued == "none" and d.expected_cost == 0.0
            assert context["withheld"]["expected_cost"] == cost[drawn]
            assert context["budget_cap"] == {"planned_spend": spent, "budget": 23.0}
        spent += d.expected_cost
        assert spent <= 23.0 + 1e-9  # own ledger + new variant draws never pass the budget
    assert repeated > 0 and withheld > 0 and spent > 23.0 - 5.0
    assert ledger_spend(db_session, strategy) == 6.0  # the strategy's own ledger
    assert variant_spend(db_session, strategy) == pytest.approx(spent - 6.0)
    assert cap_spend(db_session, strategy) == pytest.approx(spent)
    db_session.refresh(strategy)
    assert strategy.planned_spend == pytest.approx(spent)  # the running total agrees
    summary = strategies.spend_summary(db_session, "capped")
    assert summary["planned_spend"] == 6.0 and summary["variant_spend"] == pytest.approx(spent - 6)
    # /decide under the strategy itself caps against the same spend (the variants' draws too)
    for i in range(20):
        direct = strategies.decide(db_session, "capped", f"direct-{i}")
        if direct.context.get("withheld", {}).get("incentive") == "coupon_5":
            break
    assert direct.context["budget_cap"] == {"planned_spend": pytest.approx(spent), "budget": 23.0}


@pytest.mark.parametrize("second_path", ["experiment", "strategy"])
def test_concurrent_variant_decisions_cannot_overspend(
    db_url, second_path, coupon_strategy
) -> None:
    """A strategy variant's new draw holds the ledger lock like ``serve``: a second request (in
    the experiment, or under the strategy itself) waits, then sees its spend."""
    from experiments.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        # every unit draws the coupon, costing 5
        coupon_strategy(session, "tight", holdout_share=0.0, explore_share=0.0, budget=5.0)
        start_experiment(session, "tight", weights=(0.1, 0.1, 0.8))
        experiment = experiments.get_experiment(session, "ab")
        config = experiments.assignment_config(experiment)
        keys = [v.key for v in experiment.variants]
    targeted = [
        u
        for u in (f"u-{i}" for i in range(100))
        if keys[run_experiment(config, {"id": u}).variation] == "targeted"
    ]
    first = factory()
    served = decide_in_experiment(first, "ab", targeted[0])
    assert served.decision.incentive_id is not None  # 5 of 5, not committed yet
    outcome: dict[str, object] = {}

    def second() -> None:
        with factory.begin() as session:
            if second_path == "experiment":
                other = decide_in_experiment(session, "ab", targeted[1]).decision
            else:
                other = strategies.decide(session, "tight", targeted[1])
            outcome["incentive"] = other.incentive_id
            outcome["context"] = dict(other.context)

    worker = threading.Thread(target=second)
    worker.start()
    worker.join(timeout=1.0)  # without the lock it would decide (and commit) now
    first.commit()
    first.close()
    worker.join()
    context = outcome["context"]
    assert outcome["incentive"] is None and context["budget_exhausted"] is True
    assert context["budget_cap"] == {"planned_spend": 5.0, "budget": 5.0}
    with factory() as session:
        strategy = strategies.get_strategy(session, "tight")
        assert cap_spend(session, strategy) == 5.0
    engine.dispose()


@pytest.mark.parametrize("variant", ["holdout", "winner", "targeted"])
def test_simultaneous_first_requests_for_a_unit_log_one_decision(
    db_url, variant, coupon_strategy
) -> None:
    """Two requests for the same new unit at once: the second waits for the first's
    transaction, then repeats its decision ("sticky") instead of logging a second one."""
    from experiments.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        coupon_strategy(session, "s", budget=1e6)
        start_experiment(session, "s", weights=(0.34, 0.33, 0.33))
        experiment = experiments.get_experiment(session, "ab")
        config = experiments.assignment_config(experiment)
        keys = [v.key for v in experiment.variants]
    unit = next(
        u
        for u in (f"u-{i}" for i in range(200))
        if keys[run_experiment(config, {"id": u}).variation] == variant
    )
    first = factory()
    mine = decide_in_experiment(first, "ab", unit)
    assert mine.reason == "assigned"  # logged, not committed yet
    outcome: dict[str, object] = {}

    def second() -> None:
        with factory.begin() as session:
            other = decide_in_experiment(session, "ab", unit)
            outcome.update(reason=other.reason, decision_id=other.decision.decision_id)

    worker = threading.Thread(target=second)
    worker.start()
    worker.join(timeout=1.0)  # without the lock it would log its own decision now
    decision_id = mine.decision.decision_id
    first.commit()
    first.close()
    worker.join()
    assert outcome == {"reason": "sticky", "decision_id": decision_id}
    with factory() as session:
        rows = session.scalars(select(Decision.decision_id).where(Decision.unit_id == unit))
        assert rows.all() == [decision_id]
    engine.dispose()


def test_the_api_checks_a_strategy_variants_features_and_writes_nothing_on_a_400(
    app, client, online_strategy, population, newcomers, features_of
) -> None:
    from experiments.services import accounts

    with app.extensions["liftlab.sessions"].begin() as session:
        online_strategy(session, budget=1e6, config={})
        run_strategy(session, "online", population)
        start_experiment(session, "online")
        experiment = experiments.get_experiment(session, "ab")
        config = experiments.assignment_config(experiment)
        keys = [v.key for v in experiment.variants]
        _, key = accounts.create_api_key(
            session, name="app", scopes=["assign"], actor="test", account_id=None
        )
    i = next(
        i
        for i, unit in enumerate(newcomers["unit_id"])
        if keys[run_experiment(config, {"id": unit}).variation] == "targeted"
    )
    unit, features = newcomers["unit_id"].iloc[i], features_of(newcomers, i)
    headers = {"Authorization": f"Bearer {key}"}
    bad = client.post(
        "/api/v1/decide",
        json={"experiment": "ab", "unit_id": unit, "features": {**features, "monetary": "x"}},
        headers=headers,
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "features.monetary"
    with app.extensions["liftlab.sessions"]() as session:
        for table in (Decision, Assignment):
            assert session.scalar(select(func.count()).select_from(table)) == (
                len(population) if table is Decision else 0
            )
    body = client.post(
        "/api/v1/decide",
        json={"experiment": "ab", "unit_id": unit, "features": features},
        headers=headers,
    ).get_json()
    assert (body["variant"], body["strategy"], body["source"]) == (
        "targeted",
        "online",
        "experiment",
    )
    assert body["budget_exhausted"] is False
    with app.extensions["liftlab.sessions"]() as session:
        logged = session.scalar(select(Decision).where(Decision.decision_id == body["decision_id"]))
        assert logged.context["variant_source"] == "online-model"
        assert (
            body["propensity"]
            == logged.propensity
            == pytest.approx(0.5 * logged.context["variant_propensity"])
        )
