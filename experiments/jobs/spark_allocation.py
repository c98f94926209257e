"""The budgeted allocation of a Spark population, step for step the single-process ``allocate``.

Layer: ``experiments.jobs``. ``experiments.strategy.allocate`` (holdout and explore buckets, no
caps or eligibility, as the strategy run uses it) does, in order: charge the explore draws to
the budget; find lambda on the exploit users' hulls; take every segment steeper than lambda;
drop the least efficient users while the spend exceeds the budget; fill the leftover greedily
(next hull segments, or any arm after a drop); check again; check the total. Here each step is a
pass over the executors that returns only what the next decision needs (exact spend units, the
few users the fill or a drop may touch), and the driver runs the single-process functions
(``fill_along_hull``, ``greedy_fill``) on those users, in row order, so that ties break the same
way. The users' final arms are their choice at lambda plus these few overrides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.jobs.spark_scoring import hull_columns, value_cost
from experiments.jobs.spark_session import ROW
from experiments.strategy import buckets as bk
from experiments.strategy.capacity import greedy_fill
from experiments.strategy.exact import exact_sum, float_units
from experiments.strategy.knapsack import Hull, columns, fill_along_hull, rule_choice

if TYPE_CHECKING:
    import pandas as pd

LOWEST = 256  # users fetched per pass when some must be dropped (rare: float rounding)
_UNIT = 2.0**-53


@dataclass
class Overrides:
    """Arms that differ from each exploit user's choice at lambda (fill and drops)."""

    arms: dict[int, int] = field(default_factory=dict)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.fromiter(sorted(self.arms), dtype=np.int64, count=len(self.arms))
        return rows, np.array([self.arms[int(r)] for r in rows], dtype=np.int32)


def current_arm(
    pdf: pd.DataFrame, k: int, lam: float, overrides: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Each exploit user's arm (-1 elsewhere) and count of hull segments taken at ``lam``
    (``knapsack.choose``), with the overrides applied."""
    s_cols, _, a_cols = hull_columns(k)
    slope = pdf[s_cols].to_numpy(np.float64)
    seg_arm = pdf[a_cols].to_numpy(np.int32)
    arm = pdf["start_arm"].to_numpy(np.int32).copy()
    taken = np.zeros(len(pdf), dtype=np.int32)
    for t in range(k):
        step = slope[:, t] > lam  # NaN (no segment) is never taken
        arm[step] = seg_arm[step, t]
        taken += step
    rows_o, arms_o = overrides
    if rows_o.size:
        rows = pdf[ROW].to_numpy(np.int64)
        pos = np.minimum(np.searchsorted(rows_o, rows), rows_o.size - 1)
        hit = rows_o[pos] == rows
        arm[hit] = arms_o[pos[hit]]
    return arm, taken


def _at(matrix: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """matrix[i, arm[i]], 0 where arm is -1."""
    out = np.zeros(len(arm))
    rows = np.flatnonzero(arm >= 0)
    out[rows] = matrix[rows, arm[rows]]
    return out


def choose_stats(pdf: pd.DataFrame, k: int, lam: float, threshold: float) -> dict[str, Any]:
    """Exact spend of the choice at lambda, users per arm, and the users whose next hull
    segment costs at most ``threshold`` (the greedy fill may extend them)."""
    arm, taken = current_arm(pdf, k, lam, (np.empty(0, np.int64), np.empty(0, np.int32)))
    value, cost = value_cost(pdf, k)
    s_cols, d_cols, a_cols = hull_columns(k)
    slope = pdf[s_cols].to_numpy(np.float64)
    dc = pdf[d_cols].to_numpy(np.float64)
    step = np.minimum(taken, k - 1)
    has_next = (taken < k) & ~np.isnan(slope[np.arange(len(pdf)), step])
    nxt = np.flatnonzero(has_next & (dc[np.arange(len(pdf)), step] <= threshold))
    chosen = arm >= 0
    cand = pdf.iloc[nxt]
    return {
        "units": exact_sum(_at(cost, arm)[chosen]),
        "counts": np.bincount(arm[chosen], minlength=k).tolist(),
        "cand": {
            "row": cand[ROW].tolist(),
            "start": cand["start_arm"].tolist(),
            "arm": arm[nxt].tolist(),
            "taken": taken[nxt].tolist(),
            "s": slope[nxt].tolist(),
            "d": dc[nxt].tolist(),
            "a": pdf[a_cols].to_numpy(np.int32)[nxt].tolist(),
            "c": cost[nxt].tolist(),
        },
    }


def lowest_stats(
    pdf: pd.DataFrame, k: int, lam: float, overrides: tuple, final: bool
) -> list[list[float]]:
    """The partition's ``LOWEST`` exploit users of least value per cost: (eff, row, cost).

    ``final=False``: among chosen users, ``value / max(cost, 1e-300)`` (``knapsack._fit_budget``);
    ``final=True``: among users of positive cost, ``value / cost`` (``allocate``'s last check).
    """
    arm, _ = current_arm(pdf, k, lam, overrides)
    value, cost = value_cost(pdf, k)
    ev, ec = _at(value, arm), _at(cost, arm)
    users = np.flatnonzero((arm >= 0) & (ec > 0)) if final else np.flatnonzero(arm >= 0)
    eff = ev[users] / (ec[users] if final else np.maximum(ec[users], 1e-300))
    rows = pdf[ROW].to_numpy(np.int64)[users]
    order = np.lexsort((rows, eff))[:LOWEST]
    return [[float(eff[i]), int(rows[i]), float(ec[users[i]]), int(arm[users[i]])] for i in order]


def greedy_stats(pdf: pd.DataFrame, k: int, lam: float, overrides: tuple, budget_left: float):  # type: ignore[no-untyped-def]
    """Users with an upgrade that ``capacity.greedy_fill`` could take within ``budget_left``."""
    arm, _ = current_arm(pdf, k, lam, overrides)
    exploit = pdf["code"].to_numpy() == bk.EXPLOIT
    value, cost = value_cost(pdf, k)
    dv = value - _at(value, arm)[:, None]
    dc = cost - _at(cost, arm)[:, None]
    users = np.flatnonzero(exploit & ((dv > 0) & (dc <= budget_left)).any(axis=1))
    return {
        "row": pdf[ROW].to_numpy(np.int64)[users].tolist(),
        "arm": arm[users].tolist(),
        "v": value[users].tolist(),
        "c": cost[users].tolist(),
    }


def drop_until_fits(
    units: int, budget: float, fetch: Callable[[], list[list[float]]], overrides: Overrides
) -> tuple[int, list[int]]:
    """Drop users in order of least value per cost (ties: lower row) until the spend fits;
    returns the spend units and the dropped users' former arms."""
    limit = float_units(budget)
    dropped: list[int] = []
    while units > limit:
        batch = sorted(fetch())[:LOWEST]
        if not batch:
            break
        for _, row, cost, arm in batch:
            units -= float_units(cost)
            overrides.arms[int(row)] = -1
            dropped.append(int(arm))
            if units <= limit:
                break
    return units, dropped


def merge_rows(parts: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-user lists from every partition, concatenated in row order."""
    merged = {key: [v for part in parts for v in part[key]] for key in keys}
    order = np.argsort(np.asarray(merged["row"], dtype=np.int64), kind="stable")
    return {key: np.asarray(values)[order] for key, values in merged.items()}


def merge_candidates(parts: list[dict[str, Any]], k: int) -> dict[str, np.ndarray]:
    """The choose pass's candidates from every partition, in row order."""
    keys = ("row", "start", "arm", "taken", "s", "d", "a", "c")
    return merge_rows([part["cand"] for part in parts], keys)


def hull_fill(cand: dict[str, np.ndarray], k: int, budget_left: float) -> np.ndarray:
    """``knapsack.fill_along_hull`` on the candidates' own hulls (same order, same result)."""
    slope = np.asarray(cand["s"], dtype=np.float64).reshape(-1, k)
    dc = np.asarray(cand["d"], dtype=np.float64).reshape(-1, k)
    seg_arm = np.asarray(cand["a"], dtype=np.int32).reshape(-1, k)
    steps = [np.flatnonzero(~np.isnan(slope[:, t])) for t in range(k)]
    hull = Hull(
        start_arm=np.asarray(cand["start"], dtype=np.int32),
        idx=steps,
        arm=[seg_arm[u, t] for t, u in enumerate(steps)],
        dc=[dc[u, t] for t, u in enumerate(steps)],
        slope=[slope[u, t] for t, u in enumerate(steps)],
    )
    arm = np.asarray(cand["arm"], dtype=np.int32).copy()
    taken = np.asarray(cand["taken"], dtype=np.int32).copy()
    return fill_along_hull(hull, arm, taken, budget_left)


def any_fill(cand: dict[str, Any], k: int, budget_left: float, counts: np.ndarray) -> np.ndarray:
    """``capacity.greedy_fill`` on the candidates (the fill after a drop, without caps)."""
    value = np.asarray(cand["v"], dtype=np.float64).reshape(-1, k)
    cost = np.asarray(cand["c"], dtype=np.float64).reshape(-1, k)
    arm = np.asarray(cand["arm"], dtype=np.int32).copy()
    cap_left = np.full(k, 2**62, dtype=np.int64) - counts
    return greedy_fill(columns(value), columns(cost), None, arm, budget_left, cap_left)


def decide_frame(
    pdf: pd.DataFrame, arms: list[str], lam: float, overrides: tuple, holdout: float, explore: float
) -> pd.DataFrame:
    """Final decisions (as ``allocate`` logs them) and each exploit user's dual term."""
    import pandas as pd

    k = len(arms)
    value, cost = value_cost(pdf, k)
    exploit_choice, _ = current_arm(pdf, k, lam, overrides)
    code = pdf["code"].to_numpy(np.int8)
    others = np.flatnonzero(code != bk.EXPLOIT)
    exploit_arm = exploit_choice.copy()
    mask = np.ones((others.size, k), dtype=bool)
    exploit_arm[others] = rule_choice(value[others], cost[others], mask, lam, np.zeros(k))
    draw = pdf["explore_arm"].to_numpy(np.int32)
    arm = np.where(
        code == bk.EXPLOIT, exploit_choice, np.where(code == bk.EXPLORE, draw, -1)
    ).astype(np.int32)
    if holdout == 0 and explore == 0:
        p = np.ones(len(pdf))
    else:
        p = bk.propensity(arm, exploit_arm, np.full(len(pdf), k), holdout, explore)
    best = np.zeros(len(pdf))
    for a in range(k):  # knapsack.dual_bound's term, float64
        np.maximum(best, value[:, a] - cost[:, a] * lam, out=best)
    best[code != bk.EXPLOIT] = 0.0
    return pd.DataFrame(
        {
            ROW: pdf[ROW].to_numpy(np.int64),
            "unit_id": pdf["unit_id"].to_numpy(),
            "arm": arm,
            "incentive": np.asarray([None, *arms], dtype=object)[arm + 1],
            "bucket": np.asarray(bk.BUCKETS, dtype=object)[code],
            "bucket_code": code.astype(np.int32),
            "propensity": p,
            "expected_value": _at(value, arm),
            "expected_cost": _at(cost, arm),
            "dual_term": best,
        }
    )


def decisions_schema() -> str:
    return (
        f"{ROW} long, unit_id string, arm int, incentive string, bucket string, "
        "bucket_code int, propensity double, "
        "expected_value double, expected_cost double, dual_term double"
    )


def summary_stats(pdf: pd.DataFrame, k: int) -> dict[str, Any]:
    """Per-partition sums for ``Allocation.summary``."""
    arm = pdf["arm"].to_numpy(np.int64)
    code = pdf["bucket_code"].to_numpy(np.int64)
    ev = pdf["expected_value"].to_numpy(np.float64)
    ec = pdf["expected_cost"].to_numpy(np.float64)
    chosen = arm >= 0
    return {
        "count_by_arm": np.bincount(arm[chosen], minlength=k).tolist(),
        "spend_by_arm": np.bincount(arm[chosen], weights=ec[chosen], minlength=k).tolist(),
        "value_by_arm": np.bincount(arm[chosen], weights=ev[chosen], minlength=k).tolist(),
        "count_by_bucket": np.bincount(code, minlength=3).tolist(),
        "value": float(ev[chosen].sum()),
        "fixed_value": float(ev[chosen & (code != bk.EXPLOIT)].sum()),
        "dual_terms": float(pdf["dual_term"].to_numpy(np.float64).sum()),
    }


def threshold_for(budget: float, hull_spend: float, n_terms: int, k: int) -> float:
    """A cost at least the leftover ``budget - spend`` once the spend is known exactly: the
    choice's spend differs from the hull's (float) spend by rounding only."""
    return budget - hull_spend + 4.0 * (n_terms + k + 2) * _UNIT * max(budget, hull_spend, 1.0)
