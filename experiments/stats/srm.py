"""Sample-ratio mismatch: chi-square goodness of fit of arm sizes against configured weights.

Layer: pure domain core (numpy/scipy). Matches gbstats' ``check_srm``; an alert is raised at
p < 0.001, the threshold GrowthBook and Fabijan et al. (2019, "Diagnosing Sample Ratio
Mismatch in Online Controlled Experiments", KDD) recommend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from experiments.stats.results import SrmResult

SRM_ALERT_P = 0.001


def srm_check(
    counts: Sequence[float], weights: Sequence[float], threshold: float = SRM_ALERT_P
) -> SrmResult:
    """Pearson's chi-square statistic sum((O - E)^2 / E) with k - 1 degrees of freedom
    (Pearson 1900, Philosophical Magazine 50:157-175).

    Arms with weight 0 and no units are ignored; units in an arm of weight 0 are a certain
    mismatch (p = 0). Weights are normalized to sum to 1.
    """
    users = np.asarray(counts, dtype=float)
    w = np.asarray(weights, dtype=float)
    if users.shape != w.shape or users.ndim != 1:
        raise ValueError(
            f"counts and weights must be 1-d and of equal length, got {users.shape} and {w.shape}"
        )
    if np.any(users < 0) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("counts and weights must be non-negative numbers")
    if np.any((w == 0) & (users > 0)):
        return SrmResult(
            chi2=float("inf"),
            p_value=0.0,
            dof=int(np.count_nonzero(w > 0)) - 1,
            expected=tuple(float(v) for v in np.zeros_like(users)),
            alert=True,
            error="units were assigned to an arm whose weight is 0: check the assignment config",
        )
    keep = w > 0
    users, w = users[keep], w[keep] / w[keep].sum()
    total = users.sum()
    if len(users) < 2 or total == 0:
        return SrmResult(
            chi2=0.0,
            p_value=1.0,
            dof=max(len(users) - 1, 0),
            expected=tuple(float(v) for v in total * w),
            alert=False,
            error="fewer than two arms with weight, or no units yet: nothing to check",
        )
    expected = total * w
    chi2 = float(np.sum((users - expected) ** 2 / expected))
    dof = len(users) - 1
    p_value = float(sps.chi2.sf(chi2, dof))
    return SrmResult(
        chi2=chi2,
        p_value=p_value,
        dof=dof,
        expected=tuple(float(v) for v in expected),
        alert=p_value < threshold,
    )


def srm_test(counts: Sequence[float], weights: Sequence[float]) -> float:
    """The SRM p-value (stable interface of issue 4); alert when it is below 0.001."""
    return srm_check(counts, weights).p_value
