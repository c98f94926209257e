"""Multiple testing across variants x goal metrics: Holm and Benjamini–Hochberg.

Layer: pure domain core (numpy). Goal metrics form the family; guardrail metrics stay outside
it and are tested one-sided for harm at the unadjusted level (:func:`guardrail_test`), so a
guardrail is never made harder to trip by the number of goals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from experiments.stats.frequentist import Alternative, welch_test
from experiments.stats.results import TestResult
from experiments.stats.statistics import Statistic

Method = Literal["holm", "bh"]


def _as_p_values(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError("p_values must be a 1-d sequence")
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1] (no NaN)")
    return p


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (Holm 1979, Scand. J. Statist. 6:65-70):
    p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)) over the ascending order."""
    p = _as_p_values(p_values)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def benjamini_hochberg_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg step-up adjusted p-values (Benjamini & Hochberg 1995, JRSS B
    57:289-300, the procedure of section 3): p~_(i) = min_{j >= i} min(1, m p_(j) / j)."""
    p = _as_p_values(p_values)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    scaled = m * p[order] / np.arange(1, m + 1)
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted


def adjust_p_values(p_values: Sequence[float], method: Method = "holm") -> np.ndarray:
    """Adjusted p-values by ``method`` ('holm' controls FWER, 'bh' controls FDR)."""
    if method == "holm":
        return holm_adjust(p_values)
    if method == "bh":
        return benjamini_hochberg_adjust(p_values)
    raise ValueError(f"method must be 'holm' or 'bh', got {method!r}")


def adjust_family(
    goal_p_values: Mapping[tuple[str, str], float], method: Method = "holm"
) -> dict[tuple[str, str], float]:
    """Adjust the family of goal-metric p-values keyed by (variant, metric).

    Guardrails must not be passed here: test them with :func:`guardrail_test`.
    """
    keys = list(goal_p_values)
    adjusted = adjust_p_values([goal_p_values[k] for k in keys], method)
    return {k: float(v) for k, v in zip(keys, adjusted, strict=True)}


def guardrail_test(
    control: Statistic,
    treatment: Statistic,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    relative: bool = False,
) -> TestResult:
    """One-sided Welch test for harm: H1 is 'treatment is worse than control'.

    For a metric where higher is better, harm is treatment < control (``alternative='less'``);
    otherwise harm is treatment > control. Not adjusted for multiplicity (see module note).
    """
    alternative: Alternative = "less" if higher_is_better else "greater"
    return welch_test(control, treatment, alpha=alpha, relative=relative, alternative=alternative)
