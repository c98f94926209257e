"""The budget's lambda by distributed bisection over the users' hull segments (Spark job).

Layer: ``experiments.jobs``. The single-process solver (``experiments.strategy.knapsack``)
defines lambda exactly: 0 if the whole hull's spend fits the exploit budget B, else the smallest
segment slope v whose spend ``S(v) = sum dc [slope > v]`` fits, every comparison exact
(``experiments.strategy.exact``). This module finds the same number without gathering the
segments: the driver keeps a bracket ``(lo, hi]`` with ``S(hi) <= B < S(lo)``; each pass over
the executors returns, for several candidate lambdas at once (sample slopes around the estimated
crossing and spread over the bracket), the count and float spend of the segments between them
plus a strided sample of each gap; the exact comparison picks the gap that holds lambda, which
becomes the next bracket. When it holds at most ``EXACT_FINISH`` segments they are collected and
the answer is read off with exact integer sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.jobs.spark_scoring import hull_columns
from experiments.strategy import buckets as bk
from experiments.strategy.exact import exact_sum, fits, float_units, to_float

if TYPE_CHECKING:
    import pandas as pd

EXACT_FINISH = 32_768  # segments collected on the driver to finish exactly
PIVOTS = 31  # candidate lambdas per pass
SAMPLE_PER_GAP = 2048  # sample slopes per gap between candidates (all partitions together)


def segments(pdf: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every hull segment of the partition's exploit users: slopes and cost increments."""
    s_cols, d_cols, _ = hull_columns(k)
    s = pdf[s_cols].to_numpy(np.float64).ravel()
    d = pdf[d_cols].to_numpy(np.float64).ravel()
    keep = ~np.isnan(s)
    return s[keep], d[keep]


def bracket_stats(
    pdf: pd.DataFrame,
    k: int,
    edges: Sequence[float],
    quota: int,
    exact_at: Sequence[float] = (),
    collect: bool = False,
    first: bool = False,
) -> dict[str, Any]:
    """One partition's counts, float spends and samples between ``edges`` (descending).

    Gap g holds the segments with ``asc[g-1] < slope <= asc[g]`` (``asc`` = edges ascending;
    gap 0 is below the lowest edge, the last gap above the highest). ``exact_at``: exact spend
    units above each of those slopes; ``collect``: the segments inside the outer edges;
    ``first``: also the explore bucket's exact spend (it is charged to the budget first).
    """
    s, d = segments(pdf, k)
    asc = np.asarray(edges, dtype=np.float64)[::-1]
    gap = np.searchsorted(asc, s, side="left")
    n_gaps = asc.size + 1
    counts = np.bincount(gap, minlength=n_gaps)
    out: dict[str, Any] = {
        "counts": counts.tolist(),
        "sums": np.bincount(gap, weights=d, minlength=n_gaps).tolist(),
        "exact": [exact_sum(d[s > p]) for p in exact_at],
        "samples": {},
    }
    order = np.argsort(gap, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for g in range(1, n_gaps - 1):
        size = int(counts[g])
        if size:
            members = order[bounds[g] : bounds[g] + size]
            stride = max(1, math.ceil(size / quota))
            pick = members[::stride]
            out["samples"][str(g)] = [s[pick].tolist(), (d[pick] * stride).tolist()]
    if collect:
        inside = (gap > 0) & (gap < n_gaps - 1)
        out["tail"] = [s[inside].tolist(), d[inside].tolist()]
    if first:
        code = pdf["code"].to_numpy()
        draw = pdf["explore_arm"].to_numpy()
        rows = np.flatnonzero((code == bk.EXPLORE) & (draw >= 0))
        cost = pdf[[f"c{j}" for j in range(k)]].to_numpy(np.float64)
        out["fixed_units"] = exact_sum(cost[rows, draw[rows]])
        out["users"] = len(pdf)
        out["exploit_users"] = int((code == bk.EXPLOIT).sum())
    return out


@dataclass
class PassResult:
    """Partition results of :func:`bracket_stats` added up on the driver."""

    counts: np.ndarray
    sums: np.ndarray
    exact: list[int]
    samples: dict[int, tuple[np.ndarray, np.ndarray]]
    tail: tuple[np.ndarray, np.ndarray] | None = None
    extra: dict[str, int] = field(default_factory=dict)


def merge(parts: list[dict[str, Any]], n_gaps: int, n_exact: int) -> PassResult:
    counts = np.zeros(n_gaps, dtype=np.int64)
    sums = np.zeros(n_gaps)
    exact = [0] * n_exact
    samples: dict[int, list[list[float]]] = {}
    tail: list[list[float]] = [[], []]
    extra: dict[str, int] = {}
    for part in parts:
        counts += np.asarray(part["counts"], dtype=np.int64)
        sums += np.asarray(part["sums"])
        exact = [a + b for a, b in zip(exact, part["exact"], strict=True)]
        for g, (gs, gw) in part["samples"].items():
            both = samples.setdefault(int(g), [[], []])
            both[0] += gs
            both[1] += gw
        if "tail" in part:
            tail[0] += part["tail"][0]
            tail[1] += part["tail"][1]
        for key in ("fixed_units", "users", "exploit_users"):
            if key in part:
                extra[key] = extra.get(key, 0) + part[key]
    return PassResult(
        counts,
        sums,
        exact,
        {g: (np.asarray(a), np.asarray(b)) for g, (a, b) in samples.items()},
        (np.asarray(tail[0]), np.asarray(tail[1])),
        extra,
    )


Runner = Callable[..., PassResult]  # run(edges, exact_at=(), collect=False) -> PassResult


def choose_pivots(sample: tuple[np.ndarray, np.ndarray], budget_left: float, lo, hi) -> list:
    """Candidate lambdas strictly inside ``(lo, hi)``, descending: half around the sample's
    estimate of the crossing (weighted by cost), half spread over the whole sample."""
    s, w = sample
    keep = (s > lo) & (s < hi)
    s, w = s[keep], w[keep]
    if s.size == 0:
        return []
    order = np.argsort(-s, kind="stable")
    ranked = s[order]
    j = int(np.searchsorted(np.cumsum(w[order]), budget_left))
    half = PIVOTS // 2
    width = 2.0 * math.sqrt(j + 1) + 8.0
    ranks = np.concatenate(
        [np.linspace(0, ranked.size - 1, PIVOTS - half), j + np.linspace(-width, width, half)]
    )
    picks = np.clip(np.round(ranks), 0, ranked.size - 1).astype(np.int64)
    return [float(v) for v in np.unique(ranked[picks])[::-1]]


def finish_tail(above_units: int, tail: tuple[np.ndarray, np.ndarray], budget: float):  # type: ignore[no-untyped-def]
    """The smallest tail slope whose exact spend fits, and that spend's units.

    ``above_units``: exact spend of the segments above the tail; the tail's largest slope fits.
    """
    limit = float_units(budget)
    s, d = tail
    order = np.argsort(-s, kind="stable")
    s, d = s[order], d[order]
    answer, spend = None, above_units
    i = 0
    while i < s.size:
        v = s[i]
        j = int(np.searchsorted(-s, -v, side="right"))
        if spend > limit:  # S(v) = spend of the segments strictly above v
            break
        answer, answer_spend = float(v), spend
        spend += sum(float_units(x) for x in d[i:j].tolist())
        i = j
    if answer is None:
        raise RuntimeError("lambda bracket lost: the largest tail slope does not fit")
    return answer, answer_spend


def find_lambda(run: Runner, first: PassResult, budget: float) -> tuple[float, float]:
    """Lambda for the exploit budget, and (in float) the hull spend at it."""
    total = int(first.counts.sum())
    spend_all = float(first.sums.sum())
    if total == 0:
        return 0.0, 0.0
    if fits(spend_all, spend_all, total, budget, lambda: run([np.inf, 0.0], (0.0,)).exact[0]):
        return 0.0, spend_all
    lo, hi = 0.0, np.inf
    inside, sample, above = total, first.samples.get(1, (np.empty(0), np.empty(0))), 0.0
    while True:
        if inside <= EXACT_FINISH:
            exact_at = (hi,) if np.isfinite(hi) else ()
            result = run([hi, lo], exact_at, collect=True)
            lam, units = finish_tail(result.exact[0] if exact_at else 0, result.tail, budget)
            return lam, to_float(units)
        pivots = choose_pivots(sample, budget - above, lo, hi)
        if not pivots:  # the sample missed the bracket's inside: take its slopes directly
            result = run([hi, lo], (), collect=True)
            values = np.unique(result.tail[0])
            values = values[(values > lo) & (values < hi)]
            if values.size == 0:
                return hi, above  # no slope between: hi is the smallest that fits
            picks = np.linspace(0, values.size - 1, min(PIVOTS, values.size)).round()
            pivots = [float(v) for v in np.unique(values[picks.astype(np.int64)])[::-1]]
        edges = [hi, *pivots, lo]
        result = run(edges)
        n_edges = len(edges)
        fitted = 0
        for i, pivot in enumerate(pivots, start=1):
            g = n_edges - 1 - i  # the pivot's index among the ascending edges
            spend = float(result.sums[g + 1 :].sum())
            if not fits(
                spend, spend, total, budget, lambda p=pivot, e=edges: run(e, (p,)).exact[0]
            ):
                break
            fitted = i
        # the new bracket is the gap between the last pivot that fits and the first that doesn't
        hi_index, lo_index = fitted, fitted + 1  # positions in the descending edges
        hi, lo = edges[hi_index], edges[lo_index]
        gap = n_edges - 1 - hi_index  # gap (asc[gap-1], asc[gap]] = (lo, hi]
        inside = int(result.counts[gap])
        sample = result.samples.get(gap, (np.empty(0), np.empty(0)))
        above = float(result.sums[gap + 1 :].sum())
