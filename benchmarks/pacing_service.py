"""Daily pacing through the service: simulated days of new units decided by ``POST /decide``'s
code, a paced strategy against the same strategy unpaced.

A small uplift model is trained on a simulated randomized experiment (none / coupon_5 /
discount_20). Two strategies are created from it with the same settings, and each gets the same
batch run over 2,000 users. Then both get the same budget for the units that arrive afterwards:
a share of what the plan's lambda would spend on all of them. Those units (another simulated
shop) arrive over the budget period, and weekends bring 1.6 times a weekday's traffic. Each is
decided online under both strategies, in arrival order (``strategies.decide``, the online model,
SQLite, one transaction per day):

- **unpaced**: the plan's lambda and the whole budget as the cap (first come, first served);
- **paced**: ``liftlab strategy pace`` with an even schedule and the flat forecast
  ``arrivals / days`` (``experiments.services.strategy_pacing``).

Each issued incentive is scored with the shop's true incremental profit, expected margin of the
arm minus that of no incentive (the simulator's truth, which neither strategy sees).

Run: ``.venv/bin/python benchmarks/pacing_service.py`` (about two minutes; ``--days 14
--per-day 250 --share 0.4``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.support import footer, register_model, shop_model  # noqa: E402

ARMS = ["coupon_5", "discount_20"]
STRATEGIES = {"unpaced": 0.05, "paced": 0.05, "paced-explore-2": 0.02}  # key: explore share
REPORT = ROOT / "docs" / "benchmarks" / "pacing_service.md"
READING = """How to read it: pacing spreads the online budget over the period, with incentives on every
day and far fewer drawn incentives refused by a cap. The day's lambda also picks the units whose
value is highest for their cost, so the exploit bucket earns more per unit of its spend. The
exploration bucket is a share of units, not of money, so it spends at the same rate every day; a
paced strategy, which spends on every day of the period, pays for exploration on all of them and
leaves less for the exploit bucket. With a tight budget, lower the exploration share of a paced
strategy: the last row is the same strategy with 2 % instead of 5 %."""


def _strategies(url: str, folder: Path, days: int, batch_budget: float) -> dict[str, object]:
    """The strategies after the same batch run, scored by a small model of the simulated shop
    (saved to ``folder``); returns the plan and its spend curve."""
    from experiments.db import make_engine, make_session_factory
    from experiments.db.migrate import upgrade
    from experiments.jobs.strategy_run import run_strategy
    from experiments.services import catalog, demo_data, strategies
    from experiments.simulation import simulate_shop

    upgrade(url)
    features, architecture = shop_model(folder, ARMS, n_estimators=2)
    population = simulate_shop(n_users=2000, seed=7).users
    engine = make_engine(url)
    out: dict[str, object] = {}
    with make_session_factory(engine).begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        run = register_model(session, folder, features, architecture)
        for key, explore in STRATEGIES.items():
            strategies.create_strategy(
                session,
                {
                    "key": key, "approved_incentives": ARMS, "fallback": "coupon_5",
                    "holdout_share": 0.05, "explore_share": explore, "objective": "profit",
                    "budget": batch_budget, "budget_period_days": days, "status": "active",
                    "model_run_id": run.id,
                },
                actor="bench",
            )  # fmt: skip
            plan = run_strategy(session, key, population, actor="bench")
            if key == "unpaced":
                out["plan"] = plan
                out["online"] = strategies.get_strategy(session, key).config["online"]
    engine.dispose()
    return out


def _arrivals(days: int, per_day: int, seed: int):  # type: ignore[no-untyped-def]
    from experiments.simulation import simulate_shop

    traffic = np.array([1.6 if d % 7 in (5, 6) else 1.0 for d in range(days)])
    n = int(per_day * days)
    shop = simulate_shop(n_users=n, seed=12)
    day = np.sort(np.random.default_rng(seed).choice(days, n, p=traffic / traffic.sum()))
    truth = shop.expected_margin[:, shop.arm_index(ARMS)] - shop.expected_margin[:, :1]
    return shop.users.assign(unit_id=[f"new-{i}" for i in range(n)]), day, truth


def _serve(url: str, key: str, users, day: np.ndarray, truth: np.ndarray, start: dt.date):  # type: ignore[no-untyped-def]
    from experiments.db import Incentive, make_engine, make_session_factory
    from experiments.services import strategies, strategy_pacing

    engine = make_engine(url)
    factory = make_session_factory(engine)
    columns = [c for c in users.columns if c != "unit_id"]
    records = users[columns].to_dict("records")
    spend = np.zeros(int(day.max()) + 1)
    profit, refused, seconds = {"exploit": 0.0, "explore": 0.0}, 0, 0.0
    explore_spend = 0.0
    for d in range(len(spend)):
        strategy_pacing.today = lambda d=d: start + dt.timedelta(days=d)  # type: ignore[misc]
        began = time.perf_counter()
        with factory.begin() as session:
            ids = {i.id: i.key for i in session.query(Incentive)}
            for i in np.flatnonzero(day == d):
                row = {k: (v.item() if hasattr(v, "item") else v) for k, v in records[i].items()}
                decision = strategies.decide(session, key, users["unit_id"].iloc[i], row)
                spend[d] += decision.expected_cost
                context = decision.context or {}
                refused += bool(
                    context.get("daily_budget_spent") or context.get("budget_exhausted")
                )
                if decision.incentive_id is not None:
                    gain = float(truth[i, ARMS.index(ids[decision.incentive_id])])
                    profit[decision.bucket] += gain
                    if decision.bucket == "explore":
                        explore_spend += decision.expected_cost
        seconds += time.perf_counter() - began
    engine.dispose()
    return spend, profit, refused, seconds, explore_spend / max(spend.sum(), 1e-12)


def run(days: int, per_day: int, share: float, seed: int, batch_budget: float) -> list[str]:
    from experiments.db import make_engine, make_session_factory
    from experiments.services import strategies, strategy_pacing

    start = dt.datetime.now(dt.UTC).date()  # decisions are logged today: the forecast's history
    with tempfile.TemporaryDirectory() as tmp:
        folder, url = Path(tmp) / "model", f"sqlite:///{tmp}/pacing.db"
        state = _strategies(url, folder, days, batch_budget)
        users, day, truth = _arrivals(days, per_day, seed)
        plan, online = state["plan"], state["online"]
        lam = float(plan["lambda"])  # type: ignore[index]
        curve = online["spend_curve"]  # type: ignore[index]
        at_plan = float(np.interp(lam, curve["lambda"], curve["cost"]))
        mean_cost = float(np.mean(online["mean_cost"]))  # type: ignore[index]
        per_unit = 0.90 * at_plan + 0.05 * mean_cost  # exploit + explore buckets at the plan
        online_budget = share * per_unit * len(users)
        engine = make_engine(url)
        with make_session_factory(engine).begin() as session:
            for key in STRATEGIES:
                row = strategies.get_strategy(session, key)
                change = {"budget": row.planned_spend + online_budget}
                strategies.update_strategy(session, key, change, actor="bench")
                if key != "unpaced":
                    strategy_pacing.set_pacing(
                        session, row, start=start, daily_units=len(users) / days, actor="bench"
                    )
        engine.dispose()
        results = {k: _serve(url, k, users, day, truth, start) for k in STRATEGIES}
    lines = [
        f"Pacing through the service: {len(users):,} new units over {days} days (weekends 1.6x a "
        f"weekday's traffic), online budget {online_budget:,.0f} = {share:.0%} of what the "
        f"plan's lambda ({lam:.3f}) would spend on all of them; true incremental profit of the "
        "issued incentives",
        "",
        "| strategy | spend / budget | last day with spend | days with spend | day spend CV | "
        "units refused by a cap | exploration's share of spend | true profit: exploit bucket | "
        "explore bucket | total | total / unpaced | s per 1,000 decisions |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = sum(results["unpaced"][1].values())
    for key, (spend, profit, refused, seconds, explore_share) in results.items():
        active = np.flatnonzero(spend > 1e-9)
        cv = float(spend.std() / spend.mean()) if spend.mean() > 0 else float("nan")
        total = sum(profit.values())
        last = int(active.max()) + 1 if active.size else 0
        lines.append(
            f"| {key} | {spend.sum() / online_budget:.3f} | {last} | {active.size} | {cv:.2f} | "
            f"{refused:,} | {explore_share:.2f} | {profit['exploit']:,.1f} | "
            f"{profit['explore']:,.1f} | {total:,.1f} | "
            f"{total / base if base else float('nan'):.2f} | {seconds / len(users) * 1000:.1f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=250, help="mean new units per day")
    parser.add_argument("--share", type=float, default=0.4, help="online budget / plan spend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-budget", type=float, default=1500.0, help="the batch run's budget (2,000 users)"
    )
    args = parser.parse_args(argv)
    lines = [
        *run(args.days, args.per_day, args.share, args.seed, args.batch_budget),
        *footer("pacing_service.py", argv),
    ]
    print("\n".join(lines))
    REPORT.write_text(
        "# Daily pacing through the service\n\n" + READING + "\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main()
