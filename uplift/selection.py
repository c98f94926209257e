"""Causal model-selection criterion: the doubly-robust pseudo-outcome loss (uplift layer).

For each validation user i and incentive k (Kennedy 2020, eq. 2; Nie & Wager's "tau-risk" family):

    φ_ik = m_k(x) − m_0(x) + 1[t=k](y − m_k(x)) / e_k(x) − 1[t=0](y − m_0(x)) / e_0(x)

whose conditional mean is the true effect τ_k(x) when the propensities e are right, whatever the
outcome models m. The nuisances are fitted with scikit-learn on the *training* split only, so the
criterion mean_i (φ_ik − τ̂_k(x_i))² scores a network on users it never saw, with no circularity.
Propensities: a multinomial logistic regression (clipped to [0.02, 0.98]); outcome models: one
histogram gradient-boosting regressor per arm and target.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

_MAX_NUISANCE_ROWS = 40_000  # per arm; the pseudo-outcomes only need rough outcome models


def _design(numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.hstack([numeric, codes.astype(np.float32)]) if codes.size else numeric


def dr_pseudo_outcomes(
    numeric: np.ndarray,
    codes: np.ndarray,
    arm: np.ndarray,
    targets: np.ndarray,
    n_arms: int,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Pseudo-outcomes (n_val, n_arms − 1, n_targets) for the validation rows."""
    rng = np.random.default_rng(seed)
    X = _design(numeric, codes)
    X_tr, X_va = X[train_idx], X[val_idx]
    t_tr, t_va = arm[train_idx], arm[val_idx]

    fit_rows = (
        train_idx
        if len(train_idx) <= 4 * _MAX_NUISANCE_ROWS
        else rng.choice(train_idx, 4 * _MAX_NUISANCE_ROWS, replace=False)
    )
    if len(np.unique(arm[fit_rows])) < n_arms:
        fit_rows = train_idx
    # one-hot of the codes is unnecessary for a propensity model: randomized data need none
    prop = LogisticRegression(C=1.0, max_iter=500)
    prop.fit(numeric[fit_rows] if numeric.shape[1] else X[fit_rows], arm[fit_rows])
    e = np.clip(prop.predict_proba(numeric[val_idx] if numeric.shape[1] else X_va), 0.02, 0.98)

    n_targets = targets.shape[1]
    m = np.zeros((len(val_idx), n_arms, n_targets))
    for a in range(n_arms):
        rows = np.flatnonzero(t_tr == a)
        if len(rows) > _MAX_NUISANCE_ROWS:
            rows = rng.choice(rows, _MAX_NUISANCE_ROWS, replace=False)
        for j in range(n_targets):
            y_a = targets[train_idx][rows, j]
            if len(rows) < 30 or np.ptp(y_a) == 0:
                m[:, a, j] = y_a.mean() if len(rows) else 0.0
                continue
            reg = HistGradientBoostingRegressor(
                max_iter=100,
                learning_rate=0.1,
                min_samples_leaf=max(10, len(rows) // 200),
                random_state=seed,
            )
            reg.fit(X_tr[rows], y_a)
            m[:, a, j] = reg.predict(X_va)

    y_va = targets[val_idx]
    pseudo = np.zeros((len(val_idx), n_arms - 1, n_targets))
    control = (t_va == 0)[:, None]
    for k in range(1, n_arms):
        treated = (t_va == k)[:, None]
        pseudo[:, k - 1] = (
            m[:, k]
            - m[:, 0]
            + treated * (y_va - m[:, k]) / e[:, k : k + 1]
            - control * (y_va - m[:, 0]) / e[:, :1]
        )
    return pseudo


def dr_loss(pseudo: np.ndarray, tau_hat: np.ndarray, weight: np.ndarray) -> float:
    """Weighted mean over users of (φ − τ̂)², each (arm, target) scaled by its pseudo-outcome
    variance so that conversion and revenue count alike."""
    scale = pseudo.var(axis=0, keepdims=True) + 1e-12
    per_user = ((pseudo - tau_hat) ** 2 / scale).mean(axis=(1, 2))
    return float((per_user * weight).sum() / weight.sum())
