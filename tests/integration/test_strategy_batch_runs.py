"""A batch run supersedes a strategy's logged decisions instead of deleting them, on both
backends: every earlier row (batch, online, served through an experiment's strategy variant) is
kept unchanged; the current ledger (spend summary, latest decision, the cap's spend) is the new
run's decisions plus the online decisions after it; earlier runs stay queryable by run and by
unit (service, CLI); the experiment's own log is untouched."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from experiments.db import Decision
from experiments.errors import ValidationError
from experiments.jobs.strategy_run import run_strategy
from experiments.services import catalog, demo_data, experiments, strategies
from experiments.services.strategy_experiments import (
    create_strategy_experiment,
    decide_in_experiment,
    decision_summary,
)
from experiments.services.strategy_ledger import (
    cap_spend,
    latest_decision,
    ledger_spend,
    unit_history,
    variant_spend,
)


@pytest.fixture(scope="module")
def newcomers():  # type: ignore[no-untyped-def]
    """Users the batch never saw (their own ids, features of another simulated shop)."""
    from experiments.simulation import simulate_shop

    users = simulate_shop(n_users=60, seed=11).users
    return users.assign(unit_id=[f"new-{i}" for i in range(len(users))])


def stored_rows(session) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    """Every logged decision as stored (read back from the database, not the identity map)."""
    session.expire_all()
    return {
        d.decision_id: (
            d.strategy_id,
            d.experiment_id,
            d.variant_id,
            d.unit_id,
            d.incentive_id,
            d.bucket,
            d.propensity,
            d.expected_value,
            d.expected_cost,
            d.batch_run,
            d.reused_decision_id,
            d.context,
            d.decided_at,
        )
        for d in session.scalars(select(Decision))
    }


def planned(session) -> float:  # type: ignore[no-untyped-def]
    """The strategy's running total of the spend its cap sees, as stored."""
    session.expire_all()
    return strategies.get_strategy(session, "online").planned_spend


def serve_run_one(session, population, newcomers, features_of):  # type: ignore[no-untyped-def]
    """After the first batch run: one online decision and an experiment of the strategy whose
    variant repeats batch decisions (batch units) and draws anew (newcomers)."""
    strategies.update_strategy(session, "online", {"budget": 1e6}, actor="test")
    online = strategies.decide(session, "online", "new-0", features_of(newcomers, 0))
    create_strategy_experiment(session, "ab", "online", actor="test", weights=(0.2, 0.3, 0.5))
    experiments.transition(session, "ab", "running", actor="test")
    served = [
        decide_in_experiment(session, "ab", f"new-{i}", features_of(newcomers, i))
        for i in range(1, 40)
    ]
    served += [decide_in_experiment(session, "ab", u) for u in population["unit_id"][:40]]
    targeted = [s.decision for s in served if s.variant == "targeted"]
    return online, targeted


def test_a_batch_run_supersedes_and_keeps_every_logged_decision(
    db_session, online_strategy, population, newcomers, features_of
) -> None:
    online_strategy(db_session)
    first = run_strategy(db_session, "online", population)
    strategy = strategies.get_strategy(db_session, "online")
    assert strategy.batch_run == 1
    online, targeted = serve_run_one(db_session, population, newcomers, features_of)
    assert online.batch_run == 1 and online.context["source"] == "online-model"
    drawn = [d for d in targeted if d.reused_decision_id is None]
    reused = [d for d in targeted if d.reused_decision_id is not None]
    assert drawn and reused and all(d.batch_run == 1 for d in targeted)
    before = strategies.spend_summary(db_session, "online")
    assert before["planned_spend"] == pytest.approx(first["spend"] + online.expected_cost)
    # the cap's running total is what the rows add up to: own ledger plus the new variant draws
    assert planned(db_session) == pytest.approx(cap_spend(db_session, strategy), rel=1e-9)
    assert planned(db_session) == pytest.approx(
        before["planned_spend"] + before["variant_spend"], rel=1e-9
    )
    assert before["variant_spend"] == pytest.approx(sum(d.expected_cost for d in drawn))
    served_before = decision_summary(db_session, "ab")
    rows_before = stored_rows(db_session)

    second = run_strategy(db_session, "online", population)
    late = strategies.decide(db_session, "online", "new-late", features_of(newcomers, 59))

    rows_after = stored_rows(db_session)
    assert {k: rows_after[k] for k in rows_before} == rows_before  # nothing lost, nothing changed
    assert len(rows_after) == len(rows_before) + len(population) + 1
    strategy = strategies.get_strategy(db_session, "online")
    assert strategy.batch_run == 2 and late.batch_run == 2
    assert second["spend"] > first["spend"]  # the budget was raised: another plan
    # the current ledger: the new run's decisions plus the online decision after it
    ledger = strategies.spend_summary(db_session, "online")
    assert (ledger["batch_run"], ledger["current"]) == (2, True)
    assert sum(r["users"] for r in ledger["ledger"]) == len(population) + 1
    assert ledger["planned_spend"] == pytest.approx(second["spend"] + late.expected_cost, rel=1e-12)
    assert ledger_spend(db_session, strategy) == pytest.approx(ledger["planned_spend"])
    assert ledger["variant_spend"] == variant_spend(db_session, strategy) == 0.0  # run 1's draws
    assert cap_spend(db_session, strategy) == pytest.approx(ledger["planned_spend"])
    assert planned(db_session) == pytest.approx(ledger["planned_spend"], rel=1e-9)
    # the superseded run is still there, by run ...
    old = strategies.spend_summary(db_session, "online", batch_run=1)
    assert (old["batch_run"], old["current"], old["variant_spend"]) == (1, False, None)
    assert sum(r["users"] for r in old["ledger"]) == len(population) + 1
    assert old["planned_spend"] == pytest.approx(first["spend"] + online.expected_cost)
    # ... and by unit: run 1's batch decision, the experiment's repeat of it, run 2's
    unit = reused[0].unit_id
    history = unit_history(db_session, strategy, unit)
    assert [(d.batch_run, d.experiment_id is not None) for d in history] == [
        (2, False),
        (1, True),
        (1, False),
    ]
    assert history[1].reused_decision_id == history[2].decision_id
    # latest_decision reads the current run only: run 1's online unit is decided again
    assert latest_decision(db_session, strategy, unit).decision_id == history[0].decision_id
    assert latest_decision(db_session, strategy, "new-0") is None
    again = strategies.decide(db_session, "online", "new-0", features_of(newcomers, 0))
    assert again.batch_run == 2 and again.decision_id != online.decision_id
    # the experiment's log is its own: unchanged, and still sticky
    assert decision_summary(db_session, "ab") == served_before
    sticky = decide_in_experiment(db_session, "ab", targeted[0].unit_id)
    assert sticky.reason == "sticky" and sticky.decision.decision_id == targeted[0].decision_id
    with pytest.raises(ValidationError) as error:
        strategies.spend_summary(db_session, "online", batch_run=3)
    assert error.value.field == "batch_run" and "0 to 2" in error.value.message


def test_the_cli_shows_the_current_ledger_an_earlier_run_and_a_units_history(
    run, db_url, online_strategy, population, tmp_path
) -> None:
    from experiments.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        online_strategy(session)
        first = run_strategy(session, "online", population)
        strategies.update_strategy(session, "online", {"budget": 1e6}, actor="test")
        second = run_strategy(session, "online", population)
    engine.dispose()
    current = json.loads(run("strategy", "ledger", "online", "--format", "json").output)
    earlier = json.loads(
        run("strategy", "ledger", "online", "--run", "1", "--format", "json").output
    )
    for rows, plan in ((current, second), (earlier, first)):
        assert sum(r["users"] for r in rows) == len(population)
        assert sum(r["expected_cost"] for r in rows) == pytest.approx(plan["spend"], rel=1e-12)
    table = run("strategy", "ledger", "online", "--run", "1").output
    assert "batch run 1 (superseded): planned spend" in table
    unit = str(population["unit_id"].iloc[0])
    history = json.loads(run("strategy", "history", "online", unit, "--format", "json").output)
    assert [(h["batch_run"], h["current"], h["source"]) for h in history] == [
        (2, True, "batch"),
        (1, False, "batch"),
    ]
    refused = run("strategy", "ledger", "online", "--run", "7")
    assert refused.exit_code == 1 and "batch_run" in refused.output and "0 to 2" in refused.output


def test_the_simulated_period_serves_the_current_ledger_only(db_session) -> None:
    """The demo's period simulation plans with the current run: run 0 gave every unit the coupon,
    run 1 gives it to the even units only; an experiment's variant of the strategy gave it to the
    odd ones after run 1 (the experiment's decisions, not the strategy's plan)."""
    from experiments.db import Experiment, Incentive, Variant
    from experiments.services.strategy_simulation import simulate_period
    from experiments.simulation import simulate_shop

    shop = simulate_shop(n_users=200, seed=3)
    catalog.ensure_defaults(db_session, demo_data.default_incentive_specs())
    strategy = strategies.create_strategy(
        db_session,
        {"key": "sim", "approved_incentives": ["coupon_5"], "budget": 1e9, "status": "active"},
        actor="test",
    )
    coupon = db_session.scalar(select(Incentive.id).where(Incentive.key == "coupon_5"))
    strategy.batch_run = 1
    for run_number in (0, 1):
        for i, unit in enumerate(shop.users["unit_id"]):
            given = run_number == 0 or i % 2 == 0
            db_session.add(
                Decision(
                    decision_id=f"r{run_number}-{unit}",
                    strategy_id=strategy.id,
                    unit_id=unit,
                    incentive_id=coupon if given else None,
                    bucket="exploit",
                    propensity=0.9,
                    expected_cost=5.0 if given else 0.0,
                    batch_run=run_number,
                )
            )
    experiment = Experiment(key="e", name="e", seed="e", design={})
    db_session.add(experiment)
    db_session.flush()
    variant = Variant(
        experiment_id=experiment.id,
        position=0,
        key="t",
        name="t",
        weight=1.0,
        strategy_id=strategy.id,
    )
    db_session.add(variant)
    db_session.flush()
    for unit in shop.users["unit_id"][1::2]:
        db_session.add(
            Decision(
                decision_id=f"e-{unit}",
                strategy_id=strategy.id,
                experiment_id=experiment.id,
                variant_id=variant.id,
                unit_id=unit,
                incentive_id=coupon,
                bucket="exploit",
                propensity=0.9,
                expected_cost=5.0,
                batch_run=1,
            )
        )
    db_session.flush()
    result = simulate_period(db_session, shop, "sim")
    assert result["incentives_issued"] == 100 and result["stopped_by_cap"] == 0
