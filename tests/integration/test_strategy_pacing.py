"""Daily pacing of a strategy in serving, on both backends: each day's cap is the spend at the
day's start plus the day's share of what is left, the online model prices the day's units with
the lambda at which the plan's exploit rule spends the day's target per unit, the forecast comes
from the days before; bad pacing input names the field and writes nothing."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from experiments.errors import ValidationError
from experiments.jobs.strategy_run import plan_population, run_strategy, strategy_inputs
from experiments.services import strategies, strategy_pacing
from experiments.strategy.knapsack import rule_choice
from experiments.strategy.spend_curve import DECADES, POINTS

START = dt.datetime.now(dt.UTC).date()  # decisions are logged today: day 0's history
DAYS = 10
STEP = 10 ** (DECADES / (POINTS - 2)) * 1.01  # one step of the spend curve's lambda grid


@pytest.fixture(scope="module")
def arrivals():  # type: ignore[no-untyped-def]
    """Units the batch never saw: features of another simulated shop, ids per day."""
    from experiments.simulation import simulate_shop

    return simulate_shop(n_users=150, seed=12).users


def spend_at(economics, lam: float, mu) -> float:  # type: ignore[no-untyped-def]
    """Mean expected spend per user of the exploit rule at ``lam`` (``Policy``'s rule)."""
    value, cost = economics.value, economics.cost
    arm = rule_choice(value, cost, np.ones_like(cost, dtype=bool), lam, mu)
    return float(np.where(arm >= 0, cost[np.arange(len(arm)), np.maximum(arm, 0)], 0.0).mean())


def clock(monkeypatch, day: int) -> dt.date:  # type: ignore[no-untyped-def]
    date = START + dt.timedelta(days=day)
    monkeypatch.setattr(strategy_pacing, "today", lambda: date)
    return date


def serve_day(session, arrivals, features_of, day: int, n: int):  # type: ignore[no-untyped-def]
    return [
        strategies.decide(session, "online", f"d{day}-{i}", features_of(arrivals, i))
        for i in range(n)
    ]


def paced_strategy(session, online_strategy, population, extra: float):  # type: ignore[no-untyped-def]
    """The shared online strategy after its batch run, with ``extra`` budget left for online
    decisions over a paced period of DAYS days; returns the batch plan's summary."""
    online_strategy(session)
    summary = run_strategy(session, "online", population)
    budget = summary["spend"] + extra
    change = {"budget": budget, "budget_period_days": DAYS}
    strategies.update_strategy(session, "online", change, actor="test")
    row = strategies.get_strategy(session, "online")
    strategy_pacing.set_pacing(session, row, start=START, daily_units=40, actor="test")
    return summary


def test_each_day_is_capped_at_its_share_and_priced_with_its_lambda(
    db_session, online_strategy, population, arrivals, features_of, monkeypatch
) -> None:
    summary = paced_strategy(db_session, online_strategy, population, extra=600.0)
    row = strategies.get_strategy(db_session, "online")
    budget = row.budget
    inputs, model = strategy_inputs(db_session, "online", list(population.columns))
    _, economics, _ = plan_population(inputs, model, population)
    mu = np.asarray(summary["mu"])

    spent_before = summary["spend"]
    lambdas = []
    for day in range(3):
        clock(monkeypatch, day)
        decisions = serve_day(db_session, arrivals, features_of, day, 150)
        paced = [d.context["pacing"] for d in decisions]
        assert {p["day"] for p in paced} == {day}
        target = (budget - spent_before) / (DAYS - day)  # even schedule: 1 / remaining days
        assert paced[0]["target"] == pytest.approx(target, rel=1e-12)
        assert paced[0]["daily_cap"] == pytest.approx(spent_before + target, rel=1e-12)
        db_session.expire_all()
        spent = strategies.get_strategy(db_session, "online").planned_spend
        assert spent - spent_before <= target + 1e-9  # the day's cap holds
        refused = [d for d in decisions if d.context.get("daily_budget_spent")]
        assert all(d.incentive_id is None for d in refused)
        assert refused or day > 0  # day 0 forecast 40 units and got 150: its cap refuses some
        assert not any(d.context.get("budget_exhausted") for d in decisions)
        model = [d for d in decisions if d.context["source"] == "online-model"]
        assert {d.context["lambda"] for d in model} == {model[0].context["lambda"]}
        assert all(d.context["pacing"]["lambda_source"] == "paced" for d in model)
        lam = model[0].context["lambda"]
        lambdas.append(lam)
        state = strategies.get_strategy(db_session, "online").config["pacing_day"]
        forecast = 40.0 if day == 0 else 150.0  # configured, then the days before (all today's)
        assert state["forecast"] == pytest.approx(forecast)
        assert state["forecast_basis"] == ("configured" if day == 0 else "history")
        # independent check of the day's lambda: on the batch population, the exploit rule spends
        # what the day's target leaves per exploit-bucket unit at that lambda, to the curve's
        # resolution (one grid step either side)
        h, e = row.holdout_share, row.explore_share
        mean_cost = row.config["online"]["mean_cost"]
        per_exploit = (target / forecast - e * float(np.mean(mean_cost))) / (1 - h - e)
        assert (
            spend_at(economics, lam * STEP, mu)
            <= per_exploit
            <= spend_at(economics, lam / STEP, mu)
        )
        spent_before = spent
    assert lambdas[1] > lambdas[0]  # a larger forecast: less per unit, a higher price of budget


def test_pacing_applies_within_its_period_and_a_new_batch_run_restarts_the_day(
    db_session, online_strategy, population, arrivals, features_of, monkeypatch
) -> None:
    summary = paced_strategy(db_session, online_strategy, population, extra=600.0)
    for day in (-1, DAYS):  # the day before the period, the day after it
        clock(monkeypatch, day)
        decision = strategies.decide(db_session, "online", f"out{day}", features_of(arrivals, 0))
        assert "pacing" not in decision.context
        assert decision.context["lambda"] == summary["lambda"]  # the plan prices units
    row = strategies.get_strategy(db_session, "online")
    assert "pacing_day" not in row.config and strategy_pacing.pacing_status(db_session, row)[
        "state"
    ] == ("ended")

    clock(monkeypatch, 4)
    serve_day(db_session, arrivals, features_of, 4, 20)
    first = strategies.get_strategy(db_session, "online").config["pacing_day"]
    assert first["index"] == 4 and first["batch_run"] == 1
    again = run_strategy(db_session, "online", population)  # a new ledger: planned spend reset
    db_session.expire_all()
    row = strategies.get_strategy(db_session, "online")
    assert row.config["pacing"]["start"] == START.isoformat()  # the batch run kept the pacing
    decision = strategies.decide(db_session, "online", "after-run", features_of(arrivals, 1))
    second = strategies.get_strategy(db_session, "online").config["pacing_day"]
    assert second["batch_run"] == 2 and second["index"] == 4
    assert second["spend_at_start"] == pytest.approx(again["spend"], rel=1e-12)
    assert second["target"] == pytest.approx((row.budget - again["spend"]) / (DAYS - 4))
    assert decision.context["pacing"]["daily_cap"] == pytest.approx(second["cap"])
    status = strategy_pacing.pacing_status(db_session, row)
    assert status["state"] == "pacing" and status["today"] == second
    assert status["spent_today"] == pytest.approx(decision.expected_cost, abs=1e-9)


def test_bad_pacing_input_names_the_field_and_writes_nothing(
    db_session, online_strategy, population, monkeypatch
) -> None:
    paced_strategy(db_session, online_strategy, population, extra=600.0)
    row = strategies.get_strategy(db_session, "online")
    stored = dict(row.config)
    good = {"start": START.isoformat(), "daily_units": 40}
    for change, field in (
        ({"start": "02/03/2026"}, "start"),
        ({"start": "2026-02-30"}, "start"),
        ({"schedule": "1,2,3"}, "schedule"),  # 3 weights for a 10-day period
        ({"schedule": "a,b"}, "schedule"),
        ({"schedule": "weekly"}, "schedule"),
        ({"schedule": [0.0] * DAYS}, "schedule"),
        ({"daily_units": 0}, "daily_units"),
        ({"daily_units": "many"}, "daily_units"),
        ({"daily_units": float("nan")}, "daily_units"),
    ):
        with pytest.raises(ValidationError) as err:
            strategy_pacing.set_pacing(db_session, row, **{**good, **change}, actor="test")
        assert err.value.field == field, change
        assert strategies.get_strategy(db_session, "online").config == stored
    weights = [1.0] * (DAYS - 2) + [2.0, 2.0]  # the last two days weigh double
    strategy_pacing.set_pacing(
        db_session,
        row,
        start=START,
        schedule=",".join(map(str, weights)),
        daily_units=40,
        actor="test",
    )
    assert row.config["pacing"]["schedule"] == weights
    with pytest.raises(ValidationError) as err:  # the schedule fixes the period's length
        strategies.update_strategy(db_session, "online", {"budget_period_days": 7}, actor="test")
    assert err.value.field == "budget_period_days" and "10 daily weights" in str(err.value)
    for days in (0, 400, "x", True):
        with pytest.raises(ValidationError) as err:
            strategies.update_strategy(
                db_session, "online", {"budget_period_days": days}, actor="test"
            )
        assert err.value.field == "budget_period_days"
    strategy_pacing.clear_pacing(db_session, row, actor="test")
    assert "pacing" not in row.config and "pacing_day" not in row.config
    assert row.config["plan"] == stored["plan"]  # nothing else of the config is touched


def test_the_pace_command(run, db_url, coupon_strategy) -> None:  # type: ignore[no-untyped-def]
    from experiments.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        coupon_strategy(session, "paced", budget=700.0)
    engine.dispose()
    shown = run("strategy", "pace", "paced")
    assert shown.exit_code == 0 and "not paced" in shown.output
    assert run("strategy", "set", "paced", "--period-days", "7").exit_code == 0
    today = dt.datetime.now(dt.UTC).date().isoformat()
    paced = run("strategy", "pace", "paced", "--start", today, "--daily-units", "50")
    assert paced.exit_code == 0, paced.output
    assert "budget 700.00 paced over 7 days" in paced.output
    assert "today (day 1 of 7): target 100.00, cap 100.00" in paced.output
    assert "lambda the plan's" in paced.output  # no batch plan, no spend curve: the cap paces
    status = json.loads(run("strategy", "pace", "paced", "--format", "json").output)
    assert status["pacing"]["today"]["target"] == pytest.approx(100.0)
    assert status["pacing"]["daily_units"] == 50.0
    for args, words in (
        (("--start", "2026-13-01", "--daily-units", "5"), "start"),
        (("--start", today, "--daily-units", "0"), "daily_units"),
        (("--start", today, "--schedule", "1,2", "--daily-units", "5"), "7 days"),
    ):
        bad = run("strategy", "pace", "paced", *args)
        assert bad.exit_code == 1 and words in bad.output, bad.output
    assert run("strategy", "pace", "paced", "--start", today).exit_code == 2  # usage
    assert run("strategy", "pace", "paced", "--schedule", "1,1,1,1,1,1,2").exit_code == 2
    assert run("strategy", "pace", "paced", "--off", "--schedule", "even").exit_code == 2
    unchanged = json.loads(run("strategy", "pace", "paced", "--format", "json").output)
    assert unchanged == status
    off = run("strategy", "pace", "paced", "--off")
    assert off.exit_code == 0 and "not paced" in off.output


def test_experiment_variants_of_a_paced_strategy_keep_the_days_cap(
    db_session, coupon_strategy, monkeypatch
) -> None:
    """A strategy tested as an experiment's variant: its new draws stop at the day's cap too,
    marked daily_budget_spent, and count in the next day's forecast."""
    from experiments.services import experiments
    from experiments.services.strategy_experiments import (
        create_strategy_experiment,
        decide_in_experiment,
    )

    row = coupon_strategy(db_session, "paced", budget=1000.0)
    strategies.update_strategy(db_session, "paced", {"budget_period_days": DAYS}, actor="test")
    strategy_pacing.set_pacing(db_session, row, start=START, daily_units=50, actor="test")
    create_strategy_experiment(db_session, "ab", "paced", actor="test", weights=(0.1, 0.1, 0.8))
    experiments.transition(db_session, "ab", "running", actor="test")
    clock(monkeypatch, 0)
    served = [decide_in_experiment(db_session, "ab", f"v-{i}") for i in range(120)]
    drawn = [s.decision for s in served if s.variant == "targeted"]
    spent = sum(d.expected_cost for d in drawn)
    assert 100.0 - 5.0 < spent <= 100.0  # 1000 over 10 days: the coupons (5.00) stop at 100
    refused = [d for d in drawn if d.context.get("daily_budget_spent")]
    assert refused and all(d.incentive_id is None for d in refused)
    assert all(d.context["pacing"]["daily_cap"] == pytest.approx(100.0) for d in drawn)
    clock(monkeypatch, 1)
    day = strategy_pacing.current_day(db_session, strategies.get_strategy(db_session, "paced"))
    assert day.forecast_basis == "history" and day.forecast == len(drawn)
    assert day.target == pytest.approx((1000.0 - spent) / (DAYS - 1))
