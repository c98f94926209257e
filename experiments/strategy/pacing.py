"""Keeping realized (random) spend within the budget: a Bernstein safety margin.

Layer: ``experiments.strategy`` (pure numpy). :func:`allocate` guarantees that the *expected*
spend fits the budget; the realized spend is a sum of independent random costs (a discount is paid
only if the user converts), so planning to the full budget overspends about half the time.

Guarantee given by :func:`allocate_with_margin`: if each treated user's realized cost is
independent, lies in ``[0, cost_max]`` and has the mean ``cost`` and variance ``cost_var`` that were
passed in (e.g. from :func:`experiments.strategy.economics.incentive_economics`), then
``P(realized spend > budget) <= alpha``. It rests on Bernstein's inequality (Boucheron, Lugosi &
Massart, *Concentration Inequalities*, 2013, Thm 2.10 / Cor. 2.11): for independent ``X_i`` with
``X_i - E X_i <= b`` and ``sum Var X_i <= V``,
``P(sum X_i - E sum X_i >= t) <= exp(-t^2 / (2 (V + b t / 3)))``; solving for ``t`` at level
``alpha`` with ``L = ln(1/alpha)`` gives ``t = b L / 3 + sqrt((b L / 3)^2 + 2 V L)``.
If the model's costs are biased, no planning margin helps: a hard cap at serving time (a spend
ledger that stops issuing incentives once the budget is spent) is the only absolute guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.strategy.allocation import Allocation, allocate
from experiments.strategy.validation import check_matrix


def bernstein_margin(variance: float, max_excess: float, alpha: float) -> float:
    """Smallest ``t`` with ``exp(-t^2 / (2 (V + b t / 3))) <= alpha`` (module doc)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha!r} must be in (0, 1), e.g. 0.01")
    if variance < 0 or max_excess < 0:
        raise ValueError("variance and max_excess must be >= 0")
    log_term = np.log(1.0 / alpha)
    third = max_excess * log_term / 3.0
    return float(third + np.sqrt(third**2 + 2.0 * variance * log_term))


@dataclass(frozen=True)
class PacedAllocation:
    """An allocation planned against ``planning_budget`` so that realized spend fits ``budget``."""

    allocation: Allocation
    budget: float
    planning_budget: float
    margin: float
    alpha: float


def allocate_with_margin(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    cost_var: np.ndarray,
    cost_max: np.ndarray,
    alpha: float = 0.01,
    max_rounds: int = 20,
    **kwargs: Any,
) -> PacedAllocation:
    """Allocate against a budget lowered until ``planned spend + margin <= budget``."""
    var = check_matrix("cost_var", cost_var, np.asarray(cost, dtype=np.float64))
    mx = check_matrix("cost_max", cost_max, np.asarray(cost, dtype=np.float64))
    if np.any(var < 0) or np.any(mx < np.asarray(cost)):
        raise ValueError("cost_var must be >= 0 and cost_max >= cost (the largest possible spend)")
    planning = float(budget)
    for _ in range(max_rounds):
        plan = allocate(value, cost, planning, **kwargs)
        rows = np.flatnonzero(plan.arm >= 0)
        arms = plan.arm[rows]
        v = float(var[rows, arms].sum())
        b = float(np.max(mx[rows, arms] - np.asarray(cost)[rows, arms], initial=0.0))
        margin = bernstein_margin(v, b, alpha)
        if plan.spend + margin <= budget:
            return PacedAllocation(plan, float(budget), planning, margin, alpha)
        planning = max(0.0, min(planning - (plan.spend + margin - budget), budget - margin))
        if planning == 0.0:
            break
    plan = allocate(value, cost, 0.0, **kwargs)
    return PacedAllocation(plan, float(budget), 0.0, 0.0, alpha)


def issue_within_cap(
    arm: np.ndarray, worst_case_cost: np.ndarray, budget: float, spent: float = 0.0
) -> np.ndarray:
    """Hard cap for serving, in arrival order: which decisions may still carry an incentive.

    ``worst_case_cost[i]`` is the most decision i can cost (a coupon's amount, a capped discount);
    an incentive is issued only while ``spent + committed worst cases <= budget``, later ones fall
    back to no incentive (``-1``). If the worst cases are true upper bounds, realized spend can
    never exceed the budget. Returns the arms actually issued.
    """
    a = np.asarray(arm)
    worst = np.asarray(worst_case_cost, dtype=np.float64)
    if worst.shape != a.shape or np.any(worst < 0) or not np.all(np.isfinite(worst)):
        raise ValueError(
            "worst_case_cost must be finite, >= 0 and shaped like arm (one per decision)"
        )
    committed = spent + np.cumsum(np.where(a >= 0, worst, 0.0))
    return np.where((a >= 0) & (committed <= budget), a, -1)


def serve_within_cap(
    arm: int,
    propensity: float,
    probabilities: np.ndarray,
    cost: np.ndarray,
    budget: float,
    spent: float,
) -> tuple[int, float, bool]:
    """One served decision under the hard cap of a spend ledger, with the propensity to log.

    ``arm`` (-1 = none) was drawn with ``propensity`` from ``probabilities`` (``(1 + k,)``, column
    0 = none, e.g. ``Policy.action_probabilities``); ``cost`` holds the ``k`` arms' expected
    spends and ``spent`` what the ledger has already planned. An arm is issued only if
    :func:`issue_within_cap` admits it (``spent + cost <= budget``); a drawn arm that does not fit
    gives no incentive instead. The policy actually logging is then the capped one — none takes
    the probability of every arm that does not fit — so that is the propensity returned (the
    drawn one, unchanged, when every arm fits). Returns (issued arm, its propensity, whether the
    drawn incentive was withheld).
    """
    costs = np.asarray(cost, dtype=np.float64)
    probs = np.asarray(probabilities, dtype=np.float64)
    k = costs.shape[0]
    if probs.shape != (k + 1,) or not -1 <= arm < k:
        raise ValueError(
            f"probabilities must be (1 + {k},) with column 0 = none and arm in [-1, {k}); got "
            f"{probs.shape} and arm {arm}"
        )
    fits = np.array(
        [
            issue_within_cap(np.array([a]), costs[a : a + 1], budget, spent)[0] == a
            for a in range(k)
        ],
        dtype=bool,
    )
    if fits.all():
        return arm, float(propensity), False
    served = arm if arm < 0 or fits[arm] else -1
    p_none = float(probs[0] + probs[1:][~fits].sum())
    return served, (p_none if served < 0 else float(propensity)), served != arm
