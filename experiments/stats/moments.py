"""Point estimate and variance of a lift from two arms' sufficient statistics.

Layer: pure domain core. Shared by the fixed-horizon, sequential, group-sequential and Bayesian
tests, so that they all see the same effect and the same degenerate-data checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.stats.statistics import (
    RatioStatistic,
    RegressionAdjustedStatistic,
    Statistic,
    pooled_theta,
)

NO_UNITS = "no units in {arm}: wait for exposures in every arm before reading the result"
ONE_UNIT = "only one unit in {arm}: a variance needs at least two units"
ZERO_VARIANCE = (
    "zero (or negative) variance in {arm}: the metric is constant there, so no test is possible"
)
ZERO_BASELINE = (
    "control mean is zero: a relative lift is undefined; use an absolute difference instead"
)
ZERO_DENOMINATOR = (
    "the ratio's denominator sums to zero in {arm}: no unit has a denominator event yet"
)
NOT_FINITE = "non-finite statistics in {arm}: check the metric's SQL for NaN or infinite values"


@dataclass(frozen=True)
class LiftMoments:
    """Effect, its variance, and the per-arm pieces the tests need."""

    effect: float
    variance: float
    var_a: float
    var_b: float
    n_a: float
    n_b: float
    mean_a: float
    mean_b: float
    error: str | None = None

    @property
    def se(self) -> float:
        return float(np.sqrt(self.variance))

    @property
    def welch_dof(self) -> float:
        # Welch–Satterthwaite degrees of freedom (Welch 1947, Biometrika 34:28-35;
        # Satterthwaite 1946, Biometrics Bulletin 2:110-114): (v_a/n_a + v_b/n_b)^2 / sum((v/n)^2 / (n - 1)).
        qa, qb = self.var_a / self.n_a, self.var_b / self.n_b
        denominator = qa**2 / (self.n_a - 1) + qb**2 / (self.n_b - 1)
        if denominator <= 0:  # both squares underflowed: no evidence against the normal limit
            return float("inf")
        return (qa + qb) ** 2 / denominator


def _check_arm(stat: Statistic, arm: str) -> str | None:
    n = stat.n
    if not np.isfinite(n) or n <= 0:
        return NO_UNITS.format(arm=arm)
    if n < 2:
        return ONE_UNIT.format(arm=arm)
    if isinstance(stat, RatioStatistic) and stat.denominator.sum == 0:
        return ZERO_DENOMINATOR.format(arm=arm)
    try:
        with np.errstate(all="ignore"):
            values = (stat.mean, stat.variance)
    except ZeroDivisionError:
        return NOT_FINITE.format(arm=arm)
    if not all(np.isfinite(v) for v in values):
        return NOT_FINITE.format(arm=arm)
    if stat.variance <= 0:
        return ZERO_VARIANCE.format(arm=arm)
    return None


def align_cuped(a: Statistic, b: Statistic) -> tuple[Statistic, Statistic]:
    """Give two CUPED arms the same pooled theta (unless the caller fixed one)."""
    if isinstance(a, RegressionAdjustedStatistic) and isinstance(b, RegressionAdjustedStatistic):
        if a.theta is None or b.theta is None:
            theta = pooled_theta(a, b) if a.n > 1 and b.n > 1 else (0.0,) * len(a.pre_sum)
            return a.with_theta(theta), b.with_theta(theta)
    elif isinstance(a, RegressionAdjustedStatistic) or isinstance(b, RegressionAdjustedStatistic):
        raise TypeError(
            "control and treatment must be the same statistic kind; got "
            f"{type(a).__name__} and {type(b).__name__}"
        )
    return a, b


def lift_moments(control: Statistic, treatment: Statistic, *, relative: bool) -> LiftMoments:
    """Effect and its variance; ``error`` is set (and numbers are 0) for degenerate data."""
    if type(control) is not type(treatment):
        raise TypeError(
            "control and treatment must be the same statistic kind; got "
            f"{type(control).__name__} and {type(treatment).__name__}"
        )
    for stat, arm in ((control, "control"), (treatment, "treatment")):
        if not np.isfinite(stat.n) or stat.n <= 0:
            return _degenerate(NO_UNITS.format(arm=arm))
    control, treatment = align_cuped(control, treatment)
    for stat, arm in ((control, "control"), (treatment, "treatment")):
        message = _check_arm(stat, arm)
        if message:
            return _degenerate(message)
    mean_a, mean_b = control.mean, treatment.mean
    var_a, var_b = control.variance, treatment.variance
    n_a, n_b = float(control.n), float(treatment.n)
    if relative:
        base = control.unadjusted_mean
        if base == 0:
            return _degenerate(ZERO_BASELINE)
        effect = (mean_b - mean_a) / base
        # Delta method for the ratio of two independent means (Deng, Knoblich & Lu 2018,
        # "Applying the Delta Method in Metric Analytics", KDD, percent change of a mean;
        # gbstats frequentist_variance / variance_of_ratios):
        # Var(b/a) ~ Var(b)/a^2 + b^2 Var(a)/a^4, with Var(mean) = variance / n.
        # For CUPED, gbstats plugs the unadjusted means into the same formula.
        ua, ub = control.unadjusted_mean, treatment.unadjusted_mean
        variance = var_b / n_b / ua**2 + var_a / n_a * ub**2 / ua**4
    else:
        effect = mean_b - mean_a
        # Variance of a difference of independent means (Welch 1947).
        variance = var_b / n_b + var_a / n_a
    if not np.isfinite(variance) or variance <= 0:
        return _degenerate(ZERO_VARIANCE.format(arm="the lift"))
    return LiftMoments(
        effect=float(effect),
        variance=float(variance),
        var_a=float(var_a),
        var_b=float(var_b),
        n_a=n_a,
        n_b=n_b,
        mean_a=float(mean_a),
        mean_b=float(mean_b),
    )


def _degenerate(message: str) -> LiftMoments:
    return LiftMoments(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, error=message)
