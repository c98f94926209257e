"""Realized spend in simulated serving: the Bernstein margin keeps it within the budget; one
served decision under the hard cap logs the capped policy's propensity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from experiments.strategy import allocate
from experiments.strategy.economics import fixed_coupon, incentive_economics, percent_discount
from experiments.strategy.pacing import (
    allocate_with_margin,
    bernstein_margin,
    issue_within_cap,
    serve_within_cap,
)


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


def test_one_decision_under_the_cap_logs_the_capped_policys_propensity():
    # none, then two arms costing 5 and 4: holdout 0.1, explore 0.2 over three, exploit on arm 0
    probs = np.array([0.1 + 0.2 / 3, 0.7 + 0.2 / 3, 0.2 / 3])
    cost = np.array([5.0, 4.0])
    # everything fits: the drawn arm and its propensity as drawn
    assert serve_within_cap(0, 0.77, probs, cost, budget=20.0, spent=15.0) == (0, 0.77, False)
    # 4.5 left: arm 0 no longer fits, so its probability goes to none; arm 1 keeps its own
    arm, p, withheld = serve_within_cap(0, probs[1], probs, cost, budget=20.0, spent=15.5)
    assert (arm, withheld) == (-1, True) and p == pytest.approx(probs[0] + probs[1], abs=1e-15)
    assert serve_within_cap(1, probs[2], probs, cost, 20.0, 15.5) == (1, probs[2], False)
    none = serve_within_cap(-1, probs[0], probs, cost, 20.0, 15.5)
    assert none[0] == -1 and not none[2] and none[1] == pytest.approx(probs[0] + probs[1])
    # nothing fits: none for sure
    arm, p, withheld = serve_within_cap(1, probs[2], probs, cost, budget=20.0, spent=17.0)
    assert (arm, withheld) == (-1, True) and p == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError, match="probabilities"):
        serve_within_cap(0, 0.5, probs[:2], cost, 20.0, 0.0)


def test_policy_action_probabilities_are_what_decide_draws_from():
    rng = np.random.default_rng(3)
    value, cost = rng.uniform(0, 3, (300, 2)), rng.uniform(0.5, 2, (300, 2))
    ids = np.array([f"u{i}" for i in range(300)])
    policy = allocate(value, cost, 150.0, holdout=0.1, explore=0.2, unit_ids=ids, salt="s").policy
    probs = policy.action_probabilities(value, cost)
    served = policy.decide(ids, value, cost)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(probs[np.arange(300), served.arm + 1], served.propensity, atol=1e-12)
    # every arm keeps its exploration share; the exploit share sits on the rule's choice
    assert (probs[:, 0] >= 0.1 + 0.2 / 3 - 1e-12).all() and (probs >= 0.2 / 3 - 1e-12).all()
    exploit = served.arm[served.bucket == "exploit"] + 1
    assert (probs[served.bucket == "exploit", exploit] >= 0.7).all()
