"""Welch t-test and proportion z-tests against statsmodels on randomized (seeded) inputs."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from experiments.stats import (
    CupedStats,
    MeanStats,
    ProportionStats,
    RatioStats,
    SampleMeanStatistic,
    proportion_z_test,
    welch_test,
)

TOL = 1e-9
SEEDS = range(25)


def _stats(x: np.ndarray) -> SampleMeanStatistic:
    return MeanStats(n=len(x), sum=float(x.sum()), sum_squares=float((x**2).sum()))


def _samples(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(5, 400, size=2)
    scale_a, scale_b = rng.uniform(0.5, 5, size=2)
    a = rng.gamma(2.0, scale_a, size=n_a)  # skewed, like revenue
    b = rng.gamma(2.0, scale_b, size=n_b) + rng.normal(0, 0.3)
    return a, b


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_welch_matches_statsmodels(seed: int, alternative: str) -> None:
    a, b = _samples(seed)
    ours_alt = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}[alternative]
    result = welch_test(_stats(a), _stats(b), alpha=0.05, alternative=ours_alt)
    t_stat, p_value, dof = ttest_ind(b, a, alternative=alternative, usevar="unequal")
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
        alpha=0.05, alternative=alternative, usevar="unequal"
    )
    assert result.error is None
    assert result.effect == pytest.approx(b.mean() - a.mean(), abs=TOL)
    assert result.p_value == pytest.approx(p_value, abs=TOL)
    assert result.dof == pytest.approx(dof, rel=TOL)
    assert result.effect / result.se == pytest.approx(t_stat, abs=1e-8, rel=TOL)
    assert result.ci_low == pytest.approx(low, abs=TOL)
    assert result.ci_high == pytest.approx(high, abs=TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_proportion_tests_match_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n_a, n_b = (int(v) for v in rng.integers(50, 20000, size=2))
    p_a, p_b = rng.uniform(0.02, 0.6, size=2)
    c_a, c_b = int(rng.binomial(n_a, p_a)), int(rng.binomial(n_b, p_b))
    control, treatment = ProportionStats(n=n_a, sum=c_a), ProportionStats(n=n_b, sum=c_b)

    pooled = proportion_z_test(control, treatment, pooled=True)
    _, p_pooled = sm_proportion.proportions_ztest([c_b, c_a], [n_b, n_a])
    assert pooled.p_value == pytest.approx(p_pooled, abs=TOL)

    wald = proportion_z_test(control, treatment, pooled=False)
    reference = sm_proportion.test_proportions_2indep(
        c_b, n_b, c_a, n_a, method="wald", compare="diff"
    )
    assert wald.p_value == pytest.approx(reference.pvalue, abs=TOL)
    assert wald.effect == pytest.approx(c_b / n_b - c_a / n_a, abs=TOL)
    low, high = sm_proportion.confint_proportions_2indep(
        c_b, n_b, c_a, n_a, method="wald", compare="diff"
    )
    assert (wald.ci_low, wald.ci_high) == pytest.approx((low, high), abs=TOL)

    one_sided = proportion_z_test(control, treatment, pooled=True, alternative="greater")
    _, p_larger = sm_proportion.proportions_ztest([c_b, c_a], [n_b, n_a], alternative="larger")
    assert one_sided.p_value == pytest.approx(p_larger, abs=TOL)


def test_welch_on_proportions_uses_bernoulli_variance() -> None:
    # gbstats runs its t-test on proportions with variance p(1-p) per unit.
    result = welch_test(ProportionStats(1000, 100), ProportionStats(1000, 130))
    se = np.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert result.se == pytest.approx(se, rel=1e-12)


@pytest.mark.parametrize(
    ("control", "treatment", "fragment"),
    [
        (MeanStats(0, 0.0, 0.0), MeanStats(10, 5.0, 30.0), "no units in control"),
        (MeanStats(10, 5.0, 30.0), MeanStats(1, 1.0, 1.0), "only one unit in treatment"),
        (MeanStats(10, 10.0, 10.0), MeanStats(10, 5.0, 30.0), "zero (or negative) variance"),
        (ProportionStats(100, 0), ProportionStats(100, 3), "zero (or negative) variance"),
    ],
)
def test_degenerate_data_gives_a_message_not_an_exception(
    control: object, treatment: object, fragment: str
) -> None:
    result = welch_test(control, treatment)  # type: ignore[arg-type]
    assert result.error is not None and fragment in result.error
    assert (result.effect, result.ci, result.p_value, result.se) == (0.0, (0.0, 0.0), 1.0, 0.0)
    assert not result.significant()


def test_degenerate_ratio_and_cuped_inputs() -> None:
    empty = RatioStats(MeanStats(10, 5.0, 30.0), MeanStats(10, 0.0, 0.0), 0.0)
    full = RatioStats(MeanStats(10, 5.0, 30.0), MeanStats(10, 10.0, 12.0), 6.0)
    result = welch_test(empty, full)
    assert result.error is not None and "denominator sums to zero in control" in result.error
    one = CupedStats(1, 1.0, 1.0, 2.0, 4.0, 2.0)
    many = CupedStats(10, 5.0, 30.0, 4.0, 20.0, 10.0)
    assert "only one unit in control" in (welch_test(one, many).error or "")
    assert welch_test(CupedStats(0, 0, 0, 0, 0, 0), many).error is not None


def test_relative_lift_on_zero_baseline_is_an_error() -> None:
    zero_mean = MeanStats(10, 0.0, 10.0)  # mean 0, variance > 0
    result = welch_test(zero_mean, MeanStats(10, 5.0, 30.0), relative=True)
    assert result.error is not None and "relative lift is undefined" in result.error


def test_bad_options_raise_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="alpha"):
        welch_test(MeanStats(10, 5.0, 30.0), MeanStats(10, 5.0, 30.0), alpha=1.5)
    with pytest.raises(TypeError, match="same statistic kind"):
        welch_test(MeanStats(10, 5.0, 30.0), ProportionStats(10, 5))
