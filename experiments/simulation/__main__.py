"""Print a shop's true average effects as a markdown table.

Usage: ``python -m experiments.simulation [n_users] [seed]`` (defaults 200000 and 0); the tables in
``docs/simulator.md`` come from this command.
"""

from __future__ import annotations

import sys

from experiments.simulation.shop import simulate_shop, summarize

if __name__ == "__main__":
    n_users = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    shop = simulate_shop(n_users=n_users, seed=seed)
    base = {o: shop.expected(o)[:, 0].mean() for o in ("conversion", "revenue", "retention")}
    print(
        f"n_users {n_users}, seed {seed}: no order in the last year "
        f"{(shop.users['frequency'] == 0).mean():.1%}, mean frequency "
        f"{shop.users['frequency'].mean():.2f}, baseline conversion {base['conversion']:.2%}, "
        f"mean order value given conversion {shop.order_value[:, 0].mean():.1f}, "
        f"30-day retention {base['retention']:.1%}\n"
    )
    table = summarize(shop)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        cells = [row[0], *(f"{v:+.2f}" for v in row[1:6]), *(f"{v:.0%}" for v in row[6:])]
        print("| " + " | ".join(cells) + " |")
