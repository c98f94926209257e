"""Strategies A/B-tested as an ordinary experiment, on both backends: a variant serves a strategy's
decisions, another the winner to everyone, a third nothing; decide assigns (sticky, recorded),
logs each decision with experiment, variant and propensity; the results are the ordinary ones."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select

from experiments.assignment import run_experiment
from experiments.db import Assignment, Decision, Event, Incentive, Strategy
from experiments.errors import ConflictError, ValidationError
from experiments.services import catalog, demo_data, experiments, results, strategies
from experiments.services.strategy_experiments import (
    create_strategy_experiment,
    decide_in_experiment,
    decision_summary,
)

N_UNITS = 600


def batch_decisions(session, strategy: Strategy, n: int) -> dict[str, Decision]:  # type: ignore[no-untyped-def]
    """What `liftlab strategy run` logs: one decision per unit (here the even units only), as the
    strategy's next batch run."""
    ids = {i.key: i.id for i in session.scalars(select(Incentive))}
    strategy.batch_run += 1
    out = {}
    for i in range(0, n, 2):
        arm = ("discount_10", "coupon_5", None)[i % 3]
        decision = Decision(
            decision_id=f"batch-{i}",
            strategy_id=strategy.id,
            unit_id=f"user-{i}",
            incentive_id=ids[arm] if arm else None,
            bucket="exploit",
            propensity=0.9,
            expected_value=2.0,
            expected_cost=1.5 if arm else 0.0,
            context={"source": "batch"},
            batch_run=strategy.batch_run,
        )
        session.add(decision)
        out[decision.unit_id] = decision
    session.flush()
    return out


@pytest.fixture
def running(db_session):  # type: ignore[no-untyped-def]
    catalog.ensure_defaults(db_session, demo_data.default_incentive_specs())
    strategy = strategies.create_strategy(
        db_session,
        {
            "key": "targeting",
            "approved_incentives": ["coupon_5", "discount_10"],
            "fallback": "coupon_5",
            "budget": 500.0,
            "holdout_share": 0.1,
            "explore_share": 0.1,
            "status": "active",
        },
        actor="test",
    )
    batch = batch_decisions(db_session, strategy, N_UNITS)
    experiment = create_strategy_experiment(
        db_session, "strategy-test", "targeting", actor="test", weights=(0.2, 0.3, 0.5)
    )
    experiments.transition(db_session, "strategy-test", "running", actor="test")
    return experiment, strategy, batch


def test_experiment_of_strategies_has_holdout_winner_and_strategy_variants(
    db_session, running
) -> None:
    experiment, strategy, _ = running
    shown = experiments.snapshot(db_session, experiment)
    assert [(v["key"], v["incentive"], v["strategy"], v["weight"]) for v in shown["variants"]] == [
        ("holdout", None, None, 0.2),
        ("winner", "coupon_5", None, 0.3),
        ("targeted", None, "targeting", 0.5),
    ]
    assert shown["metrics"]["primary"] == ["margin"]


def test_decide_serves_each_variant_and_logs_its_propensity(db_session, running) -> None:
    experiment, strategy, batch = running
    # room for every new draw (the hard cap on strategy variants: test_variant_draws_are_capped)
    strategies.update_strategy(db_session, "targeting", {"budget": 1e6}, actor="test")
    config = experiments.assignment_config(experiment)
    keys = {i.id: i.key for i in db_session.scalars(select(Incentive))}
    counts = {"holdout": 0, "winner": 0, "targeted": 0}
    for i in range(N_UNITS):
        unit = f"user-{i}"
        served = decide_in_experiment(db_session, "strategy-test", unit, {"country": "DE"})
        # the variant is the experiment's own hash assignment (pure reference)
        expected = experiment.variants[run_experiment(config, {"id": unit}).variation].key
        assert served.variant == expected and served.reason == "assigned"
        counts[served.variant] += 1
        d = served.decision
        assert d.experiment_id == experiment.id and d.context["features"] == {"country": "DE"}
        assert d.variant_id == next(v.id for v in experiment.variants if v.key == expected)
        if served.variant == "holdout":
            assert (d.incentive_id, d.bucket, d.strategy_id) == (None, "holdout", None)
            assert d.propensity == pytest.approx(0.2)
        elif served.variant == "winner":
            assert (keys[d.incentive_id], d.bucket, d.strategy_id) == ("coupon_5", "exploit", None)
            assert d.propensity == pytest.approx(0.3)
        else:
            assert served.strategy == "targeting" and d.strategy_id == strategy.id
            if unit in batch:  # the strategy's batch decision, its propensity times the share
                assert d.incentive_id == batch[unit].incentive_id
                assert d.propensity == pytest.approx(0.5 * 0.9)
                assert d.expected_cost == batch[unit].expected_cost
                reused = batch[unit].decision_id
                assert d.reused_decision_id == d.context["reused_decision"] == reused
            else:  # the strategy's fallback through its own buckets (no plan, no features)
                choice = strategies.choose(db_session, strategy, unit)
                assert (d.incentive_id, d.bucket) == (choice.incentive_id, choice.bucket)
                assert d.propensity == pytest.approx(0.5 * choice.propensity)
                assert d.reused_decision_id is None and d.context["reused_decision"] is None
                assert d.context["variant_source"] == "online-fallback"
                assert d.context["online_reason"] == "no_batch_plan"
                assert "budget_cap" not in d.context
    # the split follows the weights (binomial 99.9% band)
    for variant, weight in (("holdout", 0.2), ("winner", 0.3), ("targeted", 0.5)):
        assert abs(counts[variant] - weight * N_UNITS) <= 3.3 * np.sqrt(
            N_UNITS * weight * (1 - weight)
        )
    # sticky: the same decision again, nothing new written; assignments recorded once each
    again = decide_in_experiment(db_session, "strategy-test", "user-7")
    assert again.reason == "sticky"
    assert (
        again.decision.decision_id
        == decide_in_experiment(db_session, "strategy-test", "user-7").decision.decision_id
    )
    logged = select(func.count()).select_from(Decision).where(Decision.experiment_id.isnot(None))
    assert db_session.scalar(logged) == N_UNITS
    assigned = select(func.count()).select_from(Assignment)
    assert db_session.scalar(assigned.where(Assignment.experiment_id == experiment.id)) == N_UNITS
    summary = decision_summary(db_session, "strategy-test")
    assert summary["units"] == N_UNITS
    per_variant = {}
    for row in summary["decisions"]:
        per_variant[row["variant"]] = per_variant.get(row["variant"], 0) + row["units"]
    assert per_variant == counts
    # the strategy's own ledger still holds only its own (batch) decisions
    ledger = strategies.spend_summary(db_session, "targeting")
    assert sum(r["users"] for r in ledger["ledger"]) == len(batch)


def test_results_of_a_strategy_experiment_are_the_ordinary_statistics(db_session, running) -> None:
    experiment, _, _ = running
    served = {}
    for i in range(N_UNITS):
        served[f"user-{i}"] = decide_in_experiment(db_session, "strategy-test", f"user-{i}")
    start = min(a.first_exposure_at for a in db_session.scalars(select(Assignment)))
    rng = np.random.default_rng(0)
    lift = {"holdout": 0.0, "winner": 1.0, "targeted": 3.0}
    margins: dict[str, list[float]] = {"holdout": [], "winner": [], "targeted": []}
    for k, (unit, s) in enumerate(served.items()):
        value = float(rng.normal(10.0 + lift[s.variant], 2.0))
        margins[s.variant].append(value)
        db_session.add(
            Event(
                event_id=f"m{k}",
                unit_id=unit,
                name="margin",
                value=value,
                occurred_at=start + dt.timedelta(days=1),
            )
        )
    db_session.flush()
    out = results.refresh(db_session, "strategy-test", as_of=start + dt.timedelta(days=10))
    margin = next(m for m in out["metrics"] if m["metric"] == "margin")
    by_variant = {v["variant"]: v for v in margin["variants"]}
    assert set(by_variant) == {"holdout", "winner", "targeted"}
    for variant, values in margins.items():
        assert by_variant[variant]["n"] == len(values)
        assert by_variant[variant]["mean"] == pytest.approx(np.mean(values), rel=1e-9)
    assert by_variant["targeted"]["lift"] > 0


def test_excluded_forced_and_bad_requests(db_session, running) -> None:
    experiment, strategy, _ = running
    experiments.update_experiment(
        db_session, "strategy-test", {"forced": {"qa-user": "winner"}}, actor="test"
    )
    forced = decide_in_experiment(db_session, "strategy-test", "qa-user")
    assert forced.reason == "forced" and forced.variant == "winner"
    assert forced.decision.propensity == 1.0
    assert (
        db_session.scalar(
            select(func.count()).select_from(Decision).where(Decision.unit_id == "qa-user")
        )
        == 0
    )  # QA decisions are served, never logged
    with pytest.raises(ValidationError) as error:
        decide_in_experiment(db_session, "strategy-test", "")
    assert error.value.field == "unit_id"
    strategies.update_strategy(db_session, "targeting", {"status": "paused"}, actor="test")
    with pytest.raises(ConflictError) as conflict:
        for i in range(50):  # some unit lands in the strategy's variant
            decide_in_experiment(db_session, "strategy-test", f"other-{i}")
    assert conflict.value.field == "strategy"
    experiments.transition(db_session, "strategy-test", "stopped", actor="test")
    with pytest.raises(ConflictError) as stopped:
        decide_in_experiment(db_session, "strategy-test", "late-user")
    assert stopped.value.field == "status"


def test_targeting_excludes_units_without_logging(db_session) -> None:
    catalog.ensure_defaults(db_session, demo_data.default_incentive_specs())
    strategies.create_strategy(
        db_session,
        {
            "key": "s2",
            "approved_incentives": ["coupon_5"],
            "fallback": "coupon_5",
            "status": "active",
        },
        actor="test",
    )
    create_strategy_experiment(db_session, "de-only", "s2", actor="test")
    experiments.update_experiment(
        db_session, "de-only", {"condition": {"country": "DE"}}, actor="test"
    )
    experiments.transition(db_session, "de-only", "running", actor="test")
    outside = decide_in_experiment(db_session, "de-only", "u1", {"country": "FR"})
    assert (outside.reason, outside.variant, outside.decision) == ("excluded", None, None)
    inside = decide_in_experiment(
        db_session, "de-only", "u1", {"segment": "x"}, attributes={"country": "DE"}
    )
    assert inside.reason == "assigned" and inside.decision is not None
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 1


@pytest.mark.parametrize(
    ("variant", "field"),
    [
        (
            {"key": "both", "weight": 0.5, "incentive": "coupon_5", "strategy": "s3"},
            "variants[1].strategy",
        ),
        ({"key": "nope", "weight": 0.5, "strategy": "missing"}, "variants[1].strategy"),
    ],
)
def test_bad_strategy_variants_name_the_field(db_session, variant, field) -> None:
    catalog.ensure_defaults(db_session, demo_data.default_incentive_specs())
    strategies.create_strategy(db_session, {"key": "s3"}, actor="test")
    spec = {
        "key": "bad",
        "name": "Bad",
        "variants": [{"key": "control", "weight": 0.5}, variant],
        "metrics": {"primary": "margin"},
    }
    with pytest.raises(ValidationError) as error:
        experiments.create_experiment(db_session, spec, actor="test")
    assert error.value.field == field
    with pytest.raises(ValidationError) as no_winner:
        create_strategy_experiment(db_session, "no-winner", "s3", actor="test")
    assert no_winner.value.field == "strategy"


def test_training_data_labels_strategy_variants_and_refuses_to_train(db_session, running) -> None:
    """A strategy variant's users are not the control: the per-unit outcomes name the strategy,
    and the uplift training set refuses such an experiment (it learns single incentives)."""
    import pandas as pd

    from experiments.jobs.training_data import training_frame, unit_outcomes

    served = {
        f"user-{i}": decide_in_experiment(db_session, "strategy-test", f"user-{i}")
        for i in range(60)
    }
    outcomes = unit_outcomes(db_session, "strategy-test").set_index("unit_id")
    expected_arm = {"holdout": "none", "winner": "coupon_5", "targeted": "strategy:targeting"}
    for unit, decision in served.items():
        assert outcomes.loc[unit, "arm"] == expected_arm[decision.variant], unit
    population = pd.DataFrame({"unit_id": list(served), "x": np.arange(len(served), dtype=float)})
    with pytest.raises(ValidationError) as raised:
        training_frame(db_session, "strategy-test", population)
    assert raised.value.field == "experiment"
    assert "strategy:targeting" in raised.value.message
