"""Multiple-choice knapsack by Lagrangian relaxation: the numerical core of :func:`allocate`.

Layer: ``experiments.strategy`` (pure numpy). Problem, for users i and incentives a::

    max  sum_ia s_ia x_ia   s.t.  sum_ia c_ia x_ia <= B,  sum_a x_ia <= 1,
         sum_i x_ia <= cap_a,  x_ia in {0, 1},  x_ia = 0 where not eligible

(no incentive is the implicit option with value 0 and cost 0). Relaxing the budget with lambda
and the caps with mu_a gives the dual function (Sinha & Zoltners, "The multiple-choice knapsack
problem", Operations Research 27(3), 1979; Lagrangian bounds: Fisher, "The Lagrangian relaxation
method for solving integer programming problems", Management Science 27(1), 1981)::

    L(lambda, mu) = lambda B + sum_a mu_a cap_a + sum_i max(0, max_a (s_ia - lambda c_ia - mu_a))

which bounds the integer optimum from above for every lambda, mu >= 0.

For a fixed mu the user's best arm as a function of lambda walks along the upper concave hull of
its points (c_ia, s_ia) starting at (0, 0); the hull's segment slopes are the breakpoints of the
spend function. The bisection over lambda therefore runs on those breakpoints (a bracket from a
sampled weighted quantile, then medians of the remaining candidates, then a sort of the last few
thousand) and ends on the exact smallest lambda whose spend fits: the
LP-relaxation optimum, with at most one user "split" per tie group. Ties go to the cheaper point
(a segment of slope exactly lambda is not taken). The leftover budget is then filled greedily by
the best value-per-cost upgrades. Caps are handled by coordinate updates of mu_a, then repaired
exactly (the lowest-advantage users over a cap lose the arm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.strategy.capacity import (
    FILL_PASSES,
    FILL_ROUNDS,
    cap_update,
    greedy_fill,
    repair_caps,
)
from experiments.strategy.exact import exact_sum, fits, float_units, to_float

_EXACT_FINISH = 4096  # candidates left when the breakpoint bisection switches to a sort
_CAP_ROUNDS = 12
_DENSE_SHARE = 0.4  # above this share of active users a hull step skips the gathers
_FILL_CHUNK = 4096


@dataclass(frozen=True)
class Hull:
    """Segments of each user's upper hull: per step k, the users ``idx[k]`` that extend it."""

    start_arm: np.ndarray
    idx: list[np.ndarray]
    arm: list[np.ndarray]
    dc: list[np.ndarray]
    slope: list[np.ndarray]


def columns(x: np.ndarray) -> np.ndarray:
    """(n, k) → contiguous (k, n): the hot loops work on one arm's column at a time."""
    return np.ascontiguousarray(x.T)


def build_hull(S: np.ndarray, C: np.ndarray, M: np.ndarray | None) -> Hull:
    """Gift-wrap every user's hull at once; inputs are arm-major ``(k, n)`` (``M`` None = all)."""
    k, n = S.shape
    dt = S.dtype
    start = np.full(n, -1, dtype=np.int32)
    cur_v = np.zeros(n, dtype=dt)
    cur_c = np.zeros(n, dtype=C.dtype)
    free_arms = [a for a in range(k) if (C[a] <= 0).any()]
    for a in free_arms:  # the start vertex: the best free (cost 0) arm with positive value
        better = (C[a] <= 0) & (S[a] > cur_v)
        if M is not None:
            better &= M[a]
        start[better] = a
        cur_v[better] = S[a][better]
    prev: np.ndarray | None = None
    hull = Hull(start, [], [], [], [])
    idx: np.ndarray | None = None  # None = every user (no gather on the first step)
    at_origin = not (start >= 0).any()  # every user starts at (0, 0): skip two subtractions
    all_positive = M is None and bool(C.min() > 0)  # then every arm is a candidate at origin
    keys_buf = np.empty((k, n), dtype=dt)  # reused across steps (fresh pages cost system time)
    ok_buf = np.empty(n, dtype=bool)
    dcb_buf = np.empty(n, dtype=C.dtype)
    i8_buf = np.empty(n, dtype=np.int8)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(k):
            size = n if idx is None else idx.size
            # Branch-free inner loop (random masks make np.where/copyto slow): key = slope where
            # the arm is eligible and dearer than the current vertex, else 0 or NaN, which never
            # beat a positive best (fmax skips NaN).
            keys = keys_buf[:, :size]
            ok = ok_buf[:size]
            dcb = dcb_buf[:size]
            for a in range(k):
                key = keys[a]
                if idx is None:
                    col_s, col_c = S[a], C[a]
                else:
                    col_s = S[a].take(idx, out=key)
                    col_c = C[a].take(idx, out=dcb)
                if at_origin:
                    dc = col_c
                    np.divide(col_s, dc, out=key)
                else:
                    dc = np.subtract(col_c, cur_c, out=dcb)
                    np.subtract(col_s, cur_v, out=key)
                    np.divide(key, dc, out=key)
                if not (at_origin and all_positive):
                    np.greater(dc, 0, out=ok)
                    if M is not None:
                        ok &= M[a] if idx is None else M[a][idx]
                    np.multiply(key, ok, out=key)
            best = np.fmax.reduce(keys, axis=0)
            np.maximum(best, 0, out=best)
            best_j = np.zeros(size, dtype=np.int8)
            n_best = np.zeros(size, dtype=np.int8)
            for a in range(k):
                eq = np.equal(keys[a], best, out=ok)
                n_best += eq
                if a:
                    best_j += np.multiply(eq.view(np.int8), np.int8(a), out=i8_buf[:size])
            at_origin = False
            rows = np.flatnonzero(best > 0)
            if rows.size == 0:
                break
            users = rows if idx is None else idx[rows]
            jj = best_j[rows].astype(np.intp)
            tied = np.flatnonzero(n_best[rows] > 1)
            if tied.size:  # equal slopes: the cheaper point first (the dearer one follows)
                tu, tr = users[tied], rows[tied]
                dv_t = S[:, tu] - cur_v[tr]
                dc_t = C[:, tu] - cur_c[tr]
                sl_t = np.where(dc_t > 0, dv_t / np.where(dc_t > 0, dc_t, 1), -np.inf)
                if M is not None:
                    sl_t[~M[:, tu]] = -np.inf
                cand = sl_t == best[tr][None, :]
                jj[tied] = np.where(cand, dc_t, np.inf).argmin(axis=0)
            flat = jj * n + users
            new_v = S.take(flat)  # S, C are contiguous (k, n): flat index = arm * n + user
            new_c = C.take(flat)
            seg_slope = best[rows] if prev is None else np.minimum(best[rows], prev[rows])
            hull.idx.append(users)
            hull.arm.append(jj.astype(np.int32))
            hull.dc.append(new_c - cur_c[rows])
            hull.slope.append(seg_slope)
            if users.size > _DENSE_SHARE * n:  # next step on full-length arrays: no gathers
                idx = None
                cur_v = np.zeros(n, dtype=dt)
                cur_c = np.full(n, np.inf, dtype=C.dtype)  # users without a vertex: no candidate
                prev = np.full(n, np.inf, dtype=dt)
                cur_v[users], cur_c[users], prev[users] = new_v, new_c, seg_slope
            else:
                idx = users
                cur_v, cur_c = new_v, new_c
                prev = seg_slope  # slopes non-increasing per user (guards against rounding)
    return hull


def _spend_above(slopes: list[np.ndarray], dcs: list[np.ndarray], pivot: float) -> float:
    return sum(
        float(d.sum(where=s > pivot, dtype=np.float64)) for s, d in zip(slopes, dcs, strict=False)
    )


def spend_fits(slopes: list[np.ndarray], dcs: list[np.ndarray], pivot: float, budget) -> bool:
    """Exactly ``sum dc [slope > pivot] <= budget`` (``dc > 0``), whatever the summation order."""
    spend = _spend_above(slopes, dcs, pivot)
    n = sum(s.size for s in slopes)
    return fits(spend, spend, n, budget, lambda: _exact_above(slopes, dcs, pivot))


def lambda_star(hull: Hull, budget: float) -> float:
    """Smallest lambda >= 0 whose hull-prefix spend ``sum dc [slope > lambda]`` fits the budget.

    Exactly: 0 if the spend at 0 fits, else the smallest segment slope whose spend fits, with the
    spends compared exactly (:mod:`experiments.strategy.exact`); a Spark job splitting the users
    into partitions finds the same lambda. The fast search below is verified and, should float
    rounding have misled it, replaced by an exact bisection.
    """
    if not hull.slope or spend_fits(hull.slope, hull.dc, 0.0, budget):
        return 0.0
    slopes, dcs = hull.slope, hull.dc
    guess, spend_guess, below, spend_below = _lambda_guess(slopes, dcs, budget)
    if below is None:  # the next smaller slope was not among the last candidates
        below = max(float(s.max(where=s < guess, initial=-np.inf)) for s in slopes)
        spend_below = _spend_above(slopes, dcs, below) if below > -np.inf else None
    n = sum(s.size for s in slopes)

    def fits_at(pivot: float, spend: float) -> bool:  # the float spend certifies or defers
        return fits(spend, spend, n, budget, lambda: _exact_above(slopes, dcs, pivot))

    if (
        guess > 0
        and fits_at(guess, spend_guess)
        and (spend_below is None or not fits_at(below, spend_below))
    ):
        return guess
    return _exact_bisection(slopes, dcs, budget)


def _exact_above(slopes: list[np.ndarray], dcs: list[np.ndarray], pivot: float) -> int:
    return sum(exact_sum(d[s > pivot]) for s, d in zip(slopes, dcs, strict=True))


def _exact_bisection(slopes: list[np.ndarray], dcs: list[np.ndarray], budget: float) -> float:
    values = np.unique(np.concatenate(slopes))  # ascending; the largest always fits (spend 0)
    lo, hi = -1, values.size - 1  # values[hi] fits; values[lo] does not (or lo = -1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if spend_fits(slopes, dcs, float(values[mid]), budget):
            hi = mid
        else:
            lo = mid
    return float(values[hi])


def _lambda_guess(
    slopes: list[np.ndarray], dcs: list[np.ndarray], budget: float
) -> tuple[float, float, float | None, float | None]:
    """Breakpoint bisection in float arithmetic (fast; :func:`lambda_star` verifies it).

    Returns the guess, its float spend, and the next smaller slope with its float spend (None
    when it is not among the last candidates). The spends are float sums of the same terms in
    another order, so the rounding bound of :func:`experiments.strategy.exact.fits` holds.
    """
    fixed = 0.0  # spend of the segments above the bracket (always taken)
    total = sum(s.size for s in slopes)
    if total > 16 * _EXACT_FINISH:
        # Bracket lambda* from a strided sample (weighted quantile), then verify both ends:
        # one pass leaves only the segments between the two pivots.
        step = max(1, total // 65536)
        ss = np.concatenate([s[::step] for s in slopes])
        sd = np.concatenate([d[::step] for d in dcs]).astype(np.float64) * step
        order = np.argsort(-ss, kind="stable")
        j = int(np.searchsorted(np.cumsum(sd[order]), budget))
        width = int(4 * np.sqrt(j + 1)) + 64
        hi = float(ss[order[max(j - width, 0)]])
        lo = float(ss[order[min(j + width, ss.size - 1)]])
        spend_hi = _spend_above(slopes, dcs, hi)
        if lo < hi and spend_hi <= budget < _spend_above(slopes, dcs, lo):
            keep = [(s > lo) & (s <= hi) for s in slopes]
            slopes = [s[m] for s, m in zip(slopes, keep, strict=False)]
            dcs = [d[m] for d, m in zip(dcs, keep, strict=False)]
            fixed = spend_hi
    flat_s = np.concatenate(slopes)
    flat_d = np.concatenate(dcs)
    while flat_s.size > _EXACT_FINISH:
        pivot = np.median(flat_s[:: max(1, flat_s.size // 1024)])
        above = flat_s > pivot
        spend = fixed + float(flat_d.sum(where=above, dtype=np.float64))
        if spend <= budget:
            keep_m = ~above
            fixed = spend
        else:
            keep_m = above
        if keep_m.all():  # no progress (many equal slopes): finish exactly
            break
        flat_s, flat_d = flat_s[keep_m], flat_d[keep_m]
    order = np.argsort(-flat_s, kind="stable")
    sorted_s = flat_s[order]
    cum = fixed + np.cumsum(flat_d[order], dtype=np.float64)
    over = np.flatnonzero(cum > budget)
    if over.size == 0:  # rounding: everything left fits
        guess = float(sorted_s[-1]) if sorted_s.size else 0.0
        return guess, fixed + float(flat_d.sum(where=flat_s > guess, dtype=np.float64)), None, None
    j = int(over[0])
    guess = float(sorted_s[j])
    first = int(np.searchsorted(-sorted_s, -guess, side="left"))  # first of the guess's ties
    spend_guess = float(cum[first - 1]) if first else fixed
    later = int(np.searchsorted(-sorted_s, -guess, side="right"))
    if later == sorted_s.size:
        return guess, spend_guess, None, None
    return guess, spend_guess, float(sorted_s[later]), float(cum[later - 1])


def choose(hull: Hull, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Each user's hull vertex at lambda (segments of slope > lambda taken), and their count."""
    arm = hull.start_arm.copy()
    taken_count = np.zeros(arm.size, dtype=np.int32)
    for users, a, slope in zip(hull.idx, hull.arm, hull.slope, strict=True):
        taken = slope > lam
        arm[users[taken]] = a[taken]
        taken_count[users[taken]] += 1
    return arm, taken_count


def fill_along_hull(hull: Hull, arm, taken_count, budget_left: float) -> np.ndarray:
    """Greedy fill without caps: each user's next hull segment is its best upgrade per unit cost."""
    for _ in range(FILL_PASSES):
        parts = []
        for k, (users, a, dc, slope) in enumerate(
            zip(hull.idx, hull.arm, hull.dc, hull.slope, strict=True)
        ):
            sel = np.flatnonzero((dc <= budget_left) & (slope > 0))  # few: the leftover is small
            sel = sel[taken_count[users[sel]] == k]  # the user's next segment
            if sel.size:
                parts.append((users[sel], a[sel], dc[sel], slope[sel]))
        if not parts:
            break
        users, target, gain_c, slope = (np.concatenate(x) for x in zip(*parts, strict=True))
        took = 0
        size = _FILL_CHUNK
        while users.size:
            fits = gain_c <= budget_left
            users, target, gain_c, slope = users[fits], target[fits], gain_c[fits], slope[fits]
            if users.size == 0:
                break
            # best slopes first, a growing chunk at a time (no full sort of millions)
            top = min(users.size, size)
            size *= 4
            part = np.argpartition(-slope, top - 1)[:top] if top < users.size else None
            chunk = np.arange(users.size) if part is None else part
            chunk = chunk[np.argsort(-slope[chunk], kind="stable")]
            accepted, budget_left = _accept_prefix(gain_c[chunk], budget_left)
            chosen = users[chunk[accepted]]
            arm[chosen] = target[chunk[accepted]]
            taken_count[chosen] += 1
            took += accepted.size
            rest = np.ones(users.size, dtype=bool)
            rest[chunk] = False
            users, target, gain_c, slope = users[rest], target[rest], gain_c[rest], slope[rest]
        if took == 0:
            break
    return arm


def _accept_prefix(gain_c: np.ndarray, budget_left: float) -> tuple[np.ndarray, float]:
    """Positions taken by a greedy pass over ``gain_c`` in order while the budget lasts."""
    pos = np.arange(gain_c.size)
    taken = []
    for _ in range(FILL_ROUNDS):
        pos = pos[gain_c[pos] <= budget_left]
        if pos.size == 0:
            break
        cum = np.cumsum(gain_c[pos], dtype=np.float64)
        stop = np.flatnonzero(cum > budget_left)
        end = stop[0] if stop.size else pos.size
        taken.append(pos[:end])
        budget_left -= float(cum[end - 1]) if end else 0.0
        pos = pos[end + 1 :]
    return (np.concatenate(taken) if taken else pos[:0]), budget_left


def rule_choice(
    score: np.ndarray, cost: np.ndarray, mask: np.ndarray, lam: float, mu: np.ndarray
) -> np.ndarray:
    """argmax over {none} + eligible arms of ``s - lambda c - mu``; ties to the cheaper arm.

    Row-major ``(n, k)`` inputs (used for the units outside the exploit bucket and in serving).
    """
    n, k = score.shape
    arm = np.full(n, -1, dtype=np.int32)
    best = np.zeros(n)
    best_c = np.zeros(n)
    for a in range(k):
        c = cost[:, a].astype(np.float64)
        r = score[:, a].astype(np.float64) - lam * c - mu[a]
        better = mask[:, a] & ((r > best) | ((r == best) & (best > 0) & (c < best_c)))
        np.copyto(best, r, where=better)
        np.copyto(best_c, c, where=better)
        arm[better] = a
    return arm


def dual_bound(S, C, M, lam: float, mu: np.ndarray, budget: float, caps) -> float:
    """L(lambda, mu) (module doc), an upper bound on the integer optimum; ``(k, n)`` input.

    float64 input is evaluated in float64. float32 input is evaluated in float32 and the bound
    is raised by the largest possible rounding error, ``3.1 u n (max|s| + lambda max c + max mu)``
    with ``u = 2**-24`` (three roundings per term; Higham, *Accuracy and Stability of Numerical
    Algorithms*, 2nd ed., section 2.2), so it stays an upper bound.
    """
    wide = S.dtype == np.float64
    best = np.zeros(S.shape[1], dtype=np.float64 if wide else S.dtype)
    r = np.empty_like(best)
    for a in range(S.shape[0]):
        np.multiply(C[a], S.dtype.type(lam), out=r)
        np.subtract(S[a], r, out=r)
        if mu[a]:
            r -= mu[a]
        if M is not None:
            r *= M[a]  # ineligible -> 0 (never above the no-incentive option)
        np.maximum(best, r, out=best)
    bound = lam * budget + float(best.sum(dtype=np.float64))
    if not wide:
        scale = max(float(S.max()), -float(S.min())) + lam * float(C.max()) + float(mu.max())
        bound += 3.1 * 2.0**-24 * S.shape[1] * scale
    if caps is not None:
        bound += float(np.sum(mu[mu > 0] * caps[mu > 0]))
    return bound


def _fit_budget(S, C, arm, budget: float, units: int | None = None):
    """Guard against float rounding: drop the least efficient users until the spend fits.

    The spend is kept exactly (``units`` of :mod:`experiments.strategy.exact`, computed when not
    given), so the comparisons and the budget left for the fill are the same however the users
    are split. Returns the arms, the spend's units and whether users were dropped.
    """
    rows = np.flatnonzero(arm >= 0)
    if units is None:
        units = exact_sum(C[arm[rows], rows])
    limit = float_units(budget)
    dropped = False
    while units > limit and rows.size:
        chosen = C[arm[rows], rows]
        eff = S[arm[rows], rows] / np.maximum(chosen, 1e-300)
        at = int(np.argmin(eff))
        units -= float_units(chosen[at])
        arm[rows[at]] = -1
        dropped = True
        rows = np.flatnonzero(arm >= 0)
    return arm, units, dropped


def _changed_units(C, before: np.ndarray, after: np.ndarray) -> int:
    """Exact change of spend from arms ``before`` to ``after`` (few users change in a fill)."""
    users = np.flatnonzero(before != after)
    new, old = users[after[users] >= 0], users[before[users] >= 0]
    return exact_sum(C[after[new], new]) - exact_sum(C[before[old], old])


@dataclass(frozen=True)
class Solution:
    arm: np.ndarray
    lam: float
    mu: np.ndarray
    dual_bound: float
    spend_units: int = 0  # the exact spend of ``arm`` (:mod:`experiments.strategy.exact`)


def solve(
    score: np.ndarray, cost: np.ndarray, mask: np.ndarray, budget: float, caps: np.ndarray | None
) -> Solution:
    """Primal assignment (fits budget and caps), the multipliers and the dual bound."""
    k = score.shape[1]
    if score.shape[0] == 0:  # everyone is in the holdout or explore bucket
        return Solution(arm=np.empty(0, dtype=np.int32), lam=0.0, mu=np.zeros(k), dual_bound=0.0)
    S, C = columns(score), columns(cost)
    M = None if mask.all() else columns(mask)
    if M is not None:  # NaN is allowed where not eligible: make it inert
        S[~M] = 0
        C[~M] = 0
    mu = np.zeros(k)
    cap_arr = np.full(k, np.inf) if caps is None else np.asarray(caps, dtype=np.float64)
    capped = bool(np.isfinite(cap_arr).any())
    for _ in range(_CAP_ROUNDS if capped else 1):
        hull = build_hull(S - mu.astype(S.dtype)[:, None] if capped else S, C, M)
        lam = lambda_star(hull, budget)
        arm, taken_count = choose(hull, lam)
        if not capped:
            break
        counts = np.bincount(arm[arm >= 0], minlength=k)
        new_mu = cap_update(S, C, M, lam, mu, cap_arr)
        if np.all(counts <= cap_arr) and np.allclose(new_mu, mu):
            break
        mu = new_mu
    if capped:
        arm = repair_caps(S, C, arm, lam, cap_arr)
    arm, units, dropped = _fit_budget(S, C, arm, budget)
    spend = to_float(units)
    before = arm.copy()
    if capped or dropped:
        cap_left = np.where(np.isfinite(cap_arr), cap_arr, 2**62).astype(np.int64)
        cap_left = cap_left - np.bincount(arm[arm >= 0], minlength=k)
        arm = greedy_fill(S, C, M, arm, budget - spend, cap_left)
    else:
        arm = fill_along_hull(hull, arm, taken_count, budget - spend)
    arm, units, _ = _fit_budget(S, C, arm, budget, units + _changed_units(C, before, arm))
    bound = dual_bound(S, C, M, lam, mu, budget, cap_arr if capped else None)
    return Solution(arm=arm, lam=lam, mu=mu, dual_bound=bound, spend_units=units)
