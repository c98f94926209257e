"""The Spark job's allocation driver, run on pandas partitions (no JVM): the same decisions as
``experiments.strategy.allocate`` for every split of the users.

The partitions go through the same functions the executors run (``priced_frame``,
``bracket_stats``, ``choose_stats``, ...) with their results round-tripped through JSON as in
``partition_pass``. The reference is the single-process ``allocate``. Instances include exact
ties (integer values and costs), zero costs, and budgets equal to float sums of hull segments,
where float rounding makes the choice at lambda exceed the budget and forces the drop and
refill paths.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from experiments.jobs import spark_allocation as sa
from experiments.jobs import spark_plan
from experiments.jobs.spark_scoring import priced_frame
from experiments.strategy import allocate
from experiments.strategy import buckets as bk
from experiments.strategy.knapsack import build_hull, columns

SALT, HASH_VERSION = "strategy:test", 2


def partitioned(value, cost, holdout, explore, cuts):  # type: ignore[no-untyped-def]
    n, k = value.shape
    ids = np.array([f"user-{i}" for i in range(n)])
    arms = [f"arm_{a}" for a in range(k)]
    return (
        [
            priced_frame(r, ids[r], value[r], cost[r], arms, holdout, explore, SALT, HASH_VERSION)
            for r in np.split(np.arange(n), cuts)
        ],
        ids,
        arms,
    )


def distributed(value, cost, budget, holdout, explore, cuts):  # type: ignore[no-untyped-def]
    frames, ids, arms = partitioned(value, cost, holdout, explore, cuts)

    def run(fn):  # type: ignore[no-untyped-def]
        return [json.loads(json.dumps(fn(pdf))) for pdf in frames]

    plan = spark_plan.solve_plan(run, len(frames), value.shape[1], budget)
    decisions = pd.concat(
        [sa.decide_frame(f, arms, plan.lam, plan.overrides, holdout, explore) for f in frames]
    )
    summary = spark_plan.plan_summary(plan, [sa.summary_stats(decisions, len(arms))], arms, budget)
    return plan, decisions, summary, ids, arms


def assert_same(value, cost, budget, holdout, explore, cuts) -> None:  # type: ignore[no-untyped-def]
    n, k = value.shape
    try:
        ref = allocate(
            value,
            cost,
            budget,
            holdout=holdout,
            explore=explore,
            unit_ids=np.array([f"user-{i}" for i in range(n)]),
            arms=[f"arm_{a}" for a in range(k)],
            salt=SALT,
            hash_version=HASH_VERSION,
        )
    except ValueError as refused:  # the explore bucket alone is over the budget
        with pytest.raises(ValueError) as also:
            distributed(value, cost, budget, holdout, explore, cuts)
        assert str(also.value) == str(refused)
        return
    plan, decisions, summary, ids, arms = distributed(value, cost, budget, holdout, explore, cuts)
    assert plan.lam == ref.lambda_
    assert plan.spend == ref.spend <= budget
    np.testing.assert_array_equal(decisions["arm"].to_numpy(), ref.arm)
    np.testing.assert_array_equal(decisions["bucket"].to_numpy(), ref.bucket)
    np.testing.assert_array_equal(decisions["propensity"].to_numpy(), ref.propensity)
    np.testing.assert_array_equal(decisions["expected_cost"].to_numpy(), ref.expected_cost)
    expected = ref.summary()
    for key in ("count_by_arm", "count_by_bucket", "lambda", "spend", "budget"):
        assert summary[key] == expected[key], key
    for key in ("value", "dual_bound"):
        assert summary[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-9)


def random_cuts(rng: np.random.Generator, n: int) -> np.ndarray:
    size = min(n - 1, int(rng.integers(0, 6)))
    return np.sort(rng.choice(np.arange(1, n), size=size, replace=False)) if size else []


SHARES = [(0.0, 0.0), (0.1, 0.1), (0.05, 0.0), (0.0, 0.2)]


@pytest.mark.parametrize("seed", range(8))
def test_random_instances_decide_like_allocate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(16):
        n, k = int(rng.integers(1, 200)), int(rng.integers(1, 5))
        value = rng.normal(1.0, 2.0, (n, k))
        cost = rng.uniform(0.0, 3.0, (n, k))
        kind = trial % 4
        if kind == 1:  # exact ties: identical users and slopes
            value, cost = np.round(value), np.round(cost)
        elif kind == 2:
            value, cost = np.round(value * 10) / 10, np.round(cost * 10) / 10 + 0.1
        elif kind == 3:
            cost[rng.random((n, k)) < 0.2] = 0.0
        holdout, explore = SHARES[(seed + trial) % 4]
        code, draw = bk.assign(
            np.array([f"user-{i}" for i in range(n)]),
            n,
            np.ones((n, k), bool),
            holdout,
            explore,
            SALT,
            HASH_VERSION,
        )
        explored = (code == bk.EXPLORE) & (draw >= 0)
        fixed = float(cost[explored, draw[explored]].sum())
        budget = fixed + float(rng.uniform(0, 1) * cost.max(axis=1).sum())
        assert_same(value, cost, budget, holdout, explore, random_cuts(rng, n))


@pytest.mark.parametrize("seed", range(4))
def test_budgets_at_float_sums_force_the_drop_and_refill_paths(seed: int, monkeypatch) -> None:
    drops = []
    original = sa.drop_until_fits

    def counting(*args):  # type: ignore[no-untyped-def]
        units, dropped = original(*args)
        drops.append(bool(dropped))
        return units, dropped

    monkeypatch.setattr(sa, "drop_until_fits", counting)
    rng = np.random.default_rng(100 + seed)
    for trial in range(30):
        n, k = int(rng.integers(5, 80)), int(rng.integers(2, 4))
        value = np.round(rng.uniform(0.1, 3.0, (n, k)) * 10) / 10
        cost = np.round(rng.uniform(0.1, 1.0, (n, k)) * 10) / 10
        holdout, explore = (0.0, 0.0) if trial % 2 else (0.1, 0.3)
        ids = np.array([f"user-{i}" for i in range(n)])
        code, draw = bk.assign(ids, n, np.ones((n, k), bool), holdout, explore, SALT, 2)
        explored = (code == bk.EXPLORE) & (draw >= 0)
        exploit = np.flatnonzero(code == bk.EXPLOIT)
        if exploit.size == 0:
            continue
        hull = build_hull(columns(value[exploit]), columns(cost[exploit]), None)
        slopes, dcs = np.concatenate(hull.slope), np.concatenate(hull.dc)
        pivot = rng.choice(slopes)
        # the float sum of the segments above a slope: the exact spend lies within rounding
        budget = float(cost[explored, draw[explored]].sum()) + float(dcs[slopes > pivot].sum())
        assert_same(value, cost, budget, holdout, explore, random_cuts(rng, n))
    assert any(drops), "no instance needed a drop: the rounding paths went untested"


def test_the_explore_bucket_alone_over_budget_is_refused_like_allocate() -> None:
    rng = np.random.default_rng(1)
    value, cost = rng.normal(1, 1, (500, 2)), rng.uniform(1, 2, (500, 2))
    with pytest.raises(ValueError, match="explore bucket alone") as single:
        allocate(value, cost, 1.0, explore=0.5, unit_ids=np.arange(500).astype(str))
    with pytest.raises(ValueError, match="explore bucket alone") as spread:
        distributed(value, cost, 1.0, 0.0, 0.5, [100, 300])
    assert str(single.value).split(";")[1] == str(spread.value).split(";")[1]
