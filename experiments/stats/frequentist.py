"""Fixed-horizon tests: Welch's t-test and the two-proportion z-test.

Layer: pure domain core (numpy/scipy). ``welch_test`` matches gbstats' ``TwoSidedTTest`` (and
its one-sided variants, used for guardrails tested for harm); ``proportion_z_test`` is the
textbook large-sample test (pooled or unpooled variance) that statsmodels implements.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats as sps

from experiments.stats.moments import lift_moments
from experiments.stats.results import TestResult, default_test_result
from experiments.stats.statistics import ProportionStatistic, Statistic

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")


def _check_options(alpha: float, alternative: str) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}; use e.g. alpha=0.05")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")


def _p_value(stat: float, dist: sps.rv_continuous, alternative: str, **kw: float) -> float:
    if alternative == "two-sided":
        return float(min(1.0, 2 * dist.sf(abs(stat), **kw)))
    if alternative == "greater":
        return float(dist.sf(stat, **kw))
    return float(dist.cdf(stat, **kw))


def _interval(
    effect: float, se: float, q_two: float, q_one: float, alternative: str
) -> tuple[float, float]:
    if alternative == "two-sided":
        return effect - q_two * se, effect + q_two * se
    if alternative == "greater":
        return effect - q_one * se, float("inf")
    return float("-inf"), effect + q_one * se


def welch_test(
    control: Statistic,
    treatment: Statistic,
    alpha: float = 0.05,
    relative: bool = False,
    alternative: Alternative = "two-sided",
    test_value: float = 0.0,
) -> TestResult:
    """Welch's unequal-variance t-test of treatment versus control.

    Statistic t = (effect - test_value) / se with Welch–Satterthwaite degrees of freedom
    (Welch 1947, Biometrika 34:28-35; Satterthwaite 1946); the interval is effect ± t_{1-alpha/2, df} se.
    ``alternative='greater'`` tests treatment > control, ``'less'`` treatment < control.
    """
    _check_options(alpha, alternative)
    m = lift_moments(control, treatment, relative=relative)
    if m.error:
        return default_test_result(
            m.error, relative=relative, method="welch", alternative=alternative
        )
    se, dof = m.se, m.welch_dof
    t_stat = (m.effect - test_value) / se
    low, high = _interval(
        m.effect,
        se,
        float(sps.t.ppf(1 - alpha / 2, dof)),
        float(sps.t.ppf(1 - alpha, dof)),
        alternative,
    )
    return TestResult(
        effect=m.effect,
        ci_low=float(low),
        ci_high=float(high),
        p_value=_p_value(t_stat, sps.t, alternative, df=dof),
        se=se,
        relative=relative,
        method="welch",
        dof=float(dof),
        alternative=alternative,
    )


def proportion_z_test(
    control: ProportionStatistic,
    treatment: ProportionStatistic,
    alpha: float = 0.05,
    pooled: bool = True,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Large-sample z-test of p_treatment - p_control (absolute difference).

    ``pooled=True``: the score test, whose variance uses the proportion pooled over both arms
    under H0, p(1-p)(1/n1 + 1/n2) (Fleiss, Levin & Paik 2003, "Statistical Methods for Rates
    and Proportions", 3rd ed., chapter 3; statsmodels ``proportions_ztest``).
    ``pooled=False``: the Wald test with variance p1(1-p1)/n1 + p2(1-p2)/n2 (Newcombe 1998,
    Stat. Med. 17:873-890, method 1). The interval is always the Wald interval (method 1).
    """
    _check_options(alpha, alternative)
    for stat, arm in ((control, "control"), (treatment, "treatment")):
        if not isinstance(stat, ProportionStatistic):
            raise TypeError(f"proportion_z_test needs ProportionStatistic for {arm}")
        if stat.n <= 0:
            return default_test_result(
                f"no units in {arm}: wait for exposures in every arm before reading the result",
                relative=False,
                method="proportion_z",
                alternative=alternative,
            )
    p_a, p_b = control.mean, treatment.mean
    effect = p_b - p_a
    wald_var = p_a * (1 - p_a) / control.n + p_b * (1 - p_b) / treatment.n
    if pooled:
        p = (control.sum + treatment.sum) / (control.n + treatment.n)
        test_var = p * (1 - p) * (1 / control.n + 1 / treatment.n)
    else:
        test_var = wald_var
    if test_var <= 0 or wald_var <= 0:
        return default_test_result(
            "zero variance: every unit converted or none did, so no test is possible",
            relative=False,
            method="proportion_z",
            alternative=alternative,
        )
    z = effect / np.sqrt(test_var)
    se = float(np.sqrt(wald_var))
    low, high = _interval(
        effect, se, float(sps.norm.ppf(1 - alpha / 2)), float(sps.norm.ppf(1 - alpha)), alternative
    )
    return TestResult(
        effect=float(effect),
        ci_low=float(low),
        ci_high=float(high),
        p_value=_p_value(float(z), sps.norm, alternative),
        se=se,
        relative=False,
        method="proportion_z",
        alternative=alternative,
    )
