"""Always-valid sequential test: the normal-mixture confidence sequence (mSPRT).

Layer: pure domain core (numpy/scipy). The mixture sequential probability ratio test of
Johari, Koomen, Pekelis & Walsh (2017, "Peeking at A/B tests", KDD; Operations Research 2022)
with a N(0, 1/rho^2) mixing distribution is the same boundary as the normal-mixture confidence
sequence of Howard, Ramdas, McAuliffe & Sekhon (2021, Ann. Statist. 49:1055, the
two-sided normal-mixture boundary) and the asymptotic confidence sequence of Waudby-Smith, Arnold, Wu, Wang &
Ramdas (2023, "Time-uniform central limit theory and asymptotic confidence sequences",
arXiv:2103.06476). We follow the last paper's parameterization, exactly as gbstats'
``SequentialTwoSidedTTest`` does: rho is chosen so that the boundary is tightest when the total
sample size equals the tuning size N* (``tuning_n``).

The kernels (:func:`mixture_rho`, :func:`mixture_halfwidth`, :func:`mixture_p_value`) accept
numpy arrays, so simulations can evaluate thousands of monitored experiments at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from experiments.stats.moments import lift_moments
from experiments.stats.results import TestResult, default_test_result
from experiments.stats.statistics import Statistic

DEFAULT_TUNING_N = 5000.0


def mixture_rho(alpha: Any, tuning_n: Any) -> Any:
    """Mixing precision rho for which the boundary is tightest at n = N*.

    Waudby-Smith et al. 2023 (arXiv:2103.06476v7), eq. 161:
    rho = sqrt((-2 log alpha + log(-2 log alpha + 1)) / N*).
    """
    log_alpha = np.log(alpha)
    return np.sqrt((-2 * log_alpha + np.log(-2 * log_alpha + 1)) / tuning_n)


def mixture_halfwidth(se: Any, n: Any, tuning_n: Any, alpha: Any) -> Any:
    """Half-width of the (1 - alpha) confidence sequence for an effect with standard error se.

    With sigma^2 = n se^2 the per-unit variance and n the total units, Waudby-Smith et al. 2023,
    eq. 9 (as cited in gbstats' ``sequential_interval_halfwidth``; the two-sided
    normal-mixture boundary of Howard et al. 2021):
    sigma * sqrt(2 (n rho^2 + 1) / (n^2 rho^2) * log(sqrt(n rho^2 + 1) / alpha)).
    """
    rho2 = mixture_rho(alpha, tuning_n) ** 2
    n = np.asarray(n, dtype=float)
    s2 = np.asarray(se, dtype=float) ** 2 * n
    return np.sqrt(s2 * 2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha))


def mixture_p_value(effect: Any, se: Any, n: Any, tuning_n: Any, alpha: Any) -> Any:
    """Always-valid p-value at one look: min(1, 1 / E_n) for the mixture e-value E_n.

    Waudby-Smith et al. 2023 (v7), eq. 155, in gbstats' reparameterization:
    E_n = exp(rho^2 n^2 d^2 / (2 sigma^2 (n rho^2 + 1))) / sqrt(n rho^2 + 1), with
    sigma^2 = n se^2; equivalently the normal-mixture mSPRT likelihood ratio of Johari et al. 2017 with
    mixing variance tau^2 = rho^2 sigma^2 (checked by quadrature in the unit tests).
    By Ville's inequality P(sup_n E_n >= 1/alpha) <= alpha under H0, so the running minimum
    over looks of this p-value is itself a valid p-value (:func:`running_min_p_value`).
    """
    rho2 = mixture_rho(alpha, tuning_n) ** 2
    n = np.asarray(n, dtype=float)
    z2 = (np.asarray(effect, dtype=float) / np.asarray(se, dtype=float)) ** 2
    tr2p1 = n * rho2 + 1
    # log e-value = rho^2 n z^2 / (2 (n rho^2 + 1)) - log(sqrt(n rho^2 + 1)); st2 = n z^2.
    log_e = rho2 * n * z2 / (2 * tr2p1) - 0.5 * np.log(tr2p1)
    return np.minimum(1.0, np.exp(-log_e))


def sequential_test(
    control: Statistic,
    treatment: Statistic,
    alpha: float = 0.05,
    relative: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> TestResult:
    """Two-sided always-valid test: confidence sequence and p-value at the current look.

    ``tuning_n`` (N*) is the total sample size (both arms) at which the confidence sequence is
    narrowest; set it to the planned size (gbstats' default is 5000). The p-value is the one of
    this look only; keep the running minimum across looks with :func:`update_running`.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}; use e.g. alpha=0.05")
    if not tuning_n > 0:
        raise ValueError(f"tuning_n must be positive, got {tuning_n}; use the planned total size")
    m = lift_moments(control, treatment, relative=relative)
    if m.error:
        return default_test_result(m.error, relative=relative, method="sequential")
    n = m.n_a + m.n_b
    half = float(mixture_halfwidth(m.se, n, tuning_n, alpha))
    return TestResult(
        effect=m.effect,
        ci_low=m.effect - half,
        ci_high=m.effect + half,
        p_value=float(mixture_p_value(m.effect, m.se, n, tuning_n, alpha)),
        se=m.se,
        relative=relative,
        method="sequential",
    )


def running_min_p_value(p_values: Iterable[float]) -> np.ndarray:
    """Always-valid p-values kept as the running minimum across looks (Johari et al. 2017,
    the always-valid p-value p_n = min(p_{n-1}, 1 / Lambda_n))."""
    return np.minimum.accumulate(np.asarray(list(p_values), dtype=float))


def update_running(
    previous: TestResult | None, current: TestResult, intersect: bool = True
) -> TestResult:
    """Fold the current look into the stored running result.

    The p-value becomes min(previous, current) (Johari et al. 2017). With
    ``intersect`` the interval becomes the running intersection, still a (1 - alpha)
    confidence sequence (Howard et al. 2021: an intersection of
    confidence sequences is one). A degenerate
    look leaves the stored result unchanged.
    """
    if previous is None or previous.error:
        return current
    if current.error:
        return previous
    low, high = current.ci_low, current.ci_high
    if intersect:
        low, high = max(low, previous.ci_low), min(high, previous.ci_high)
        if low > high:  # disjoint sets only under a misspecified model: keep the latest
            low, high = current.ci_low, current.ci_high
    return replace(
        current, p_value=min(previous.p_value, current.p_value), ci_low=low, ci_high=high
    )
