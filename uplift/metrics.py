"""Uplift evaluation metrics (uplift layer, numpy only).

Curves and normalized areas follow scikit-uplift 0.5 (``sklift.metrics``) exactly:

* ``qini_curve``: at each distinct score threshold, Y_T − Y_C · N_T / N_C (cumulative counts).
* ``uplift_curve``: (Y_T / N_T − Y_C / N_C) · (N_T + N_C).
* ``qini_auc_score`` (normalized Qini): (AUC(actual) − AUC(baseline)) / (AUC(perfect) − AUC(baseline)),
  baseline the straight line from (0, 0) to the perfect curve's end; perfect curve = the Qini
  curve of the score y·t − y·(1 − t) (``negative_effect=True``) or the sklift triangle otherwise.
* ``uplift_auc_score`` (normalized AUUC): same with the uplift curve and sklift's perfect score
  2·[y = t] + (y if control responders > treated non-responders else t).
* ``uplift_at_k``: sklift's ``strategy='overall'`` (top ``int(n·k)`` of everyone) and
  ``'by_group'`` (top ``int(n_arm·k)`` of each group).

Multi-treatment data are scored per arm: ``per_arm`` restricts to control ∪ arm k and uses the
effect column of arm k. Ground-truth metrics (simulations): ``pehe`` (sqrt of the precision in
estimating heterogeneous effects, Hill 2011) and ``ate_error``. ``policy_value_ipw``: the
inverse-propensity-weighted value of "give each user the arm with the largest predicted effect
(or nothing when all are ≤ 0)" on randomized data (Horvitz–Thompson and self-normalized).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def _check(y_true: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    u = np.asarray(uplift, dtype=float)
    t = np.asarray(treatment)
    if not (y.ndim == u.ndim == t.ndim == 1) or not (len(y) == len(u) == len(t)):
        raise ValueError(
            f"y_true, uplift and treatment must be 1-D of one length; got {y.shape}, "
            f"{u.shape}, {t.shape}"
        )
    if not np.isin(t, (0, 1)).all():
        raise ValueError(
            "treatment must be 0 (control) / 1 (treated); use per_arm for several arms"
        )
    if not np.isfinite(u).all():
        raise ValueError("uplift has NaN or infinite scores")
    return y, u, t.astype(float)


def _cumulative(y: np.ndarray, u: np.ndarray, t: np.ndarray):
    order = np.argsort(u, kind="mergesort")[::-1]
    y, u, t = y[order], u[order], t[order]
    thresholds = np.r_[np.flatnonzero(np.diff(u)), u.size - 1]
    n_t = np.cumsum(t)[thresholds]
    y_t = np.cumsum(y * t)[thresholds]
    y_c = np.cumsum(y * (1 - t))[thresholds]
    n_all = (thresholds + 1).astype(float)
    return n_all, n_t, n_all - n_t, y_t, y_c


def _start_at_origin(x: np.ndarray, curve: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.size == 0 or curve[0] != 0 or x[0] != 0:
        return np.r_[0.0, x], np.r_[0.0, curve]
    return x, curve


def qini_curve(y_true: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    y, u, t = _check(y_true, uplift, treatment)
    n_all, n_t, n_c, y_t, y_c = _cumulative(y, u, t)
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    return _start_at_origin(n_all, y_t - y_c * ratio)


def uplift_curve(y_true: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    y, u, t = _check(y_true, uplift, treatment)
    n_all, n_t, n_c, y_t, y_c = _cumulative(y, u, t)
    rate_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t != 0)
    rate_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c != 0)
    return _start_at_origin(n_all, (rate_t - rate_c) * n_all)


def perfect_qini_curve(
    y_true: Any, treatment: Any, negative_effect: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    y, _, t = _check(y_true, np.zeros(len(y_true)), treatment)
    if negative_effect:
        return qini_curve(y, y * t - y * (1 - t), t)
    ratio_random = y[t == 1].sum() - (t == 1).sum() * y[t == 0].sum() / (t == 0).sum()
    return np.array([0.0, ratio_random, len(y)]), np.array([0.0, ratio_random, ratio_random])


def perfect_uplift_curve(y_true: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    y, _, t = _check(y_true, np.zeros(len(y_true)), treatment)
    control_responders = np.sum((y == 1) & (t == 0))
    treated_non_responders = np.sum((y == 0) & (t == 1))
    summand = y if control_responders > treated_non_responders else t
    return uplift_curve(y, 2 * (y == t) + summand, t)


def _normalized_area(actual: tuple, perfect: tuple) -> float:
    x_p, y_p = perfect
    baseline = np.trapezoid([0.0, y_p[-1]], [0.0, x_p[-1]])
    return float(
        (np.trapezoid(actual[1], actual[0]) - baseline) / (np.trapezoid(y_p, x_p) - baseline)
    )


def qini_auc_score(y_true: Any, uplift: Any, treatment: Any, negative_effect: bool = True) -> float:
    """Normalized area under the Qini curve (sklift ``qini_auc_score``)."""
    return _normalized_area(
        qini_curve(y_true, uplift, treatment),
        perfect_qini_curve(y_true, treatment, negative_effect),
    )


def uplift_auc_score(y_true: Any, uplift: Any, treatment: Any) -> float:
    """Normalized area under the uplift curve (sklift ``uplift_auc_score``)."""
    return _normalized_area(
        uplift_curve(y_true, uplift, treatment), perfect_uplift_curve(y_true, treatment)
    )


def uplift_at_k(
    y_true: Any, uplift: Any, treatment: Any, k: float = 0.3, strategy: str = "overall"
) -> float:
    """Treated minus control response rate among the top ``k`` (fraction) by predicted uplift."""
    y, u, t = _check(y_true, uplift, treatment)
    if not 0 < k <= 1:
        raise ValueError(f"k must be a fraction in (0, 1], got {k}")
    order = np.argsort(u, kind="mergesort")[::-1]
    y, t = y[order], t[order]
    if strategy == "overall":
        top = slice(0, int(len(y) * k))
        y_top, t_top = y[top], t[top]
        return float(y_top[t_top == 1].mean() - y_top[t_top == 0].mean())
    if strategy == "by_group":
        n_c, n_t = int((t == 0).sum() * k), int((t == 1).sum() * k)
        return float(y[t == 1][:n_t].mean() - y[t == 0][:n_c].mean())
    raise ValueError(f"strategy={strategy!r} is unknown; use 'overall' or 'by_group'")


def per_arm(
    metric: Callable[..., float],
    y_true: Any,
    effects: Any,
    treatment: Any,
    control: Any,
    incentives: list[Any],
    **kwargs: Any,
) -> dict[Any, float]:
    """Apply a binary uplift metric to each incentive: rows of control ∪ that arm, its column."""
    y, tau, labels = np.asarray(y_true, dtype=float), np.asarray(effects), np.asarray(treatment)
    tau = tau.reshape(len(labels), -1)
    if tau.shape[1] != len(incentives):
        raise ValueError(f"effects has {tau.shape[1]} columns for {len(incentives)} incentives")
    out = {}
    for j, arm in enumerate(incentives):
        rows = (labels == arm) | (labels == control)
        out[arm] = metric(y[rows], tau[rows, j], (labels[rows] == arm).astype(int), **kwargs)
    return out


def pehe(effect_true: Any, effect_pred: Any) -> np.ndarray:
    """sqrt(PEHE) per arm: sqrt(mean((τ̂ − τ)²)); 1-D input gives a 1-element array."""
    true = np.asarray(effect_true, dtype=float)
    pred = np.asarray(effect_pred, dtype=float)
    if true.shape != pred.shape:
        raise ValueError(f"effect_true {true.shape} and effect_pred {pred.shape} differ in shape")
    true, pred = true.reshape(len(true), -1), pred.reshape(len(pred), -1)
    return np.sqrt(((pred - true) ** 2).mean(axis=0))


def ate_error(effect_true: Any, effect_pred: Any) -> np.ndarray:
    """|mean(τ̂) − mean(τ)| per arm."""
    true = np.asarray(effect_true, dtype=float)
    pred = np.asarray(effect_pred, dtype=float)
    if true.shape != pred.shape:
        raise ValueError(f"effect_true {true.shape} and effect_pred {pred.shape} differ in shape")
    true, pred = true.reshape(len(true), -1), pred.reshape(len(pred), -1)
    return np.abs(pred.mean(axis=0) - true.mean(axis=0))


@dataclass(frozen=True)
class PolicyValue:
    value: float  # Horvitz–Thompson IPW estimate of the mean outcome under the policy
    standard_error: float
    snips: float  # self-normalized IPW estimate
    share_treated: dict[Any, float]  # fraction of users the policy gives each arm


def best_arm_policy(effects: Any, arms: list[Any], control: Any) -> np.ndarray:
    """Each user's arm with the largest predicted effect, or ``control`` when none is > 0."""
    tau = np.asarray(effects, dtype=float).reshape(-1, len(arms))
    choice = np.argmax(tau, axis=1)
    labels = np.asarray(arms, dtype=object)[choice]
    labels[tau.max(axis=1) <= 0] = control
    return labels


def policy_value_ipw(
    y: Any,
    treatment: Any,
    effects: Any,
    incentives: list[Any],
    control: Any,
    propensity: dict[Any, float] | None = None,
) -> PolicyValue:
    """IPW value of the best-arm-per-user policy on randomized data.

    V = mean_i 1[t_i = π(x_i)] · y_i / p(t_i) (Horvitz–Thompson; Dudík et al. 2011, eq. 1),
    with ``propensity`` the assignment probability of each arm (default: its share in the data).
    """
    y_arr = np.asarray(y, dtype=float)
    labels = np.asarray(treatment, dtype=object)
    policy = best_arm_policy(effects, incentives, control)
    if len(policy) != len(y_arr) or len(labels) != len(y_arr):
        raise ValueError("y, treatment and effects must have one row per user")
    arms = [control, *incentives]
    if propensity is None:
        propensity = {arm: float(np.mean(labels == arm)) for arm in arms}
    missing = [arm for arm in arms if propensity.get(arm, 0) <= 0]
    if missing:
        raise ValueError(f"arm(s) {missing} have no assignment probability; pass propensity=")
    p = np.array([propensity[label] for label in labels], dtype=float)
    match = (labels == policy).astype(float)
    terms = match * y_arr / p
    weights = match / p
    return PolicyValue(
        value=float(terms.mean()),
        standard_error=float(terms.std(ddof=1) / np.sqrt(len(terms))),
        snips=float(terms.sum() / weights.sum()) if weights.sum() > 0 else float("nan"),
        share_treated={arm: float(np.mean(policy == arm)) for arm in arms},
    )
