"""Exact sums and budget comparisons: the allocation's decisions do not depend on summation order.

References are Python's ``fractions.Fraction`` (exact rational arithmetic) and ``math.fsum``
(correctly rounded sums), independent of the implementation under test.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from experiments.strategy import allocate
from experiments.strategy.exact import (
    SCALE,
    exact_mean,
    exact_sum,
    fits,
    fits_sum,
    float_units,
    to_float,
)
from experiments.strategy.knapsack import build_hull, columns, lambda_star


def exact(values) -> Fraction:  # type: ignore[no-untyped-def]
    return sum((Fraction(v) for v in np.asarray(values, dtype=np.float64).tolist()), Fraction(0))


@pytest.mark.parametrize("seed", range(8))
def test_exact_sum_is_the_rational_sum_in_any_split(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    kind = seed % 4
    if kind == 0:  # costs: non-negative, a few decades
        x = rng.exponential(3.0, n)
    elif kind == 1:  # signed, spanning the whole float64 range (subnormals to 1e308)
        x = rng.normal(0, 1, n) * 10.0 ** rng.integers(-320, 308, n)
    elif kind == 2:  # many values far below the largest (the slow path inside a chunk)
        x = np.concatenate([rng.uniform(0, 1e-20, n), [1e12, 5e-324]])
    else:  # float32 input
        x = rng.uniform(0, 10, n).astype(np.float32)
    units = exact_sum(x)
    assert Fraction(units, 2**SCALE) == exact(x)
    assert to_float(units) == math.fsum(np.asarray(x, dtype=np.float64).tolist())
    parts = np.array_split(rng.permutation(np.asarray(x, dtype=np.float64)), 7)
    assert sum(exact_sum(p) for p in parts) == units


def test_exact_sum_refuses_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        exact_sum(np.array([1.0, np.nan]))
    assert exact_sum(np.array([])) == 0


def test_exact_mean_and_units_round_trip() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.01, 0.2, 10_001)
    assert exact_mean(x) == float(exact(x) / x.size)
    for v in (0.1, 5e-324, 1e308, -2.5, 0.0):
        assert Fraction(float_units(v), 2**SCALE) == Fraction(v)


def test_fits_is_the_exact_comparison_even_within_rounding() -> None:
    # 0.1 added ten times in float is 0.9999999999999999, the exact sum is a little above 1.0
    x = np.full(10, 0.1)
    assert exact(x) > 1
    assert not fits_sum(x, 1.0, nonnegative=True)
    assert to_float(exact_sum(x)) == 1.0  # correctly rounded, yet the exact sum is above 1.0
    assert fits_sum(x, float(np.nextafter(1.0, 2.0)), nonnegative=True)
    calls = []

    def slow() -> int:
        calls.append(1)
        return exact_sum(x)

    assert fits(0.5, 0.5, 10, 1.0, slow) and not calls  # clearly below: no exact sum
    assert not fits(2.0, 2.0, 10, 1.0, slow) and not calls
    assert not fits(float(x.sum()), float(x.sum()), 10, 1.0, slow) and calls


def brute_lambda(slopes: np.ndarray, dcs: np.ndarray, budget: float) -> float:
    """The definition: 0 if everything fits, else the smallest slope whose spend fits (exact)."""
    b = Fraction(budget)
    if exact(dcs) <= b:
        return 0.0
    answer, above = float(slopes.max()), Fraction(0)  # spend of the segments above the value
    for v in np.unique(slopes)[::-1]:  # descending
        if above > b:
            break
        answer = float(v)
        above += exact(dcs[slopes == v])
    return answer


@pytest.mark.parametrize("seed", range(6))
def test_lambda_star_is_the_exact_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 400, 3
    value = rng.normal(1.0, 1.0, (n, k))
    cost = rng.uniform(0.05, 2.0, (n, k))
    if seed % 2:  # many exact ties among slopes
        value, cost = np.round(value * 4) / 4, np.round(cost * 4) / 4 + 0.25
    hull = build_hull(columns(value), columns(cost), None)
    slopes, dcs = np.concatenate(hull.slope), np.concatenate(hull.dc)
    order = np.argsort(-slopes, kind="stable")
    cum = np.cumsum(dcs[order])
    # budgets: random ones, and the float prefix sums themselves (spend exactly at the budget,
    # where a float comparison in another summation order could decide differently)
    budgets = [*rng.uniform(0, cum[-1], 5), *cum[rng.integers(0, cum.size, 5)]]
    for budget in budgets:
        assert lambda_star(hull, float(budget)) == brute_lambda(slopes, dcs, float(budget))


def test_allocation_spend_is_correctly_rounded_and_fits() -> None:
    rng = np.random.default_rng(11)
    value = rng.normal(1.0, 1.0, (5000, 3))
    cost = rng.uniform(0.1, 3.0, (5000, 3))
    plan = allocate(value, cost, 700.0, holdout=0.1, explore=0.1, unit_ids=np.arange(5000))
    spent = exact(plan.expected_cost)
    assert spent <= 700
    assert plan.spend == float(spent)
