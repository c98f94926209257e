"""Benchmark of ``experiments.strategy``: budgeted allocation and off-policy evaluation.

Prints markdown tables (liftlab against its peers in the same run, as ratios):

1. the simulated shop (known truth): at budgets of 5-50 % of the all-treated spend, incremental
   profit of ``allocate`` with true effects / the exact optimum (``scipy.optimize.milp`` on a
   subsample; primal / dual bound on the whole population), with the effects estimated by
   liftlab's ``UpliftModel`` (the product's economics path, see ``strategy_models``) and by a
   scikit-learn T-learner, against the A/B winner given to everyone the budget allows and against
   ranking users by value while ignoring cost; realized spend / budget (plain and with the
   Bernstein margin);
2. IPW, SNIPW and DR estimates of each policy's value from logged holdout/explore data vs truth;
   a 28-day period paced by re-solving lambda daily vs lambda solved once (``strategy_pacing``);
3. Hillstrom (assumed e-mail cost and margin) and Starbucks (the task's net incremental revenue);
4. Open Bandit Dataset: the uniform-random policy's CTR estimated from the BTS logs vs its
   on-policy CTR in the random logs;
5. the time to allocate 10 million users x 5 arms (float32).

Run: ``.venv/bin/python benchmarks/strategy.py`` (``--quick`` for a seconds-long smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix, kron
from scipy.sparse import eye as speye

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.strategy_models import (  # noqa: E402
    t_learner,
    t_learner_estimate,
    uplift_model_estimate,
)
from benchmarks.strategy_pacing import pacing_rows  # noqa: E402
from experiments.strategy import allocate  # noqa: E402
from experiments.strategy.evaluation import (  # noqa: E402
    bootstrap_interval,
    dr_rounds,
    estimate,
    feedback,
    snipw_rounds,
)
from experiments.strategy.pacing import allocate_with_margin  # noqa: E402
from uplift.datasets import shared_data_path  # noqa: E402

SHARES = (0.05, 0.10, 0.20, 0.30, 0.50)


def milp_optimum(value: np.ndarray, cost: np.ndarray, budget: float) -> float:
    n, k = value.shape
    cons = [
        LinearConstraint(csr_matrix(cost.ravel()[None, :]), -np.inf, budget),
        LinearConstraint(kron(speye(n), np.ones((1, k))), -np.inf, 1),
    ]
    res = milp(-value.ravel(), constraints=cons, integrality=np.ones(n * k), bounds=Bounds(0, 1))
    return -res.fun


def winner_for_budget(value, cost, budget, winner, rng) -> np.ndarray:
    """The A/B winner to users in random order while the expected spend fits."""
    order = rng.permutation(value.shape[0])
    fits = np.cumsum(cost[order, winner]) <= budget
    arm = np.full(value.shape[0], -1)
    arm[order[fits]] = winner
    return arm


def rank_by_value(value, cost, budget) -> np.ndarray:
    """Users by their best value, each given the highest-value arm, skipping what does not fit."""
    best = value.argmax(axis=1)
    top = value[np.arange(value.shape[0]), best]
    arm = np.full(value.shape[0], -1)
    left = budget
    for i in np.argsort(-top, kind="stable"):
        if top[i] <= 0:
            break
        if cost[i, best[i]] <= left:
            arm[i] = best[i]
            left -= cost[i, best[i]]
    return arm


def gain(value: np.ndarray, arm: np.ndarray) -> float:
    rows = np.flatnonzero(arm >= 0)
    return float(value[rows, arm[rows]].sum())


def shop_section(n_users: int, n_exact: int, seed: int, max_epochs: int | None) -> list[str]:
    from experiments.simulation.shop import simulate_shop

    shop = simulate_shop(n_users, seed=seed)
    value = shop.expected_margin[:, 1:] - shop.expected_margin[:, :1]
    cost = shop.expected_cost[:, 1:]
    all_treated = float(cost.max(axis=1).sum())
    log = shop.randomized_experiment(seed=seed + 1)
    # the A/B test's winner: the arm with the best estimated average margin in the experiment
    arm_margin = log.groupby("treatment", observed=True)["margin"].mean()
    winner = int(np.argmax([arm_margin[a] - arm_margin["none"] for a in shop.arms[1:]]))
    rng = np.random.default_rng(seed)
    sub = rng.choice(n_users, n_exact, replace=False)
    models = [uplift_model_estimate(shop, log, max_epochs), t_learner_estimate(shop, log)]
    k_per_conv = np.where(shop.p_convert[:, 1:] > 0, cost / shop.p_convert[:, 1:], 0.0)
    cost_var = k_per_conv**2 * shop.p_convert[:, 1:] * (1 - shop.p_convert[:, 1:])
    rows = [
        f"A/B winner (best average margin in the randomized experiment): {shop.arms[winner + 1]}; "
        + "; ".join(f"{m.name} fitted in {m.fit_seconds:.1f} s" for m in models),
        "",
        "| budget (% all-treated) | true effects / milp optimum (subsample) | "
        "true effects / dual bound | "
        + " | ".join(f"{m.name} effects / dual bound (true spend / budget)" for m in models)
        + " | A/B winner to all the budget allows / liftlab | rank by value / liftlab | "
        "realized / budget | paced realized / budget |",
        "|---|---|---|" + "---|" * len(models) + "---|---|---|---|",
    ]
    for share in SHARES:
        budget = share * all_treated
        plan = allocate(value, cost, budget)
        b_sub = share * float(cost[sub].max(axis=1).sum())
        exact = milp_optimum(value[sub], cost[sub], b_sub)
        ours_sub = allocate(value[sub], cost[sub], b_sub).value
        win = gain(value, winner_for_budget(value, cost, budget, winner, rng))
        ranked = gain(value, rank_by_value(value, cost, budget))
        model_cells = []
        for m in models:
            est = allocate(m.value, m.cost, budget)
            # value and spend of the estimated plan under the true effects: spend overshoots
            # when the model underestimates costs
            model_cells.append(
                f"{gain(value, est.arm) / plan.dual_bound:.3f} ({gain(cost, est.arm) / budget:.2f})"
            )
        realized = shop.sample_outcomes(plan.arm + 1, seed=seed)["incentive_cost"].sum()
        paced = allocate_with_margin(
            value, cost, budget, cost_var=cost_var, cost_max=3 * k_per_conv, alpha=0.01
        ).allocation
        realized_paced = shop.sample_outcomes(paced.arm + 1, seed=seed)["incentive_cost"].sum()
        rows.append(
            f"| {share:.0%} | {ours_sub / exact:.4f} | {plan.value / plan.dual_bound:.5f} | "
            + " | ".join(model_cells)
            + f" | {win / plan.value:.3f} | {ranked / plan.value:.3f} | "
            f"{realized / budget:.3f} | {realized_paced / budget:.3f} |"
        )
    rows += ["", *ope_section(shop, value, cost, all_treated, winner, models, seed)]
    rows += ["", *pacing_rows(shop, models[0], value, cost, seed)]
    return rows


def ope_section(shop, value, cost, all_treated, winner, models, seed) -> list[str]:
    """Log a period with holdout 5% / explore 10% at a 10% budget; evaluate policies off-line."""
    n = shop.n_users
    ids = shop.users["unit_id"].to_numpy(dtype=str)
    budget = 0.1 * all_treated
    logging = allocate(value, cost, budget, holdout=0.05, explore=0.10, seed=seed, unit_ids=ids)
    outcomes = shop.sample_outcomes(logging.arm + 1, seed=seed + 7)
    reward = outcomes["margin"].to_numpy()
    policies = {
        "liftlab allocation, true effects": allocate(value, cost, budget).arm,
        **{
            f"liftlab allocation, {m.name} effects": allocate(m.value, m.cost, budget).arm
            for m in models
        },
        "A/B winner to budget": winner_for_budget(
            value, cost, budget, winner, np.random.default_rng(seed)
        ),
        "rank by value": rank_by_value(value, cost, budget),
        "no incentive": np.full(n, -1),
    }
    q = models[0].margin  # DR's reward model: liftlab's UpliftModel predicted margin per arm
    rows = [
        "Off-policy evaluation from one logged period (holdout 5%, explore 10%, logged "
        "propensities, realized margin per user as reward; DR's reward model is the UpliftModel's "
        "predicted margin); value = expected margin per user",
        "",
        "| policy (10% budget) | true value / user | IPW | SNIPW | DR | DR 95% CI | "
        "DR error / true gain |",
        "|---|---|---|---|---|---|---|",
    ]
    base_truth = shop.expected_margin[:, 0].mean()
    for name, arm in policies.items():
        dist = np.zeros((n, value.shape[1] + 1))
        dist[np.arange(n), arm + 1] = 1.0
        fb = feedback(logging.arm + 1, reward, logging.propensity, dist, q)
        truth = shop.expected_margin[np.arange(n), arm + 1].mean()
        est = {e: estimate(e, fb) for e in ("ipw", "snipw", "dr")}
        half = 1.96 * float(dr_rounds(fb).std() / np.sqrt(n))
        lift = truth - base_truth
        err = f"{(est['dr'] - truth) / lift:+.2f}" if abs(lift) > 1e-9 else "n/a"
        rows.append(
            f"| {name} | {truth:.4f} | {est['ipw']:.4f} | {est['snipw']:.4f} | "
            f"{est['dr']:.4f} | [{est['dr'] - half:.3f}, {est['dr'] + half:.3f}] | {err} |"
        )
    return rows


def _load_hillstrom() -> pd.DataFrame:
    return pd.read_csv(shared_data_path("hillstrom", "hillstrom.csv.gz"))


def hillstrom_section(email_cost: float, margin_rate: float, seed: int) -> list[str]:
    """3-arm RCT; per-segment effects on one half, policies scored on the other half by SNIPW."""
    df = _load_hillstrom()
    arms = ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    df["channel"] = df["channel"].astype("category").cat.codes
    rng = np.random.default_rng(seed)
    train = rng.random(len(df)) < 0.5
    # per-segment effects (bought mens / womens last year x newbie x channel): spend is too sparse
    # and heavy-tailed for a per-user model to beat the blanket winner
    df["cell"] = df["mens"] * 8 + df["womens"] * 4 + df["newbie"] * 2 + (df["channel"] == 2)
    means = df[train].pivot_table(index="cell", columns="segment", values="spend", aggfunc="mean")
    test = df[~train].reset_index(drop=True)
    spend = means.loc[test["cell"], arms].to_numpy()
    value = margin_rate * (spend[:, 1:] - spend[:, :1]) - email_cost
    cost = np.full(value.shape, email_cost)
    logged = test["segment"].map({a: i for i, a in enumerate(arms)}).to_numpy()
    pscore = np.bincount(logged, minlength=3)[logged] / len(test)
    profit = margin_rate * test["spend"].to_numpy() - email_cost * (logged > 0)
    train_df = df[train]
    ate = [
        margin_rate
        * (
            train_df.loc[train_df.segment == a, "spend"].mean()
            - train_df.loc[train_df.segment == arms[0], "spend"].mean()
        )
        for a in arms[1:]
    ]
    winner = int(np.argmax(ate))

    def policy_value(arm: np.ndarray, with_se: bool = False):
        dist = np.zeros((len(test), 3))
        dist[np.arange(len(test)), arm + 1] = 1.0
        fb = feedback(logged, profit, pscore, dist)
        terms = snipw_rounds(fb)
        se = float(terms.std() / np.sqrt(terms.size))
        return (estimate("snipw", fb), se) if with_se else estimate("snipw", fb)

    base = policy_value(np.full(len(test), -1))
    rows = [
        f"Hillstrom (assumed e-mail cost ${email_cost:.2f}, margin {margin_rate:.0%} of spend; "
        "incremental profit per 1,000 customers vs no e-mail, SNIPW on the held-out half)",
        "",
        "| budget (% e-mail everyone) | liftlab | liftlab SE | A/B winner to budget | "
        "rank by value | liftlab / winner |",
        "|---|---|---|---|---|---|",
    ]
    for share in SHARES:
        budget = share * email_cost * len(test)
        ours, se = policy_value(allocate(value, cost, budget).arm, with_se=True)
        ours -= base
        win = policy_value(winner_for_budget(value, cost, budget, winner, rng)) - base
        ranked = policy_value(rank_by_value(value, cost, budget)) - base
        ratio = f"{ours / win:.2f}" if win > 0 else "n/a"
        rows.append(
            f"| {share:.0%} | {1000 * ours:.1f} | {1000 * se:.1f} | {1000 * win:.1f} | "
            f"{1000 * ranked:.1f} | {ratio} |"
        )
    return rows


def starbucks_section(seed: int, max_train: int | None = None) -> list[str]:
    """Promotion: NIR = 10 purchasers_treated - 0.15 promotions - 10 purchasers_control."""
    train = pd.read_csv(shared_data_path("starbucks", "training.csv.gz"))
    test = pd.read_csv(shared_data_path("starbucks", "test.csv.gz"))
    features = [f"V{i}" for i in range(1, 8)]
    for d in (train, test):
        d["treatment"] = d["Promotion"]
    if max_train is not None and len(train) > max_train:
        train = train.sample(max_train, random_state=seed)
    p = t_learner(train, features, ["purchase"], ["No", "Yes"])(test[features])["purchase"]
    value = 10 * (p[:, 1:] - p[:, :1]) - 0.15
    cost = np.full(value.shape, 0.15)
    treated = (test["Promotion"] == "Yes").to_numpy()
    bought = test["purchase"].to_numpy()

    def nir(promote: np.ndarray) -> tuple[float, float]:
        t, c = promote & treated, promote & ~treated
        n_irr = bought[t].mean() - bought[c].mean() if t.any() and c.any() else 0.0
        return 10 * bought[t].sum() - 0.15 * t.sum() - 10 * bought[c].sum(), n_irr

    rng = np.random.default_rng(seed)
    rows = [
        "Starbucks (test set; NIR and IRR among the users each policy would promote; the task's "
        "formula, README)",
        "",
        "| budget (% promote everyone) | liftlab NIR | liftlab IRR | promote-all to budget NIR | "
        "rank by value NIR |",
        "|---|---|---|---|---|",
    ]
    for share in SHARES:
        budget = share * 0.15 * len(test)
        ours = allocate(value, cost, budget).arm >= 0
        blanket = winner_for_budget(value, cost, budget, 0, rng) >= 0
        ranked = rank_by_value(value, cost, budget) >= 0
        (n_o, i_o), (n_b, _), (n_r, _) = nir(ours), nir(blanket), nir(ranked)
        rows.append(f"| {share:.0%} | {n_o:.1f} | {i_o:.4f} | {n_b:.1f} | {n_r:.1f} |")
    return rows


def open_bandit_section() -> list[str]:
    """Uniform-random policy's CTR estimated from the BTS logs vs its on-policy CTR."""
    rows = [
        "Open Bandit Dataset (small sample): the Random policy's CTR, estimated from the BTS logs, "
        "vs its on-policy CTR in the Random logs (relative error in brackets)",
        "",
        "| campaign | on-policy CTR | IPW | SNIPW | DM | DR | IPW 95% bootstrap interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for campaign in ("all", "men", "women"):
        bts = pd.read_csv(
            shared_data_path("open_bandit", "bts", campaign, f"{campaign}.csv"), index_col=0
        )
        rnd = pd.read_csv(
            shared_data_path("open_bandit", "random", campaign, f"{campaign}.csv"), index_col=0
        )
        n_items = int(max(bts["item_id"].max(), rnd["item_id"].max())) + 1
        action = bts["item_id"].to_numpy()
        reward = bts["click"].to_numpy(dtype=float)
        dist = np.full((len(bts), n_items), 1.0 / n_items)
        item_ctr = np.bincount(action, weights=reward, minlength=n_items) / np.maximum(
            np.bincount(action, minlength=n_items), 1
        )
        q = np.tile(item_ctr, (len(bts), 1))
        fb = feedback(action, reward, bts["propensity_score"].to_numpy(), dist, q)
        truth = rnd["click"].mean()
        cells = [
            f"{v:.5f} ({(v - truth) / truth:+.0%})"
            for v in (estimate(e, fb) for e in ("ipw", "snipw", "dm", "dr"))
        ]
        _, lo, hi = bootstrap_interval("ipw", fb, n_bootstrap=1000, seed=0)
        rows.append(
            f"| {campaign} | {truth:.5f} | " + " | ".join(cells) + f" | [{lo:.5f}, {hi:.5f}] |"
        )
    return rows


def timing_section(n_users: int, n_arms: int = 5) -> list[str]:
    rng = np.random.default_rng(0)
    cost = rng.random((n_users, n_arms), dtype=np.float32) * 9.5 + 0.5
    value = rng.standard_normal((n_users, n_arms), dtype=np.float32) + 0.3 * cost
    budget = 0.2 * float(cost.max(axis=1).sum(dtype=np.float64))
    wall, cpu = time.perf_counter(), time.process_time()
    plan = allocate(value, cost, budget)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return [
        "| users x arms | wall s | CPU s | spend / budget | gap / value |",
        "|---|---|---|---|---|",
        f"| {n_users:,} x {n_arms} (float32) | {wall:.2f} | {cpu:.2f} | "
        f"{plan.spend / budget:.6f} | {plan.gap / plan.value:.1e} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: runs in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--email-cost", type=float, default=0.10, help="Hillstrom, $ per e-mail")
    parser.add_argument("--margin", type=float, default=0.30, help="Hillstrom margin on spend")
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="cap on the UpliftModel's epochs (default: the model's own; --quick uses 3)",
    )
    args = parser.parse_args(argv)
    n_users, n_exact, n_timing = (4000, 150, 1_000_000) if args.quick else (50_000, 400, 10_000_000)
    out = [f"## Simulated shop ({n_users:,} users, 5 incentives; milp on {n_exact} users)", ""]
    max_epochs = 3 if args.quick else args.max_epochs
    out += shop_section(n_users, n_exact, args.seed, max_epochs)
    for title, section in (
        ("Hillstrom", lambda: hillstrom_section(args.email_cost, args.margin, args.seed)),
        ("Starbucks", lambda: starbucks_section(args.seed, 5_000 if args.quick else None)),
        ("Open Bandit", open_bandit_section),
    ):
        try:
            out += ["", f"## {title}", "", *section()]
        except FileNotFoundError as exc:  # shared data absent
            out += ["", f"## {title}", "", f"skipped: {exc}"]
    out += ["", "## Allocation time", "", *timing_section(n_timing)]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
