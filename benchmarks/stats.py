"""Benchmark of the statistics engine (issue 4).

Part (a): operating characteristics of continuous monitoring. A/B tests on a conversion metric
(baseline 10 %) are simulated with exact Binomial batches, vectorized over simulations, and read
after every batch. Compared, in the same run:

- fixed horizon: one read at the planned size for 80 % power (the peer everyone uses);
- fixed horizon peeked: the same t/z test read after every batch, stopping at the first p < alpha;
- liftlab sequential: the normal-mixture confidence sequence with N* tuned to the planned total
  size (``sequential_sample_size``), read after every batch up to that size;
- gbstats-style sequential: the same test with gbstats' default tuning N* = 5000;
- group sequential: Lan–DeMets O'Brien–Fleming-type boundaries, 5 equally spaced looks up to
  the fixed-horizon size.

It prints, per method and true effect, the rejection rate (type-I error at effect 0, power
otherwise) and the average number of users at stopping, with the ratio to the fixed horizon.
Part (b) (refresh time in PostgreSQL, SQL pushdown vs pandas) is added by the analysis owner.

Run: ``.venv/bin/python benchmarks/stats.py`` (``--quick`` for a few-second smoke run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from experiments.stats import (
    DEFAULT_TUNING_N,
    ProportionStatistic,
    fixed_sample_size,
    lan_demets_boundaries,
    mixture_p_value,
    sequential_sample_size,
)

ALPHA = 0.05
BASELINE = 0.10
RELATIVE_MDE = 0.05
EFFECT_MULTIPLES = (0.0, 0.5, 1.0, 1.5)


@dataclass(frozen=True)
class Outcome:
    method: str
    tuning: str
    effect_multiple: float
    reject_rate: float
    mean_users: float


@dataclass(frozen=True)
class Paths:
    """Per-look z and sequential inputs for one true effect (sims x looks)."""

    n_per_arm: np.ndarray
    effect: np.ndarray
    se: np.ndarray


def simulate_paths(
    lift: float, sims: int, looks: int, batch: int, rng: np.random.Generator
) -> Paths:
    """Cumulative statistics after each batch; batch sums are exact Binomial draws."""
    control = rng.binomial(batch, BASELINE, size=(sims, looks)).cumsum(axis=1)
    treatment = rng.binomial(batch, BASELINE + lift, size=(sims, looks)).cumsum(axis=1)
    n = batch * np.arange(1, looks + 1, dtype=float)
    a = ProportionStatistic(n=n, sum=control.astype(float))
    b = ProportionStatistic(n=n, sum=treatment.astype(float))
    se = np.sqrt(a.variance / a.n + b.variance / b.n)
    return Paths(n_per_arm=n, effect=b.mean - a.mean, se=np.where(se > 0, se, np.inf))


def _stop(reject: np.ndarray, n_per_arm: np.ndarray, last: int) -> tuple[float, float]:
    """Rejection rate and mean total users when stopping at the first rejecting look
    (or at look ``last`` without rejection)."""
    reject = reject[:, : last + 1]
    any_reject = reject.any(axis=1)
    first = np.where(any_reject, reject.argmax(axis=1), last)
    return float(any_reject.mean()), float(2 * n_per_arm[first].mean())


def fixed_horizon(paths: Paths, fixed_look: int) -> tuple[float, float]:
    z = paths.effect[:, fixed_look] / paths.se[:, fixed_look]
    rejected = 2 * sps.norm.sf(np.abs(z)) < ALPHA
    return float(rejected.mean()), float(2 * paths.n_per_arm[fixed_look])


def fixed_horizon_peeked(paths: Paths, fixed_look: int) -> tuple[float, float]:
    p = 2 * sps.norm.sf(np.abs(paths.effect / paths.se))
    return _stop(p < ALPHA, paths.n_per_arm, fixed_look)


def sequential(paths: Paths, tuning_n: float, last: int) -> tuple[float, float]:
    n_total = 2 * paths.n_per_arm
    p = mixture_p_value(paths.effect, paths.se, n_total, tuning_n, ALPHA)
    return _stop(p < ALPHA, paths.n_per_arm, last)


def group_sequential(paths: Paths, fixed_look: int, k: int = 5) -> tuple[float, float]:
    look_idx = np.unique(np.round(np.linspace(0, fixed_look + 1, k + 1)[1:]).astype(int) - 1)
    fractions = paths.n_per_arm[look_idx] / paths.n_per_arm[look_idx[-1]]
    design = lan_demets_boundaries(fractions, alpha=ALPHA, spending="obrien_fleming", sides=2)
    reject = np.zeros_like(paths.effect, dtype=bool)
    z = np.abs(paths.effect[:, look_idx] / paths.se[:, look_idx])
    reject[:, look_idx] = z >= np.asarray(design.boundaries)
    return _stop(reject, paths.n_per_arm, fixed_look)


def section_a_monitoring(sims: int, looks: int, seed: int = 2024) -> list[Outcome]:
    """Part (a): type-I error, power and mean stopping size of each monitoring scheme."""
    mde = BASELINE * RELATIVE_MDE
    variance = BASELINE * (1 - BASELINE)
    n_fixed = fixed_sample_size(mde, variance, alpha=ALPHA, power=0.8)
    n_seq = sequential_sample_size(mde, variance, alpha=ALPHA, power=0.8)
    batch = int(np.ceil(n_seq / looks))
    fixed_look = int(np.ceil(n_fixed / batch)) - 1
    ours_tuning = 2.0 * n_seq
    methods: list[tuple[str, str, Callable[[Paths], tuple[float, float]]]] = [
        ("fixed horizon", "-", lambda p: fixed_horizon(p, fixed_look)),
        ("fixed horizon, peeked every batch", "-", lambda p: fixed_horizon_peeked(p, fixed_look)),
        ("group sequential OBF (5 looks)", "-", lambda p: group_sequential(p, fixed_look)),
        (
            "liftlab sequential",
            f"N*={ours_tuning:,.0f}",
            lambda p: sequential(p, ours_tuning, looks - 1),
        ),
        (
            "gbstats-style sequential",
            f"N*={DEFAULT_TUNING_N:,.0f}",
            lambda p: sequential(p, DEFAULT_TUNING_N, looks - 1),
        ),
    ]
    rng = np.random.default_rng(seed)
    outcomes = []
    for multiple in EFFECT_MULTIPLES:
        paths = simulate_paths(multiple * mde, sims, looks, batch, rng)
        for name, tuning, run in methods:
            rate, users = run(paths)
            outcomes.append(Outcome(name, tuning, multiple, rate, users))
    print(
        f"\nPart (a): baseline {BASELINE:.0%}, MDE {RELATIVE_MDE:.0%} relative "
        f"({mde:.4f} absolute), alpha {ALPHA}, {sims} simulations, a look every {batch:,} "
        f"users per arm; fixed-horizon size {n_fixed:,} per arm, sequential plan "
        f"{batch * looks:,} per arm (N* = planned total)."
    )
    return outcomes


def format_section_a(outcomes: list[Outcome], sims: int) -> str:
    fixed = {o.effect_multiple: o.mean_users for o in outcomes if o.method == "fixed horizon"}
    mc = 3 * np.sqrt(ALPHA * (1 - ALPHA) / sims)
    lines = [
        "| method | tuning | true lift (x MDE) | reject rate | mean users at stop "
        "| users vs fixed horizon |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.method} | {o.tuning} | {o.effect_multiple:g} | {o.reject_rate:.3f} "
            f"| {o.mean_users:,.0f} | {o.mean_users / fixed[o.effect_multiple]:.2f}x |"
        )
    lines.append(
        f"\nReject rate at lift 0 is the type-I error (alpha = {ALPHA}; Monte-Carlo 3 sd = "
        f"{mc:.3f}); otherwise it is the power."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (seconds)")
    parser.add_argument(
        "--with-refresh",
        action="store_true",
        help="also part (b): refresh time in PostgreSQL, SQL pushdown vs pandas (benchmarks/refresh.py)",
    )
    args = parser.parse_args()
    sims, looks = (300, 40) if args.quick else (4000, 100)
    start = time.perf_counter()
    outcomes = section_a_monitoring(sims=sims, looks=looks)
    print(format_section_a(outcomes, sims))
    print(f"\n(part a took {time.perf_counter() - start:.1f} s)")
    if args.with_refresh:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import refresh

        users, events = (20_000, 200_000) if args.quick else (1_000_000, 10_000_000)
        start = time.perf_counter()
        print("\nPart (b): refresh of one experiment in PostgreSQL\n")
        print(refresh.benchmark(users, events, 1, list(refresh.METHODS), 2026))
        print(f"\n(part b took {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
