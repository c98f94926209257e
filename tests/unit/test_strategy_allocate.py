"""allocate: optimality against scipy.optimize.milp, honest duality gap, budget and caps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix, kron
from scipy.sparse import eye as speye

from experiments.strategy import allocate
from experiments.strategy.knapsack import build_hull, columns, lambda_star


def milp_optimum(value, cost, budget, eligible=None, caps=None) -> float:
    """Exact multiple-choice knapsack optimum (independent reference)."""
    n, k = value.shape
    upper = np.ones(n * k) if eligible is None else eligible.ravel().astype(float)
    one_per_user = kron(speye(n), np.ones((1, k)))
    cons = [
        LinearConstraint(csr_matrix(cost.ravel()[None, :]), -np.inf, budget),
        LinearConstraint(one_per_user, -np.inf, 1),
    ]
    if caps is not None:
        cons.append(LinearConstraint(kron(np.ones((1, n)), speye(k)), -np.inf, caps))
    res = milp(
        -value.ravel(), constraints=cons, integrality=np.ones(n * k), bounds=Bounds(0, upper)
    )
    assert res.success, res.message
    return -res.fun


def random_instance(rng, integer=False):
    n, k = int(rng.integers(2, 30)), int(rng.integers(1, 5))
    value = rng.normal(1.0, 2.0, (n, k))
    cost = rng.uniform(0.0, 3.0, (n, k))
    cost[rng.random((n, k)) < 0.1] = 0.0
    if integer:  # many exact ties
        value, cost = np.round(value), np.round(cost)
    eligible = rng.random((n, k)) < 0.8
    eligible[0, 0] = True
    budget = float(rng.uniform(0, 1) * cost.max(axis=1).sum())
    return value, cost, eligible, budget


@pytest.mark.parametrize("seed", range(6))
def test_within_one_user_of_milp_and_gap_is_honest(seed):
    rng = np.random.default_rng(seed)
    for trial in range(25):
        value, cost, eligible, budget = random_instance(rng, integer=trial % 4 == 0)
        if trial % 3 == 1:  # float32 input: the bound must cover float32 rounding too
            value, cost = value.astype(np.float32), cost.astype(np.float32)
        plan = allocate(value, cost, budget, eligible=eligible)
        value, cost = value.astype(np.float64), cost.astype(np.float64)
        opt = milp_optimum(value, cost, budget, eligible)
        largest = max(float(value[eligible].max()), 0.0)
        assert plan.spend <= budget
        assert plan.value >= opt - largest - 1e-9  # LP optimum has one fractional user at most
        assert plan.dual_bound >= opt - 1e-7 >= plan.value - 2e-7
        assert plan.gap == pytest.approx(plan.dual_bound - plan.value)
        assert plan.gap >= -1e-9


def test_caps_respected_and_bound_honest():
    rng = np.random.default_rng(42)
    for _ in range(40):
        value, cost, eligible, budget = random_instance(rng)
        k = value.shape[1]
        caps = rng.integers(0, value.shape[0], k).astype(float)
        plan = allocate(value, cost, budget, eligible=eligible, caps=caps)
        opt = milp_optimum(value, cost, budget, eligible, caps)
        assert plan.spend <= budget
        assert np.all(plan.count_by_arm <= caps)
        assert plan.dual_bound >= opt - 1e-7 >= plan.value - 2e-7
        # one fractional user per relaxed constraint (budget + each cap) at most
        assert plan.value >= opt - (1 + k) * max(float(value[eligible].max()), 0.0) - 1e-9


def test_planned_spend_never_exceeds_budget_property():
    rng = np.random.default_rng(7)
    for trial in range(300):
        n, k = int(rng.integers(1, 400)), int(rng.integers(1, 6))
        dtype = np.float32 if trial % 2 else np.float64
        value = rng.normal(0.5, 3.0, (n, k)).astype(dtype)
        cost = rng.exponential(2.0, (n, k)).astype(dtype)
        eligible = rng.random((n, k)) < rng.uniform(0.2, 1.0)
        eligible[0, 0] = True
        caps = None if trial % 3 else rng.integers(0, n + 1, k).astype(float)
        budget = float(rng.uniform(0, 1.2) * cost.sum(axis=1).mean() * n / k)
        plan = allocate(value, cost, budget, eligible=eligible, caps=caps)
        chosen = plan.arm >= 0
        spend = float(cost[chosen, plan.arm[chosen]].astype(np.float64).sum())
        assert spend <= budget
        assert plan.spend <= budget
        assert np.all(eligible[chosen, plan.arm[chosen]])
        assert np.all(value[chosen, plan.arm[chosen]] > 0)  # never a loss-making incentive
        if caps is not None:
            assert np.all(np.bincount(plan.arm[chosen], minlength=k) <= caps)


def test_lambda_star_equals_exact_breakpoint_on_large_instance():
    rng = np.random.default_rng(3)
    n, k = 200_000, 4
    cost = rng.uniform(0.5, 5, (n, k))
    value = rng.normal(0, 1, (n, k)) + 0.4 * cost
    hull = build_hull(columns(value), columns(cost), None)
    slopes, dcs = np.concatenate(hull.slope), np.concatenate(hull.dc)
    order = np.argsort(-slopes, kind="stable")
    for share in (0.05, 0.3, 0.7):
        budget = share * float(dcs.sum())
        first_over = np.flatnonzero(np.cumsum(dcs[order]) > budget)[0]
        assert lambda_star(hull, budget) == slopes[order[first_over]]
        plan = allocate(value, cost, budget)
        assert plan.spend <= budget
        assert plan.gap / plan.value < 1e-4


def test_ties_go_to_the_cheaper_arm_and_result_is_deterministic():
    value = np.array([[2.0, 2.0, 1.0], [3.0, 6.0, 0.0]])
    cost = np.array([[2.0, 1.0, 1.0], [1.0, 2.0, 1.0]])
    # budget 1 buys one unit of cost: user 1's cheaper arm (slope 3) beats user 0's (slope 2)
    assert allocate(value, cost, budget=1.0).arm.tolist() == [-1, 0]
    plan = allocate(value, cost, budget=10.0)  # user 0: same value at cost 2 and 1 -> cheaper
    assert plan.arm.tolist() == [1, 1]
    # equal reduced scores at lambda: a slope-3 pair for user 1 with budget for exactly the cheap
    value = np.array([[3.0, 6.0]])
    cost = np.array([[1.0, 2.0]])
    plan = allocate(value, cost, budget=1.5)
    assert plan.arm.tolist() == [0] and plan.lambda_ == 3.0
    again = allocate(value, cost, budget=1.5)
    assert np.array_equal(plan.arm, again.arm) and plan.lambda_ == again.lambda_


def test_zero_value_and_zero_cost_arms():
    value = np.array([[0.0, 1.0], [-1.0, 0.0], [2.0, 5.0]])
    cost = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    plan = allocate(value, cost, budget=0.0)
    assert plan.arm.tolist() == [1, -1, 0]  # free gains taken, nothing costly, no zero-gain arm
    assert plan.spend == 0.0


def test_roi_floor_and_conservative_score():
    value = np.array([[1.0, 3.0], [2.0, 1.0]])
    cost = np.array([[1.0, 2.0], [1.0, 1.0]])
    plan = allocate(value, cost, budget=10.0, roi_floor=1.4)
    assert plan.arm.tolist() == [1, 0]  # ROI 1 < 1.4 rules out arm 0 of user 0 and arm 1 of user 1
    assert allocate(value, cost, budget=10.0, roi_floor=1.6).arm.tolist() == [-1, 0]
    lower = np.array([[-0.5, 0.2], [0.1, 0.5]])
    plan = allocate(value, cost, budget=10.0, value_lower=lower)
    assert plan.arm.tolist() == [1, 1]
    assert plan.objective == pytest.approx(0.7) and plan.value == pytest.approx(4.0)


def test_full_budget_takes_every_best_arm():
    rng = np.random.default_rng(0)
    value = rng.normal(0, 1, (500, 3))
    cost = rng.uniform(0.1, 1, (500, 3))
    plan = allocate(value, cost, budget=1e9)
    best = np.where(value.max(axis=1) > 0, value.argmax(axis=1), -1)
    assert np.array_equal(plan.arm, best)
    assert plan.lambda_ == 0.0 and plan.gap == pytest.approx(0.0, abs=1e-9)
