"""Pacing lambda across days: the re-solving controller's arithmetic, and simulated serving on the
shop (realized spend never above the budget, close to it when demand allows, the schedule kept)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.simulation import simulate_shop
from experiments.strategy.daily_pacing import BudgetPacer, schedule_weights, serve_days

DAYS = 28


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    shop = simulate_shop(8000, seed=11)
    n = shop.n_users
    value = shop.expected_margin[:, 1:] - shop.expected_margin[:, :1]
    cost = shop.expected_cost[:, 1:]
    realized = np.column_stack(
        [
            shop.sample_outcomes(np.full(n, a), seed=3)["incentive_cost"].to_numpy()
            for a in range(1, shop.n_arms)
        ]
    )
    # weekends bring 1.6x the traffic of a weekday; the pacer's forecast is flat
    traffic = np.array([1.6 if d % 7 in (5, 6) else 1.0 for d in range(DAYS)])
    day = np.random.default_rng(0).choice(DAYS, n, p=traffic / traffic.sum())
    ids = shop.users["unit_id"].to_numpy(dtype=str)
    return value, cost, realized, day, float(cost.max(axis=1).sum()), ids


def test_schedule_weights_even_custom_and_bad_input() -> None:
    assert schedule_weights(4) == pytest.approx([0.25] * 4)
    assert schedule_weights(3, [1, 1, 2]) == pytest.approx([0.25, 0.25, 0.5])
    for days, schedule, words in (
        (0, "even", "days"),
        (3, "weekly", "unknown"),
        (3, [1, 2], "one per day"),
        (2, [1, -1], ">= 0"),
        (2, [0, 0], "not all 0"),
        (2, [1, float("nan")], "finite"),
    ):
        with pytest.raises(ValueError, match=words):
            schedule_weights(days, schedule)


def test_pacer_re_solves_the_remaining_budget_over_the_remaining_schedule() -> None:
    pacer = BudgetPacer(100.0, 4, [1, 1, 2, 0])
    assert pacer.target() == pytest.approx(25.0)
    pacer.record(realized=40.0, planned=20.0)  # overspent, and costs were underestimated 2x
    assert pacer.target() == pytest.approx(60.0 * 1 / 3)
    assert pacer.cost_ratio() == pytest.approx(0.5)
    assert pacer.planning_budget(1000, 250) == pytest.approx(20.0 * 0.5 * 4)
    pacer.record(realized=5.0, planned=5.0)
    assert pacer.target() == pytest.approx(55.0)  # day 3 has all that is left of the schedule
    pacer.record(realized=60.0, planned=60.0)  # a (capped) overshoot leaves nothing
    assert pacer.remaining == 0.0 and pacer.target() == 0.0
    pacer.record(0.0, 0.0)
    with pytest.raises(ValueError, match="over"):
        pacer.target()
    with pytest.raises(ValueError, match="finite"):
        BudgetPacer(10.0, 2).record(-1.0, 0.0)
    with pytest.raises(ValueError, match="budget"):
        BudgetPacer(-1.0, 2)
    assert BudgetPacer(10.0, 2, calibrate=False).cost_ratio() == 1.0


@pytest.mark.parametrize("bias", [0.6, 1.0, 1.5])
@pytest.mark.parametrize("schedule", ["even", [1.0] * (DAYS // 2) + [3.0] * (DAYS // 2)])
def test_paced_serving_stays_within_and_close_to_the_budget(world, bias, schedule) -> None:
    value, cost, realized, day, all_treated, _ = world
    budget = 0.1 * all_treated
    # the model's costs are off by a constant factor: bias 0.6 underestimates them
    paced = serve_days(value, cost * bias, realized, day, budget, days=DAYS, schedule=schedule)
    assert paced.spend <= budget
    assert paced.spend >= 0.9 * budget
    assert paced.day_spend.sum() == pytest.approx(paced.spend)
    issued = np.flatnonzero(paced.arm >= 0)
    assert realized[issued, paced.arm[issued]].sum() == pytest.approx(paced.spend)
    weights = schedule_weights(DAYS, schedule)
    half = DAYS // 2
    ratio = paced.day_spend[half:].sum() / paced.day_spend[:half].sum()
    planned_ratio = weights[half:].sum() / weights[:half].sum()
    assert 0.75 * planned_ratio <= ratio <= 1.25 * planned_ratio
    assert paced.day_spend[-1] > 0  # the budget lasted to the last day


def test_open_loop_lambda_misses_what_re_solving_reaches(world) -> None:
    value, cost, realized, day, all_treated, _ = world
    budget = 0.1 * all_treated
    over = serve_days(value, cost * 1.5, realized, day, budget, days=DAYS, resolve=False)
    assert over.spend < 0.8 * budget  # costs overestimated: lambda too high, budget left unspent
    under = serve_days(value, cost * 0.6, realized, day, budget, days=DAYS, resolve=False)
    assert under.spend <= budget
    assert under.day_spend[-3:].sum() == 0  # costs underestimated: the cap stopped it early
    assert under.capped.sum() > 0
    paced = serve_days(value, cost * 0.6, realized, day, budget, days=DAYS, true_value=value)
    # the cap may bind only at the very end, on the day that has all that is left
    assert set(day[paced.capped].tolist()) <= {DAYS - 1} and paced.day_spend[-3:].min() > 0
    assert paced.capped.sum() < under.capped.sum() / 10
    assert paced.value > under.value  # the same money spread over the period earns more


def test_demand_limited_period_issues_every_profitable_incentive(world) -> None:
    value, cost, realized, day, all_treated, _ = world
    budget = 2.0 * all_treated  # more than all incentives together can cost
    paced = serve_days(value, cost, realized, day, budget, days=DAYS)
    best = np.where(value.max(axis=1) > 0, value.argmax(axis=1), -1)
    assert np.array_equal(paced.arm, best)
    assert paced.spend < budget and np.all(paced.day_lambda == 0)


def test_buckets_and_propensities_are_logged_per_day(world) -> None:
    value, cost, realized, day, all_treated, ids = world
    budget = 0.1 * all_treated
    paced = serve_days(
        value,
        cost,
        realized,
        day,
        budget,
        days=DAYS,
        holdout=0.05,
        explore=0.05,
        unit_ids=ids,
        seed=3,
    )
    assert paced.spend <= budget
    assert np.all((paced.propensity > 0) & (paced.propensity <= 1))
    holdout = np.asarray(paced.plans[0].bucket) == "holdout"
    assert 0.03 < holdout.mean() < 0.07 and np.all(paced.arm[holdout] == -1)
    # the buckets are a hash of the unit id: the same on every day
    assert all(np.array_equal(p.bucket_code, paced.plans[0].bucket_code) for p in paced.plans)


def test_bad_serving_input_names_the_argument(world) -> None:
    value, cost, realized, day, _, _ = world
    with pytest.raises(ValueError, match="arrival_day"):
        serve_days(value, cost, realized, day[:-1], 10.0, days=DAYS)
    with pytest.raises(ValueError, match="arrival_day"):
        serve_days(value, cost, realized, day + 1, 10.0, days=DAYS)
    with pytest.raises(ValueError, match="realized_cost"):
        serve_days(value, cost, -realized, day, 10.0, days=DAYS)
    with pytest.raises(ValueError, match="expected_arrivals"):
        serve_days(value, cost, realized, day, 10.0, days=DAYS, expected_arrivals=[1.0])
