"""The spend curve of a plan: how much the exploit rule spends per user at each lambda.

Layer: ``experiments.strategy`` (pure numpy). A batch plan fixes one lambda for its budget. A
strategy that paces its budget over days (``experiments.services.strategy_pacing``) needs each
day's lambda for that day's target instead, without the population at hand: the curve, recorded
with the plan, is the mean expected spend per user of the exploit rule
``argmax(0, value - lambda cost - mu)`` (``knapsack.rule_choice``, the rule ``Policy`` serves)
on a grid of lambdas, and :func:`lambda_for_spend` reads the lambda of a spend off it.

The grid is lambda = 0 and ``POINTS - 1`` geometric steps up to the largest value / cost ratio
of the population (above it no arm has a positive score, so nothing is spent). The spend is
non-increasing in lambda; between grid points it is interpolated linearly in log lambda, which
is the resolution the grid has (about 15 % steps in lambda over three decades).
"""

from __future__ import annotations

import math

import numpy as np

from experiments.strategy.knapsack import rule_choice
from experiments.strategy.validation import check_pair

POINTS = 49
DECADES = 3.0


def spend_curve(
    value: np.ndarray, cost: np.ndarray, mu: np.ndarray | None = None
) -> dict[str, list[float]]:
    """``{"lambda": [...], "cost": [...]}``: the mean expected spend per user of the exploit
    rule at each lambda of the grid (module doc); plain JSON."""
    value, cost = check_pair(value, cost)
    n, k = value.shape
    mu = np.zeros(k) if mu is None or len(mu) == 0 else np.asarray(mu, dtype=np.float64)
    positive = (cost > 0) & (value > 0)
    top = float((value[positive] / cost[positive]).max()) if positive.any() else 1.0
    grid = [0.0, *np.geomspace(top * 10**-DECADES, top, POINTS - 1).tolist()]
    mask = np.ones((n, k), dtype=bool)
    rows = np.arange(n)
    spend = []
    for lam in grid:
        arm = rule_choice(value, cost, mask, lam, mu)
        chosen = np.where(arm >= 0, cost[rows, np.maximum(arm, 0)], 0.0)
        spend.append(float(chosen.mean()) if n else 0.0)
    # the rule's spend is non-increasing in lambda; ties broken to the cheaper arm keep it so,
    # and the running minimum removes floating-point wobble between equal points
    return {"lambda": grid, "cost": np.minimum.accumulate(spend).tolist()}


def lambda_for_spend(curve: dict[str, list[float]], per_user: float) -> float:
    """The lambda at which the exploit rule spends ``per_user`` on average (module doc): 0 when
    even lambda = 0 spends less, the top of the grid when even that spends more."""
    lam, spend = curve["lambda"], curve["cost"]
    if not lam or per_user >= spend[0]:
        return 0.0
    if per_user <= spend[-1]:
        return float(lam[-1])
    j = next(i for i in range(1, len(spend)) if spend[i] <= per_user)
    lo, hi = lam[j - 1], lam[j]
    s_lo, s_hi = spend[j - 1], spend[j]
    t = (s_lo - per_user) / (s_lo - s_hi) if s_lo > s_hi else 1.0
    if lo <= 0:  # the first step is from lambda 0: interpolate in lambda itself
        return float(hi * t)
    return float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))))


def check_curve(curve: object) -> bool:
    """True when ``curve`` is a spend curve as :func:`spend_curve` writes it."""
    if not isinstance(curve, dict):
        return False
    lam, spend = curve.get("lambda"), curve.get("cost")
    if not isinstance(lam, list) or not isinstance(spend, list) or len(lam) != len(spend):
        return False
    numbers = all(isinstance(v, int | float) and math.isfinite(v) for v in [*lam, *spend])
    return bool(lam) and numbers and lam == sorted(lam) and spend == sorted(spend, reverse=True)
