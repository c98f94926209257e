"""Economics of an incentive: incremental value and expected spend, checked by hand and against
the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.strategy.economics import (
    contact,
    expected_spend,
    fixed_coupon,
    incentive_economics,
    incremental_value,
    percent_discount,
)


def test_hand_computed_profit_revenue_orders():
    # one user: 10% conversion at $50 without incentive; 15% at $60 with 20% off (cap $10),
    # 12% at $50 with a $5 coupon
    p = np.array([[0.10, 0.15, 0.12]])
    g = np.array([[50.0, 60.0, 50.0]])
    models = [percent_discount("d20", 20, max_discount=10.0), fixed_coupon("c5", 5.0)]
    eco = incentive_economics(p, g, models, margin_rate=0.4)
    # spend: discount paid on every treated order: 0.15 * min(12, 10) = 1.5; 0.12 * 5 = 0.6
    assert eco.cost == pytest.approx(np.array([[1.5, 0.6]]))
    # profit: 0.4 * (0.15*60 - 0.10*50) - 1.5 = 0.1 ; 0.4 * (0.12*50 - 5) - 0.6 = -0.2
    assert eco.value == pytest.approx(np.array([[0.1, -0.2]]))
    assert eco.cost_var == pytest.approx(np.array([[100 * 0.15 * 0.85, 25 * 0.12 * 0.88]]))
    assert eco.cost_max == pytest.approx(np.array([[10.0, 5.0]]))
    rev = incremental_value(p, g, eco.cost, objective="revenue")
    assert rev == pytest.approx(np.array([[4.0, 1.0]]))
    orders = incremental_value(p, g, eco.cost, objective="orders")
    assert orders == pytest.approx(np.array([[0.05, 0.02]]))


def test_per_user_contact_cost_is_paid_by_everyone_treated():
    p = np.array([[0.01, 0.012]])
    g = np.array([[100.0, 100.0]])
    cost, var, mx = expected_spend(p, g, [contact("email", 0.1)])
    assert cost == pytest.approx(np.array([[0.1]])) and var == pytest.approx(np.array([[0.0]]))
    value = incremental_value(p, g, cost, margin_rate=0.5)
    assert value == pytest.approx(np.array([[0.5 * 0.2 - 0.1]]))


def test_matches_simulator_truth():
    sim = pytest.importorskip("experiments.simulation.shop")
    shop = sim.simulate_shop(3000, seed=5)
    p, g = shop.p_convert, shop.order_value
    # control arm has no incentive cost, so its margin rate is margin / gross there
    margin_rate = shop.expected_margin[:, 0] / (p[:, 0] * g[:, 0])
    value = incremental_value(p, g, shop.expected_cost[:, 1:], margin_rate=margin_rate)
    truth = shop.expected_margin[:, 1:] - shop.expected_margin[:, :1]
    assert value == pytest.approx(truth, rel=1e-9, abs=1e-9)
