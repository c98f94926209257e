"""Realized spend in simulated serving: the Bernstein margin keeps it within the budget."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from experiments.strategy import allocate
from experiments.strategy.economics import fixed_coupon, incentive_economics, percent_discount
from experiments.strategy.pacing import allocate_with_margin, bernstein_margin, issue_within_cap


def _world(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(0.02, 0.2, n)
    p = np.column_stack([p0, p0 * rng.uniform(1, 1.6, n), p0 * rng.uniform(1, 1.3, n)])
    g = np.repeat(rng.uniform(30, 90, n)[:, None], 3, axis=1)
    models = [percent_discount("d10", 10), fixed_coupon("c5", 5.0)]
    return p, incentive_economics(p, g, models, margin_rate=0.4)


def _realized(plan, p, eco, draws, rng):
    rows = np.flatnonzero(plan.arm >= 0)
    arm = plan.arm[rows]
    paid_if_converted, q = eco.cost_max[rows, arm], p[rows, arm + 1]
    return (paid_if_converted * (rng.random((draws, rows.size)) < q)).sum(axis=1)


def test_bernstein_margin_solves_its_equation():
    variance, excess, alpha = 50.0, 3.0, 0.01
    t = bernstein_margin(variance, excess, alpha)
    assert np.exp(-(t**2) / (2 * (variance + excess * t / 3))) == pytest.approx(alpha, rel=1e-12)
    assert bernstein_margin(variance, excess, 0.001) > t


def test_realized_spend_stays_within_budget_with_margin():
    p, eco = _world()
    rng = np.random.default_rng(1)
    budget = 0.3 * float(eco.cost.max(axis=1).sum())
    paced = allocate_with_margin(
        eco.value, eco.cost, budget, cost_var=eco.cost_var, cost_max=eco.cost_max, alpha=0.01
    )
    assert paced.allocation.spend + paced.margin <= budget
    realized = _realized(paced.allocation, p, eco, 2000, rng)
    exceed = int((realized > budget).sum())
    # at most alpha of the draws may exceed: allow the binomial 99.9% quantile of Bin(2000, 0.01)
    assert exceed <= binom.ppf(0.999, 2000, 0.01)
    # without the margin, planning to the full budget overspends about half the time
    plain = _realized(allocate(eco.value, eco.cost, budget), p, eco, 2000, rng)
    assert 0.3 < (plain > budget).mean() < 0.7


def test_hard_cap_never_lets_realized_spend_exceed_budget():
    p, eco = _world(n=3000, seed=3)
    rng = np.random.default_rng(4)
    budget = 0.2 * float(eco.cost.max(axis=1).sum())
    plan = allocate(eco.value, eco.cost, budget)
    worst = np.where(plan.arm >= 0, eco.cost_max[np.arange(3000), np.maximum(plan.arm, 0)], 0.0)
    # serve in random arrival orders with a ledger whose budget is the expected-spend budget / 4
    for _ in range(50):
        order = rng.permutation(3000)
        issued = issue_within_cap(plan.arm[order], worst[order], budget / 4)
        treated = issued >= 0
        converted = rng.random(3000) < p[order, issued + 1]
        realized = float((worst[order] * (treated & converted)).sum())
        assert realized <= budget / 4
        assert treated.sum() < (plan.arm >= 0).sum()  # the cap did bind
