"""Serve a strategy's decisions for one simulated period and measure what it earned.

Used by the demo: the strategy's current ledger (its latest batch run's decisions and the online
ones after it; superseded runs and experiments' decisions are not this period's) is the plan; the
shop's users arrive in random order; the spend ledger issues an incentive only while the realized
spend so far plus the worst case of this one stays within the budget (a hard cap: no incentive
once the budget is spent); the realized 30-day outcomes are drawn from the simulator. The strategy's incremental profit is measured against its own no-incentive holdout (as
it would be in production) and compared, on the same users and budget, with the blanket winner
(the experiment's winner given to as many users as the budget allows) and with no incentive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.db import Decision, Incentive
from experiments.services.strategies import get_strategy
from experiments.services.strategy_ledger import own_decisions

if TYPE_CHECKING:
    from experiments.simulation import Shop


def _served(arms: np.ndarray, cost: np.ndarray, budget: float, order: np.ndarray) -> np.ndarray:
    """Hard cap in arrival order on realized cost: later users get no incentive (arm 0)."""
    out = np.zeros_like(arms)
    spent = 0.0
    for i in order:
        if arms[i] > 0 and spent + cost[i, arms[i]] <= budget:
            out[i] = arms[i]
            spent += cost[i, arms[i]]
    return out


def simulate_period(session: Session, shop: Shop, key: str, *, seed: int = 0) -> dict[str, Any]:
    strategy = get_strategy(session, key)
    incentive_keys = {i.id: i.key for i in session.scalars(select(Incentive))}
    index = {unit: i for i, unit in enumerate(shop.users["unit_id"])}
    planned = np.zeros(shop.n_users, dtype=np.int64)
    bucket = np.full(shop.n_users, "exploit", dtype=object)
    for unit, incentive_id, b in session.execute(
        select(Decision.unit_id, Decision.incentive_id, Decision.bucket)
        .where(*own_decisions(strategy))
        .order_by(Decision.id)  # a later online decision of a unit is the one it got
    ):
        if unit in index:
            arm = shop.arms.index(incentive_keys[incentive_id]) if incentive_id else 0
            planned[index[unit]] = arm
            bucket[index[unit]] = b
    rng = np.random.default_rng(seed)
    order = rng.permutation(shop.n_users)
    # realized cost if served: drawn once per user and arm, then capped in arrival order
    outcomes_by_arm = [
        shop.sample_outcomes(np.full(shop.n_users, a), seed=seed + 1) for a in range(shop.n_arms)
    ]
    cost = np.column_stack([o["incentive_cost"].to_numpy() for o in outcomes_by_arm])
    margin = np.column_stack([o["margin"].to_numpy() for o in outcomes_by_arm])
    served = _served(planned, cost, strategy.budget, order)
    fallback = incentive_keys.get(strategy.fallback_incentive_id)
    winner_arm = shop.arms.index(fallback) if fallback else 0
    # the blanket winner is planned like the strategy, on expected spend, in arrival order ...
    expected = shop.expected_cost[order, winner_arm]
    planned_blanket = np.zeros(shop.n_users, dtype=np.int64)
    planned_blanket[order[np.cumsum(expected) <= strategy.budget]] = winner_arm
    # ... and served under the same hard cap on realized spend
    blanket = _served(planned_blanket, cost, strategy.budget, order)
    rows = np.arange(shop.n_users)

    def profit(arms: np.ndarray) -> float:
        return float(margin[rows, arms].sum() - margin[:, 0].sum())

    holdout = bucket == "holdout"
    treated_bucket = ~holdout
    measured = measured_se = None
    if holdout.sum() > 1 and treated_bucket.sum() > 1:
        treated_margin, held_margin = margin[rows, served][treated_bucket], margin[holdout, 0]
        per_user = treated_margin.mean() - held_margin.mean()
        se = np.sqrt(
            treated_margin.var(ddof=1) / treated_margin.size
            + held_margin.var(ddof=1) / held_margin.size
        )
        measured = float(per_user * treated_bucket.sum())
        measured_se = float(se * treated_bucket.sum())
    return {
        "budget": strategy.budget,
        "realized_spend": float(cost[rows, served].sum()),
        "incentives_issued": int((served > 0).sum()),
        "stopped_by_cap": int(((planned > 0) & (served == 0)).sum()),
        "strategy_profit": profit(served),
        "strategy_profit_measured_vs_holdout": measured,
        "strategy_profit_measured_se": measured_se,
        "blanket_winner_profit": profit(blanket),
        "blanket_winner_users": int((blanket > 0).sum()),
        "no_incentive_profit": 0.0,
    }
