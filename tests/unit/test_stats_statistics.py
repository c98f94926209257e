"""Sufficient-statistic dataclasses: moments against numpy on raw rows, pooling, CUPED."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats as sps

from experiments.stats import (
    CupedStats,
    MeanStats,
    ProportionStats,
    QuantileStatistic,
    RatioStats,
    RegressionAdjustedStatistic,
    pooled_theta,
    quantile_ranks,
    welch_test,
)


def _mean_stats(x: np.ndarray) -> MeanStats:
    return MeanStats(n=len(x), sum=float(x.sum()), sum_squares=float((x**2).sum()))


def _cuped(y: np.ndarray, x: np.ndarray) -> RegressionAdjustedStatistic:
    x = x.reshape(len(y), -1)
    return CupedStats(
        n=len(y),
        post_sum=float(y.sum()),
        post_sum_squares=float((y**2).sum()),
        pre_sum=x.sum(axis=0),
        pre_sum_squares=x.T @ x,
        post_pre_sum_of_products=x.T @ y,
    )


def test_mean_and_proportion_moments_match_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(1, 1, size=500)
    s = _mean_stats(x)
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.variance == pytest.approx(x.var(ddof=1), rel=1e-9)
    conv = rng.binomial(1, 0.3, size=800)
    p = ProportionStats(n=len(conv), sum=int(conv.sum()))
    assert p.variance == pytest.approx(conv.var(ddof=0), rel=1e-12)


def test_pooling_equals_statistics_of_concatenated_rows() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(3, 1, 200), rng.normal(3, 2, 300)
    pooled = _mean_stats(a) + _mean_stats(b)
    assert pooled.n == 500
    assert pooled.variance == pytest.approx(np.concatenate([a, b]).var(ddof=1), rel=1e-9)
    assert ProportionStats(10, 3) + ProportionStats(20, 4) == ProportionStats(30, 7)
    with pytest.raises(TypeError, match="same metric kind"):
        _mean_stats(a) + ProportionStats(10, 3)  # type: ignore[operator]
    with pytest.raises(dataclasses.FrozenInstanceError):
        pooled.n = 3  # type: ignore[misc]


def test_ratio_delta_variance_matches_linearization() -> None:
    # The delta-method variance of sum(m)/sum(d) equals the sample variance of the
    # linearized per-unit values (m - R d) / mean(d) (Deng et al. 2018).
    rng = np.random.default_rng(2)
    d = rng.poisson(3, 1000) + 1.0
    m = d * rng.gamma(2, 10, 1000)
    stat = RatioStats(_mean_stats(m), _mean_stats(d), float((m * d).sum()))
    ratio = m.sum() / d.sum()
    assert stat.mean == pytest.approx(ratio, rel=1e-12)
    linear = (m - ratio * d) / d.mean()
    assert stat.variance == pytest.approx(linear.var(ddof=1), rel=1e-9)
    pooled = stat + stat
    assert pooled.n == 2000 and pooled.mean == pytest.approx(ratio, rel=1e-12)
    with pytest.raises(ValueError, match="must equal denominator.n"):
        RatioStats(_mean_stats(m), _mean_stats(d[:10]), 1.0)


def test_cuped_theta_is_the_pooled_ols_slope_with_several_covariates() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    x = rng.normal(size=(2 * n, 3)) @ np.array([[1, 0.3, 0], [0, 1, 0.2], [0, 0, 1]])
    y = 5 + x @ np.array([2.0, -1.0, 0.5]) + rng.normal(size=2 * n)
    y[n:] += 0.1  # treatment effect
    a, b = _cuped(y[:n], x[:n]), _cuped(y[n:], x[n:])
    design = np.column_stack([np.ones(2 * n), x])
    ols = np.linalg.lstsq(design, y, rcond=None)[0][1:]
    theta = pooled_theta(a, b)
    np.testing.assert_allclose(theta, ols, rtol=1e-6)
    a, b = a.with_theta(theta), b.with_theta(theta)
    adjusted = y - x @ np.asarray(theta)
    assert a.mean == pytest.approx(adjusted[:n].mean(), rel=1e-9)
    assert a.variance == pytest.approx(adjusted[:n].var(ddof=1), rel=1e-7)
    # CUPED removes most of the variance explained by the covariates.
    assert a.variance < 0.2 * a.post.variance
    plain = welch_test(_mean_stats(y[:n]), _mean_stats(y[n:]))
    cuped = welch_test(a, b)
    assert cuped.se < 0.5 * plain.se


def test_cuped_with_one_covariate_accepts_numbers_and_pools() -> None:
    one = CupedStats(
        n=10,
        post_sum=5,
        post_sum_squares=40,
        pre_sum=4.9,
        pre_sum_squares=38,
        post_pre_sum_of_products=37,
    )
    assert one.pre_sum == (4.9,) and one.pre_sum_squares == ((38.0,),)
    both = one + one
    assert both.n == 20 and both.theta is None
    with pytest.raises(ValueError, match="pre_sum_squares"):
        CupedStats(
            n=10,
            post_sum=5,
            post_sum_squares=40,
            pre_sum=[1, 2],
            pre_sum_squares=3,
            post_pre_sum_of_products=[1, 2],
        )


def test_array_fields_give_elementwise_moments() -> None:
    s = ProportionStats(n=np.array([100, 200]), sum=np.array([10, 50]))
    np.testing.assert_allclose(s.variance, [0.09, 0.1875])
    m = MeanStats(n=np.array([3, 4]), sum=np.array([3.0, 4.0]), sum_squares=np.array([5.0, 6.0]))
    np.testing.assert_allclose(m.variance, [1.0, 2 / 3])


@pytest.mark.parametrize(("n", "level"), [(200, 0.5), (1000, 0.9), (5000, 0.25)])
def test_quantile_ranks_have_exact_binomial_coverage(n: int, level: float) -> None:
    # P(X_(l) <= q_p <= X_(u)) = P(l <= B <= u - 1) for B ~ Binomial(n, p), exactly.
    lower, upper = quantile_ranks(n, level)
    coverage = sps.binom.cdf(upper - 1, n, level) - sps.binom.cdf(lower - 1, n, level)
    assert 0.95 <= coverage <= 0.97


def test_quantile_lift_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(11)
    sims, n, level = 2000, 1000, 0.9
    true_diff = -np.log(1 - level) * (1.2 - 1.0)  # p90 of Exp(1.2) minus that of Exp(1)
    lo, hi = quantile_ranks(n, level)

    def arm(scale: float) -> QuantileStatistic:  # vectorized over simulations
        x = np.sort(rng.exponential(scale, size=(sims, n)), axis=1)
        return QuantileStatistic(
            n, level, np.quantile(x, level, axis=1), x[:, lo - 1], x[:, hi - 1]
        )

    a, b = arm(1.0), arm(1.2)
    diff = b.mean - a.mean
    half = sps.norm.isf(0.025) * np.sqrt(a.variance / n + b.variance / n)
    coverage = np.mean(np.abs(diff - true_diff) <= half)
    assert abs(coverage - 0.95) <= 3 * np.sqrt(0.95 * 0.05 / sims)
    # The same numbers through the public test, for one simulated experiment.
    one_a = QuantileStatistic(n, level, a.quantile[0], a.lower[0], a.upper[0])
    one_b = QuantileStatistic(n, level, b.quantile[0], b.lower[0], b.upper[0])
    result = welch_test(one_a, one_b)
    assert result.effect == pytest.approx(diff[0]) and result.se == pytest.approx(
        half[0] / sps.norm.isf(0.025)
    )
    with pytest.raises(TypeError, match="do not pool"):
        one_a + one_b
