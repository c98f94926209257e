"""Per-arm caps (inventory) for the knapsack: multiplier updates, exact repair, greedy fill.

Layer: ``experiments.strategy`` (pure numpy). Each capped arm a gets a multiplier mu_a (the
Lagrangian of ``sum_i x_ia <= cap_a``); coordinate updates set mu_a to the (cap_a + 1)-th largest
advantage of arm a over each user's best alternative, so that at most cap_a users prefer it.
Whatever the multipliers, :func:`repair_caps` makes the assignment feasible and
:func:`greedy_fill` spends what is left without breaking budget or caps. Arrays are arm-major
``(k, n)`` as in :mod:`experiments.strategy.knapsack`.
"""

from __future__ import annotations

import numpy as np

FILL_PASSES = 3
FILL_ROUNDS = 64


def _reduced(S, C, M, lam, mu) -> np.ndarray:
    r = S.astype(np.float64) - lam * C.astype(np.float64) - mu[:, None]
    if M is not None:
        r[~M] = -np.inf
    return r


def cap_update(S, C, M, lam, mu, caps) -> np.ndarray:
    """Set each capped arm's mu so that at most cap users prefer it (the other mu fixed)."""
    r = _reduced(S, C, M, lam, mu)
    if r.shape[0] > 1:
        top2 = -np.partition(-r, 1, axis=0)[:2]
    else:
        top2 = np.vstack([r, np.full_like(r, -np.inf)])
    first = r.argmax(axis=0)
    new = mu.copy()
    for a in np.flatnonzero(np.isfinite(caps)):
        alt = np.maximum(np.where(first == a, top2[1], top2[0]), 0.0)
        adv = r[a] + mu[a] - alt
        cap = int(caps[a])
        if np.sum(adv > 0) <= cap:
            new[a] = 0.0
        else:
            new[a] = max(0.0, float(-np.partition(-adv, cap)[cap]))  # (cap+1)-th largest
    return new


def repair_caps(S, C, arm, lam, caps) -> np.ndarray:
    """Users beyond an arm's cap (lowest reduced score first) fall back to no incentive."""
    for a in np.flatnonzero(np.isfinite(caps)):
        users = np.flatnonzero(arm == a)
        excess = users.size - int(caps[a])
        if excess > 0:
            r = S[a][users] - lam * C[a][users]
            arm[users[np.argsort(r, kind="stable")[:excess]]] = -1
    return arm


def greedy_fill(S, C, M, arm, budget_left: float, cap_left: np.ndarray) -> np.ndarray:
    """Greedy fill with caps: best value-per-cost upgrade per user, in order, while both last."""
    k, n = S.shape
    for _ in range(FILL_PASSES):
        chosen = arm >= 0
        a0 = np.where(chosen, arm, 0)
        cur_v = np.where(chosen, S[a0, np.arange(n)], 0.0)
        cur_c = np.where(chosen, C[a0, np.arange(n)], 0.0)
        best = np.full(n, -np.inf)
        best_j = np.full(n, -1, dtype=np.int32)
        with np.errstate(divide="ignore", invalid="ignore"):
            for a in range(k):
                dv = S[a] - cur_v
                dc = C[a] - cur_c
                ok = (dv > 0) & (dc <= budget_left) & (cap_left[a] > 0)
                if M is not None:
                    ok &= M[a]
                eff = np.where(dc > 0, dv / dc, np.inf)
                better = ok & (eff > best)
                np.copyto(best, eff, where=better)
                best_j[better] = a
        users = np.flatnonzero(best_j >= 0)
        if users.size == 0:
            break
        users = users[np.argsort(-best[users], kind="stable")]
        target = best_j[users]
        gain_c = C[target, users].astype(np.float64) - cur_c[users]
        took = 0
        for _ in range(FILL_ROUNDS):
            fit = (gain_c <= budget_left) & (cap_left[target] > 0)
            users, gain_c, target = users[fit], gain_c[fit], target[fit]
            if users.size == 0:
                break
            stop = np.flatnonzero(np.cumsum(gain_c) > budget_left)
            end = stop[0] if stop.size else users.size
            onehot = np.zeros((end, k), dtype=np.int64)  # stop where an arm's cap runs out
            onehot[np.arange(end), target[:end]] = 1
            over = np.flatnonzero((np.cumsum(onehot, axis=0) > cap_left[None, :]).any(axis=1))
            end = min(end, int(over[0])) if over.size else end
            cap_left = cap_left - np.bincount(target[:end], minlength=k)
            arm[users[:end]] = target[:end]
            budget_left -= float(gain_c[:end].sum())
            took += end
            users, gain_c, target = users[end + 1 :], gain_c[end + 1 :], target[end + 1 :]
        if took == 0:
            break
    return arm
