"""Multi-day pacing section of the strategy benchmark: lambda re-solved daily vs solved once.

A 28-day period on the simulated shop: every user arrives once, weekends bring 1.6x a weekday's
traffic (the pacer's forecast is flat), costs and values are the estimates of a model (its costs
are biased), realized costs are drawn by the simulator. ``experiments.strategy.serve_days`` with
the re-solving controller against the open-loop plan (lambda for the whole budget, solved once),
both under the same hard cap; incremental profit scored with the true effects.
"""

from __future__ import annotations

import numpy as np

from experiments.strategy import serve_days

DAYS = 28


def pacing_rows(shop, estimate, value: np.ndarray, cost: np.ndarray, seed: int) -> list[str]:  # type: ignore[no-untyped-def]
    n = shop.n_users
    realized = np.column_stack(
        [
            shop.sample_outcomes(np.full(n, a), seed=seed + 11)["incentive_cost"].to_numpy()
            for a in range(1, shop.n_arms)
        ]
    )
    traffic = np.array([1.6 if d % 7 in (5, 6) else 1.0 for d in range(DAYS)])
    day = np.random.default_rng(seed).choice(DAYS, n, p=traffic / traffic.sum())
    all_treated = float(cost.max(axis=1).sum())
    rows = [
        f"Pacing over {DAYS} days ({estimate.name} values and costs; weekends 1.6x the traffic, "
        "flat forecast; hard cap on the total; profit with the true effects; 'day spend CV' is "
        "the coefficient of variation of daily spend around the even schedule)",
        "",
        "| budget (% all-treated) | re-solved: realized / budget | open loop: realized / budget "
        "| re-solved: last day with spend | open loop: last day with spend | "
        "re-solved profit / open-loop profit | re-solved day spend CV |",
        "|---|---|---|---|---|---|---|",
    ]
    for share in (0.05, 0.10, 0.20):
        budget = share * all_treated
        runs = [
            serve_days(
                estimate.value,
                estimate.cost,
                realized,
                day,
                budget,
                days=DAYS,
                resolve=resolve,
                true_value=value,
                order_seed=seed,
            )
            for resolve in (True, False)
        ]
        last = [int(np.flatnonzero(r.day_spend > 0).max(initial=-1)) + 1 for r in runs]
        ratio = runs[0].value / runs[1].value if runs[1].value > 0 else float("nan")
        cv = float(runs[0].day_spend.std() / runs[0].day_spend.mean())
        rows.append(
            f"| {share:.0%} | {runs[0].spend / budget:.3f} | {runs[1].spend / budget:.3f} | "
            f"{last[0]} | {last[1]} | {ratio:.3f} | {cv:.2f} |"
        )
    return rows
