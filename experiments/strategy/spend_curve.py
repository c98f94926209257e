"""The spend curve of a plan: how much the exploit rule spends per user at each lambda.

Layer: ``experiments.strategy`` (pure numpy). A batch plan fixes one lambda for its budget. A
strategy that paces its budget over days (``experiments.services.strategy_pacing``) needs each
day's lambda for that day's target instead, without the population at hand: the curve, recorded
with the plan, is the mean expected spend per user of the exploit rule
``argmax(0, value - lambda cost - mu)`` (``knapsack.rule_choice``, the rule ``Policy`` serves)
on a grid of lambdas, and :func:`lambda_for_spend` reads the lambda of a spend off it.

The grid is lambda = 0 and ``POINTS - 1`` geometric steps up to the steepest hull segment, the
largest (value - mu) / cost of the population (above it no arm has a positive score, so nothing
is spent). The spend is
non-increasing in lambda; between grid points it is interpolated linearly in log lambda, which
is the resolution the grid has (about 15 % steps in lambda over three decades).
"""

from __future__ import annotations

import math

import numpy as np

from experiments.strategy.knapsack import build_hull, columns
from experiments.strategy.validation import check_pair

POINTS = 49
DECADES = 3.0


def spend_curve(
    value: np.ndarray, cost: np.ndarray, mu: np.ndarray | None = None
) -> dict[str, list[float]]:
    """``{"lambda": [...], "cost": [...]}``: the mean expected spend per user of the exploit
    rule at each lambda of the grid (module doc); plain JSON.

    The knapsack's own per-user hulls (``knapsack.build_hull``) give the spend at any lambda: a
    user's choice at lambda is the end of its hull's segments steeper than lambda, so the spend is
    the sum of the cost steps ``dc`` of all segments with ``slope > lambda``. One sort of the
    segments by slope and a cumulative sum answer every lambda of the grid."""
    value, cost = check_pair(value, cost)
    n, k = value.shape
    score = value if mu is None or len(mu) == 0 else value - np.asarray(mu, dtype=value.dtype)
    hull = build_hull(columns(score), columns(cost), None)
    slopes = np.concatenate([s.astype(np.float64) for s in hull.slope]) if hull.slope else None
    if slopes is None or slopes.size == 0:
        grid = [0.0, *np.geomspace(10**-DECADES, 1.0, POINTS - 1).tolist()]
        return {"lambda": grid, "cost": [0.0] * POINTS}
    order = np.argsort(-slopes, kind="stable")
    steep = slopes[order]  # descending
    spent = np.cumsum(np.concatenate([d.astype(np.float64) for d in hull.dc])[order])
    top = float(steep[0])
    grid = [0.0, *np.geomspace(top * 10**-DECADES, top, POINTS - 1).tolist()]
    above = np.searchsorted(-steep, -np.asarray(grid), side="left")  # segments with slope > lam
    spend = np.where(above > 0, spent[np.maximum(above - 1, 0)], 0.0) / n
    return {"lambda": grid, "cost": spend.tolist()}


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
