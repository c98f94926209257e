"""Off-policy evaluation: the value of a policy estimated from logged decisions.

Layer: ``experiments.strategy`` (pure numpy). Inputs follow Open Bandit Pipeline's bandit-feedback
layout (Saito et al., "Open Bandit Dataset and Pipeline", NeurIPS 2021 D&B, arXiv:2008.07146):
per logged round the ``action`` taken (0..n_actions-1; for liftlab decisions action 0 = no
incentive, i.e. ``arm + 1``), the ``reward``, the logging propensity ``pscore`` of that action,
the evaluation policy's distribution ``action_dist`` ``(n, n_actions)`` (obp's
``(n, n_actions, 1)`` is accepted) and a reward model ``estimated_rewards`` ``(n, n_actions)``.
With ``w = pi_e(a_i | x_i) / pscore_i`` and ``q(x, a)`` the reward model, the formulas of obp
0.5.7's ``obp/ope/estimators.py`` (classes InverseProbabilityWeighting, SelfNormalized...,
DirectMethod, DoublyRobust, SwitchDoublyRobust, DoublyRobustWithShrinkage; no clipping,
position 0):

- IPW   mean(w r)                                   (Precup et al. 2000; Strehl et al. 2010)
- SNIPW mean(w r) / mean(w)                         (Swaminathan & Joachims 2015)
- DM    mean(sum_a pi_e(a|x) q(x, a))               (Beygelzimer & Langford 2009)
- DR    DM + mean(w (r - q(x, a_i)))                 (Dudik, Langford & Li 2011)
- SNDR  DM + mean(w (r - q(x, a_i))) / mean(w)
- Switch-DR(tau)  DM + mean(1[w <= tau] w (r - q))  (Wang, Agarwal & Dudik 2017, as in obp)
- DRos(lambda)    DM + mean(lambda w / (w^2 + lambda) (r - q))  (Su et al. 2020)

Each ``*_rounds`` function returns the per-round terms whose mean is the estimate; bootstrap
intervals resample those rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ESTIMATORS: tuple[str, ...] = ("ipw", "snipw", "dm", "dr", "sndr", "switch_dr", "dros")


@dataclass(frozen=True)
class BanditFeedback:
    """Validated logged data (obp layout) and the policy to evaluate."""

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    action_dist: np.ndarray
    estimated_rewards: np.ndarray | None = None

    @property
    def weight(self) -> np.ndarray:
        pi_e = self.action_dist[np.arange(self.action.size), self.action]
        return pi_e / self.pscore

    def q_hat(self) -> tuple[np.ndarray, np.ndarray]:
        """(DM term per round, reward model at the logged action)."""
        if self.estimated_rewards is None:
            raise ValueError(
                "estimated_rewards is required for DM/DR estimators: pass a reward model's "
                "predictions (n_rounds, n_actions)"
            )
        q = self.estimated_rewards
        dm = np.average(q, weights=self.action_dist, axis=1)
        return dm, q[np.arange(self.action.size), self.action]


def feedback(
    action: np.ndarray,
    reward: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    estimated_rewards: np.ndarray | None = None,
) -> BanditFeedback:
    """Check shapes and values; errors name the argument and the fix."""
    act = np.asarray(action)
    if act.ndim != 1 or act.size == 0 or act.dtype.kind not in "iu":
        raise ValueError("action must be a non-empty 1-D integer array of logged action indices")
    n = act.size
    r = np.asarray(reward, dtype=np.float64)
    p = np.asarray(pscore, dtype=np.float64)
    dist = np.asarray(action_dist, dtype=np.float64)
    if dist.ndim == 3:  # obp's (n, n_actions, len_list); liftlab has one slot
        if dist.shape[2] != 1:
            raise ValueError("action_dist with positions is not supported; pass position 0 only")
        dist = dist[:, :, 0]
    for name, arr in (("reward", r), ("pscore", p)):
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) like action; got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has NaN or inf; drop or fix those rounds")
    if np.any(p <= 0) or np.any(p > 1):
        raise ValueError("pscore must be logging probabilities in (0, 1]; zero means never logged")
    if dist.ndim != 2 or dist.shape[0] != n:
        raise ValueError(f"action_dist must be (n_rounds, n_actions) with n_rounds={n}")
    if act.min() < 0 or act.max() >= dist.shape[1]:
        raise ValueError(
            f"action holds indices outside 0..{dist.shape[1] - 1} (unknown arm); "
            "map arms to action_dist's columns (liftlab: action = arm + 1, 0 = none)"
        )
    if np.any(dist < 0) or not np.allclose(dist.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("action_dist rows must be probability distributions summing to 1")
    q = None
    if estimated_rewards is not None:
        q = np.asarray(estimated_rewards, dtype=np.float64)
        if q.ndim == 3:
            q = q[:, :, 0]
        if q.shape != dist.shape:
            raise ValueError(f"estimated_rewards must have the shape of action_dist {dist.shape}")
    return BanditFeedback(act, r, p, dist, q)


def ipw_rounds(fb: BanditFeedback) -> np.ndarray:
    return fb.weight * fb.reward


def snipw_rounds(fb: BanditFeedback) -> np.ndarray:
    w = fb.weight
    return w * fb.reward / w.mean()


def dm_rounds(fb: BanditFeedback) -> np.ndarray:
    return fb.q_hat()[0]


def dr_rounds(fb: BanditFeedback) -> np.ndarray:
    dm, q_a = fb.q_hat()
    return dm + fb.weight * (fb.reward - q_a)


def sndr_rounds(fb: BanditFeedback) -> np.ndarray:
    dm, q_a = fb.q_hat()
    w = fb.weight
    return dm + w * (fb.reward - q_a) / w.mean()


def switch_dr_rounds(fb: BanditFeedback, tau: float = np.inf) -> np.ndarray:
    if not tau >= 0:
        raise ValueError(f"tau = {tau!r} must be >= 0 (the weight above which DM is used)")
    dm, q_a = fb.q_hat()
    w = fb.weight
    return dm + (w <= tau) * w * (fb.reward - q_a)


def dros_rounds(fb: BanditFeedback, lambda_: float = 0.0) -> np.ndarray:
    if not lambda_ >= 0:
        raise ValueError(f"lambda_ = {lambda_!r} must be >= 0 (shrinkage strength)")
    dm, q_a = fb.q_hat()
    w = fb.weight
    shrunk = w if np.isinf(lambda_) else lambda_ * w / (w**2 + lambda_)
    return dm + shrunk * (fb.reward - q_a)


_ROUNDS: dict[str, Callable[..., np.ndarray]] = {
    "ipw": ipw_rounds,
    "snipw": snipw_rounds,
    "dm": dm_rounds,
    "dr": dr_rounds,
    "sndr": sndr_rounds,
    "switch_dr": switch_dr_rounds,
    "dros": dros_rounds,
}


def estimate(name: str, fb: BanditFeedback, **params: float) -> float:
    """Policy value by estimator ``name`` (``ESTIMATORS``); params: ``tau`` or ``lambda_``."""
    if name not in _ROUNDS:
        raise ValueError(f"estimator {name!r} is unknown; use one of {', '.join(ESTIMATORS)}")
    return float(_ROUNDS[name](fb, **params).mean())


def bootstrap_interval(
    name: str,
    fb: BanditFeedback,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    seed: int = 0,
    **params: float,
) -> tuple[float, float, float]:
    """(estimate, lower, upper): percentile bootstrap over rounds (Efron & Tibshirani 1993, 13.3).

    Each resample recomputes the estimator on resampled rounds; for the self-normalized ones the
    normalizer ``mean(w)`` is resampled with them (done on per-round components, no data copies).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha!r} must be in (0, 1), e.g. 0.05")
    point = estimate(name, fb, **params)
    n = fb.action.size
    if name == "snipw":
        parts = [fb.weight * fb.reward, fb.weight]
    elif name == "sndr":
        dm, q_a = fb.q_hat()
        parts = [dm, fb.weight * (fb.reward - q_a), fb.weight]
    else:
        parts = [_ROUNDS[name](fb, **params)]
    rng = np.random.default_rng(seed)
    stats = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        i = rng.integers(0, n, n)  # one resample of rounds for every component
        stats[b] = _combine(name, [float(part[i].mean()) for part in parts])
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return point, float(lo), float(hi)


def _combine(name: str, means: list[float]) -> float:
    if name == "snipw":
        return means[0] / means[1]
    if name == "sndr":
        return means[0] + means[1] / means[2]
    return means[0]


def to_bandit_feedback(
    arm: np.ndarray,
    propensity: np.ndarray,
    reward: np.ndarray,
    context: np.ndarray | None = None,
    n_incentives: int | None = None,
) -> dict[str, object]:
    """Decision logs in obp's bandit-feedback dict (``action`` = arm + 1, 0 = no incentive)."""
    a = np.asarray(arm)
    n_actions = int(a.max()) + 2 if n_incentives is None else int(n_incentives) + 1
    out: dict[str, object] = {
        "n_rounds": int(a.size),
        "n_actions": n_actions,
        "action": (a + 1).astype(np.int64),
        "position": np.zeros(a.size, dtype=np.int64),
        "reward": np.asarray(reward, dtype=np.float64),
        "pscore": np.asarray(propensity, dtype=np.float64),
    }
    if context is not None:
        out["context"] = np.asarray(context)
    return out
