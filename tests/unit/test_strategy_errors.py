"""Bad input gives a ValueError naming the argument and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.strategy import allocate, incentive_economics
from experiments.strategy.economics import percent_discount
from experiments.strategy.evaluation import feedback

V = np.array([[1.0, 2.0], [0.5, -1.0]])
C = np.array([[1.0, 1.0], [2.0, 0.5]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget": -1.0}, "budget = -1.0 must be a finite number >= 0"),
        ({"budget": float("nan")}, "budget"),
        ({"value": np.array([[np.nan, 1.0], [1.0, 1.0]])}, "value has 1 NaN .* eligible=False"),
        ({"cost": np.ones((2, 3))}, r"cost must have the shape of value \(2, 2\)"),
        ({"value": np.ones(3), "cost": np.ones(3)}, "value must be .n_users, n_incentives."),
        ({"cost": -C}, "cost must be >= 0"),
        ({"eligible": np.zeros((2, 2), dtype=bool)}, "no user is eligible for any incentive"),
        ({"eligible": {"gift": np.ones(2, dtype=bool)}}, r"unknown arms \['gift'\]"),
        ({"caps": {"coupon": 1}}, r"caps names unknown arms \['coupon'\]"),
        ({"caps": [1, -2]}, "caps must be >= 0"),
        ({"holdout": 0.1}, "unit_ids is required"),
        ({"holdout": 1.5, "unit_ids": ["a", "b"]}, "holdout = 1.5 must be a share"),
        ({"holdout": 0.6, "explore": 0.6, "unit_ids": ["a", "b"]}, "must not exceed 1"),
        ({"explore": 0.5, "unit_ids": ["a"]}, r"unit_ids must have shape \(2,\)"),
        ({"arms": ["a", "a"]}, "arms must be 2 distinct names"),
    ],
)
def test_allocate_rejects_bad_input(kwargs, match):
    args = {"value": V, "cost": C, "budget": 1.0, "arms": ["d10", "ship"], **kwargs}
    with pytest.raises(ValueError, match=match):
        allocate(**args)


def test_nan_allowed_where_not_eligible():
    value = np.array([[np.nan, 2.0], [0.5, 1.0]])
    eligible = np.array([[False, True], [True, True]])
    plan = allocate(value, C, 10.0, eligible=eligible)
    assert plan.arm.tolist() == [1, 1]


def test_explore_bucket_over_budget_is_an_error():
    ids = np.array([f"u{i}" for i in range(200)])
    with pytest.raises(ValueError, match="explore bucket alone plans"):
        allocate(np.ones((200, 2)), np.ones((200, 2)), 1.0, explore=1.0, unit_ids=ids)


def test_policy_decide_rejects_unknown_arm_and_wrong_width():
    plan = allocate(V, C, 1.0, arms=["d10", "ship"])
    with pytest.raises(ValueError, match=r"unknown arms \['gift'\]; known arms"):
        plan.policy.decide(["x"], V[:1], C[:1], eligible={"gift": np.ones(1, dtype=bool)})
    with pytest.raises(ValueError, match="this policy has 2"):
        plan.policy.decide(["x"], np.ones((1, 3)), np.ones((1, 3)))


def test_economics_and_ope_errors():
    p = np.array([[0.1, 0.2]])
    with pytest.raises(ValueError, match="cost_models has 2 entries"):
        incentive_economics(p, p * 100, [percent_discount("a", 10), percent_discount("b", 5)])
    with pytest.raises(ValueError, match="p_convert must hold probabilities"):
        incentive_economics(p * 20, p * 100, [percent_discount("a", 10)])
    with pytest.raises(ValueError, match="objective 'margin' is unknown"):
        incentive_economics(p, p * 100, [percent_discount("a", 10)], objective="margin")
    with pytest.raises(ValueError, match="unknown arm"):
        feedback(np.array([0, 3]), [1.0, 0.0], [0.5, 0.5], np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="pscore must be logging probabilities"):
        feedback(np.array([0, 1]), [1.0, 0.0], [0.0, 0.5], np.full((2, 2), 0.5))
