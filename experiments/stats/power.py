"""Power, sample size and minimum detectable effect, fixed-horizon and sequential.

Layer: pure domain core (numpy/scipy). Effects are absolute differences of means (pass
``relative_mde`` and the baseline mean to plan a relative lift). Sizes are per arm with an
allocation ratio ``ratio = n_treatment / n_control``; the sequential ones use the same
normal-mixture confidence sequence as :func:`experiments.stats.sequential_test`.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy import stats as sps

from experiments.stats.sequential import mixture_halfwidth


def _se(variance: float, n_control: float, ratio: float) -> float:
    # Standard error of a difference of independent means with n_t = ratio * n_c.
    return float(np.sqrt(variance / n_control + variance / (ratio * n_control)))


def _check(alpha: float, variance: float, ratio: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not variance > 0:
        raise ValueError(f"variance must be positive, got {variance}; use the metric's variance")
    if not ratio > 0:
        raise ValueError(f"ratio (n_treatment / n_control) must be positive, got {ratio}")


def fixed_power(
    effect: float, variance: float, n_control: float, alpha: float = 0.05, ratio: float = 1.0
) -> float:
    """Power of the two-sided z-test: Phi(|d|/se - z_{1-a/2}) + Phi(-|d|/se - z_{1-a/2})
    (Chow, Shao & Wang 2008, "Sample Size Calculations in Clinical Research", section 3.2.1)."""
    _check(alpha, variance, ratio)
    z = sps.norm.isf(alpha / 2)
    shift = abs(effect) / _se(variance, n_control, ratio)
    return float(sps.norm.cdf(shift - z) + sps.norm.cdf(-shift - z))


def fixed_sample_size(
    effect: float, variance: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> int:
    """Control-arm size for the two-sided z-test (Chow, Shao & Wang 2008, section 3.2.1):
    n_c = (z_{1-a/2} + z_{power})^2 sigma^2 (1 + 1/ratio) / d^2, rounded up."""
    _check(alpha, variance, ratio)
    if effect == 0:
        raise ValueError("effect must be non-zero: no size detects a zero effect")
    z = sps.norm.isf(alpha / 2) + sps.norm.ppf(power)
    return int(np.ceil(z**2 * variance * (1 + 1 / ratio) / effect**2))


def fixed_mde(
    variance: float, n_control: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """Minimum detectable absolute effect for a planned size (inverse of the sample-size
    formula above): (z_{1-a/2} + z_{power}) se."""
    _check(alpha, variance, ratio)
    return float((sps.norm.isf(alpha / 2) + sps.norm.ppf(power)) * _se(variance, n_control, ratio))


def sequential_power(
    effect: float,
    variance: float,
    n_control: float,
    alpha: float = 0.05,
    ratio: float = 1.0,
    tuning_n: float | None = None,
) -> float:
    """Probability that the confidence sequence excludes 0 at the final look n_control.

    ``tuning_n=None`` tunes N* to the total size at that look (n_control (1 + ratio)); pass
    ``DEFAULT_TUNING_N`` (5000) for gbstats' default.

    The test rejects when |d_hat| exceeds the mixture half-width (Waudby-Smith et al. 2023,
    eq. 9); with d_hat ~ N(d, se^2) that is Phi((|d| - h)/se) + Phi((-|d| - h)/se). Because
    the test may also stop at an earlier look, this is a lower bound on the power of
    continuous monitoring up to n_control (benchmarks/stats.py: 0.85 realized for 0.80 planned).
    """
    _check(alpha, variance, ratio)
    se = _se(variance, n_control, ratio)
    n_total = n_control * (1 + ratio)
    tn = n_total if tuning_n is None else tuning_n
    half = float(mixture_halfwidth(se, n_total, tn, alpha))
    return float(sps.norm.cdf((abs(effect) - half) / se) + sps.norm.cdf((-abs(effect) - half) / se))


def sequential_sample_size(
    effect: float,
    variance: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    tuning_n: float | None = None,
) -> int:
    """Smallest control-arm size whose :func:`sequential_power` reaches ``power``.

    With ``tuning_n=None`` the tuning size N* is set to the resulting total size, i.e. the
    confidence sequence is tuned to be tightest where the experiment is planned to end.
    """
    if effect == 0:
        raise ValueError("effect must be non-zero: no size detects a zero effect")
    n_fixed = fixed_sample_size(effect, variance, alpha, power, ratio)

    def gap(n: float) -> float:
        tn = n * (1 + ratio) if tuning_n is None else tuning_n
        return sequential_power(effect, variance, n, alpha, ratio, tn) - power

    hi = float(n_fixed)
    while gap(hi) < 0:
        hi *= 2
        if hi > 1e13:
            raise ValueError("power is unreachable with this tuning_n; raise tuning_n")
    return int(np.ceil(optimize.brentq(gap, 2.0, hi, xtol=0.5)))


def sequential_mde(
    variance: float,
    n_control: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    tuning_n: float | None = None,
) -> float:
    """Smallest absolute effect whose :func:`sequential_power` at n_control reaches ``power``."""
    _check(alpha, variance, ratio)
    tn = n_control * (1 + ratio) if tuning_n is None else tuning_n
    se = _se(variance, n_control, ratio)
    return float(
        optimize.brentq(
            lambda d: sequential_power(d, variance, n_control, alpha, ratio, tn) - power,
            0.0,
            100 * se,
            xtol=1e-12 * se,
        )
    )


def relative_to_absolute(relative_mde: float, baseline_mean: float) -> float:
    """A relative lift planned on a baseline mean as an absolute difference."""
    return relative_mde * baseline_mean
