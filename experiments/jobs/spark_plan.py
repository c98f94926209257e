"""The driver's half of the distributed allocation: from partition results to the plan.

Layer: ``experiments.jobs``. :func:`solve_plan` takes ``run(fn)``, which applies ``fn`` to every
partition of the priced users (pandas frames, see ``experiments.jobs.spark_scoring``) and
returns the results; Spark does that with ``mapInPandas``, tests with a list of frames. It
follows ``experiments.strategy.allocate`` step by step (module doc of
``experiments.jobs.spark_allocation``) and returns lambda, the overrides of each user's choice
at lambda, and the exact spend — all the final decision pass needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.jobs import spark_allocation as sa
from experiments.jobs.spark_lambda import (
    SAMPLE_PER_GAP,
    PassResult,
    bracket_stats,
    find_lambda,
    merge,
)
from experiments.strategy.exact import exact_sum, float_units, to_float

Run = Callable[[Callable[[Any], Any]], list[Any]]


@dataclass(frozen=True)
class Plan:
    """lambda, the exploit budget, the exact total spend and the overridden arms."""

    lam: float
    sub_budget: float
    spend: float
    overrides: tuple[np.ndarray, np.ndarray]


def solve_plan(run: Run, n_partitions: int, k: int, budget: float) -> Plan:
    """``allocate``'s decisions (uncapped, every arm eligible) from partition passes."""
    quota = max(8, math.ceil(SAMPLE_PER_GAP / max(n_partitions, 1)))

    def bracket(edges, exact_at=(), collect=False, first=False) -> PassResult:  # type: ignore[no-untyped-def]
        edges = [float(e) for e in edges]
        parts = run(lambda pdf: bracket_stats(pdf, k, edges, quota, exact_at, collect, first))
        return merge(parts, len(edges) + 1, len(exact_at))

    first = bracket([np.inf, 0.0], first=True)
    fixed_units = first.extra.get("fixed_units", 0)
    fixed_spend = to_float(fixed_units)
    if fixed_units > float_units(budget):  # exact, as in allocate
        raise ValueError(
            f"the explore bucket alone plans {fixed_spend:.6g} of spend, more than budget "
            f"{budget:.6g}; lower explore or raise the budget"
        )
    sub_budget = budget - fixed_spend
    lam, hull_spend = find_lambda(bracket, first, sub_budget)
    threshold = sa.threshold_for(sub_budget, hull_spend, int(first.counts.sum()), k)
    chosen = run(lambda pdf: sa.choose_stats(pdf, k, lam, threshold))
    units = sum(p["units"] for p in chosen)
    counts = np.sum([p["counts"] for p in chosen], axis=0).astype(np.int64)
    overrides = sa.Overrides()

    def lowest(final: bool) -> list[list[float]]:
        arrays = overrides.arrays()
        parts = run(lambda pdf: sa.lowest_stats(pdf, k, lam, arrays, final))
        return [row for part in parts for row in part]

    # knapsack.solve: fit the choice to the budget, fill the leftover, fit again
    units, dropped = sa.drop_until_fits(units, sub_budget, lambda: lowest(False), overrides)
    budget_left = sub_budget - to_float(units)
    if not dropped:
        if budget_left > threshold:  # the bound held in every test; ask again if it did not
            chosen = run(lambda pdf: sa.choose_stats(pdf, k, lam, budget_left))
        cand = sa.merge_candidates(chosen, k)
        before = np.asarray(cand["arm"], dtype=np.int32)
        after = sa.hull_fill(cand, k, budget_left) if before.size else before
    else:
        arrays = overrides.arrays()
        parts = run(lambda pdf: sa.greedy_stats(pdf, k, lam, arrays, budget_left))
        cand = sa.merge_rows(parts, ("row", "arm", "v", "c"))
        counts = counts - np.bincount([a for a in dropped if a >= 0], minlength=k)
        before = np.asarray(cand["arm"], dtype=np.int32)
        after = sa.any_fill(cand, k, budget_left, counts) if before.size else before
    cost = np.asarray(cand["c"], dtype=np.float64).reshape(-1, k)
    changed = np.flatnonzero(before != after)
    for i in changed:
        overrides.arms[int(cand["row"][i])] = int(after[i])
    new, old = changed[after[changed] >= 0], changed[before[changed] >= 0]
    units += exact_sum(cost[new, after[new]]) - exact_sum(cost[old, before[old]])
    units, _ = sa.drop_until_fits(units, sub_budget, lambda: lowest(False), overrides)
    # allocate: the explore draws and the exploit choice together must fit the budget
    total, _ = sa.drop_until_fits(fixed_units + units, budget, lambda: lowest(True), overrides)
    return Plan(lam, sub_budget, to_float(total), overrides.arrays())


def plan_summary(plan: Plan, parts: list[dict[str, Any]], arms: list[str], budget: float):  # type: ignore[no-untyped-def]
    """``Allocation.summary()`` from the decision pass's per-partition sums."""

    def total(key: str) -> Any:
        return np.sum([p[key] for p in parts], axis=0)

    value = float(total("value"))
    dual = float(total("fixed_value")) + (plan.lam * plan.sub_budget + float(total("dual_terms")))
    return {
        "lambda": plan.lam,
        "mu": [0.0] * len(arms),
        "budget": budget,
        "spend": plan.spend,
        "value": value,
        "objective": value,
        "dual_bound": dual,
        "gap": dual - value,
        "arms": list(arms),
        "spend_by_arm": [float(x) for x in total("spend_by_arm")],
        "value_by_arm": [float(x) for x in total("value_by_arm")],
        "count_by_arm": [int(x) for x in total("count_by_arm")],
        "count_by_bucket": [int(x) for x in total("count_by_bucket")],
    }
