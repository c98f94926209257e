"""The plan's spend curve: the exploit rule's mean spend per user by lambda, and the lambda read
off it for a spend, checked against the knapsack's own lambda for the same budget."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.strategy import allocate
from experiments.strategy.spend_curve import (
    DECADES,
    POINTS,
    check_curve,
    lambda_for_spend,
    spend_curve,
)

STEP = 10 ** (DECADES / (POINTS - 2))  # one step of the lambda grid


@pytest.fixture(scope="module")
def instance():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    n, k = 20_000, 3
    cost = rng.gamma(2.0, 1.5, (n, k)) * np.array([1.0, 2.0, 0.5])
    value = cost * rng.normal([1.4, 1.1, 1.8], 0.8, (n, k))  # a profitable minority per arm
    return value, cost


def test_the_curve_falls_from_the_best_arm_spend_to_nothing(instance) -> None:  # type: ignore[no-untyped-def]
    value, cost = instance
    curve = spend_curve(value, cost)
    assert check_curve(curve) and len(curve["lambda"]) == POINTS
    assert curve["lambda"][0] == 0.0
    assert curve["lambda"][-1] == pytest.approx(float((value / cost).max()))
    # lambda 0: each user's best positive-value arm
    best = np.where(value.max(axis=1) > 0, cost[np.arange(len(cost)), value.argmax(axis=1)], 0.0)
    assert curve["cost"][0] == pytest.approx(best.mean(), rel=1e-12)
    assert curve["cost"][-1] == 0.0  # no arm's value covers lambda x cost at the top
    assert np.all(np.diff(curve["cost"]) <= 0)


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
def test_the_lambda_of_a_spend_is_the_knapsacks_lambda_for_that_budget(instance, share) -> None:  # type: ignore[no-untyped-def]
    value, cost = instance
    curve = spend_curve(value, cost)
    budget = share * float(cost.max(axis=1).sum())
    plan = allocate(value, cost, budget, holdout=0.0, explore=0.0)
    lam = lambda_for_spend(curve, plan.spend / len(cost))
    assert plan.lambda_ / STEP <= lam <= plan.lambda_ * STEP  # within one grid step


def test_spends_outside_the_curve_take_its_ends(instance) -> None:  # type: ignore[no-untyped-def]
    value, cost = instance
    curve = spend_curve(value, cost)
    assert lambda_for_spend(curve, curve["cost"][0] * 2) == 0.0
    assert lambda_for_spend(curve, 0.0) == curve["lambda"][-1]
    assert lambda_for_spend(curve, curve["cost"][5]) == pytest.approx(curve["lambda"][5])


def test_malformed_curves_are_rejected() -> None:
    good = {"lambda": [0.0, 1.0], "cost": [2.0, 0.0]}
    assert check_curve(good)
    for bad in (
        None,
        [],
        {"lambda": [0.0, 1.0]},
        {"lambda": [0.0, 1.0], "cost": [2.0]},
        {"lambda": [1.0, 0.0], "cost": [2.0, 0.0]},  # lambdas out of order
        {"lambda": [0.0, 1.0], "cost": [0.0, 2.0]},  # spend rising with lambda
        {"lambda": [0.0, float("nan")], "cost": [2.0, 0.0]},
        {"lambda": [], "cost": []},
    ):
        assert not check_curve(bad), bad
