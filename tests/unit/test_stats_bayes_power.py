"""Bayesian posterior and risk, power/sample size/MDE, and the settings factory."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower

from experiments.stats import (
    AnalysisSettings,
    GaussianPrior,
    MeanStats,
    ProportionStats,
    bayesian_test,
    fixed_mde,
    fixed_power,
    fixed_sample_size,
    make_test,
    mixture_p_value,
    sequential_mde,
    sequential_power,
    sequential_sample_size,
    sequential_test,
    welch_test,
)

CONTROL, TREATMENT = ProportionStats(4000, 400), ProportionStats(4000, 430)


def test_risk_and_chance_to_win_match_numerical_integration() -> None:
    result = bayesian_test(CONTROL, TREATMENT, relative=True)
    post = sps.norm(result.effect, result.se)
    loss_ship, _ = integrate.quad(lambda x: max(-x, 0) * post.pdf(x), -1, 0)
    loss_keep, _ = integrate.quad(lambda x: max(x, 0) * post.pdf(x), 0, 1)
    assert result.risk[1] == pytest.approx(loss_ship, rel=1e-7)
    assert result.expected_loss == result.risk[1]
    assert result.risk[0] == pytest.approx(loss_keep, rel=1e-7)
    assert result.chance_to_win == pytest.approx(post.sf(0), rel=1e-12)
    inverse = bayesian_test(CONTROL, TREATMENT, relative=True, inverse=True)
    assert inverse.chance_to_win == pytest.approx(1 - result.chance_to_win)
    assert inverse.risk == result.risk[::-1]


def test_proper_prior_shrinks_toward_its_mean() -> None:
    flat = bayesian_test(CONTROL, TREATMENT)
    prior = GaussianPrior(mean=0.0, variance=flat.se**2, proper=True)
    shrunk = bayesian_test(CONTROL, TREATMENT, prior=prior)
    # Equal precisions: posterior mean halfway, variance halved (conjugate normal).
    assert shrunk.effect == pytest.approx(flat.effect / 2, rel=1e-12)
    assert shrunk.se == pytest.approx(flat.se / np.sqrt(2), rel=1e-12)
    assert bayesian_test(ProportionStats(0, 0), TREATMENT).error is not None
    with pytest.raises(ValueError, match="variance"):
        GaussianPrior(variance=0.0, proper=True)


@pytest.mark.parametrize(("effect", "sd", "ratio"), [(0.1, 1.0, 1.0), (0.03, 0.3, 2.0)])
def test_fixed_power_and_sample_size_match_statsmodels(
    effect: float, sd: float, ratio: float
) -> None:
    es = effect / sd
    n = fixed_sample_size(effect, sd**2, alpha=0.05, power=0.8, ratio=ratio)
    expected = NormalIndPower().solve_power(effect_size=es, alpha=0.05, power=0.8, ratio=ratio)
    assert n == int(np.ceil(expected - 1e-9))
    reference = NormalIndPower().power(effect_size=es, nobs1=n, alpha=0.05, ratio=ratio)
    assert fixed_power(effect, sd**2, n, ratio=ratio) == pytest.approx(reference, abs=1e-9)
    assert fixed_power(fixed_mde(sd**2, n, ratio=ratio), sd**2, n, ratio=ratio) == pytest.approx(
        0.8, abs=1e-3
    )


def test_sequential_plans_need_more_units_than_fixed_and_are_consistent() -> None:
    n_fixed = fixed_sample_size(0.1, 1.0)
    n_seq = sequential_sample_size(0.1, 1.0)
    assert n_fixed < n_seq < 3 * n_fixed
    assert sequential_power(0.1, 1.0, n_seq, tuning_n=2 * n_seq) >= 0.8
    mde = sequential_mde(1.0, n_seq)
    assert sequential_power(mde, 1.0, n_seq, tuning_n=2 * n_seq) == pytest.approx(0.8, abs=1e-6)
    assert fixed_mde(1.0, n_seq) < mde
    # Simulated check that the (final-look) power formula is what the test delivers.
    rng = np.random.default_rng(5)
    sd = np.sqrt(2 / n_seq)
    d_hat = 0.1 + sd * rng.standard_normal(20000)
    rejected = mixture_p_value(d_hat, sd, 2 * n_seq, 2 * n_seq, 0.05) < 0.05
    expected = sequential_power(0.1, 1.0, n_seq, tuning_n=2 * n_seq)
    assert np.mean(rejected) == pytest.approx(expected, abs=0.015)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (AnalysisSettings(engine="frequentist", sequential=False), "welch"),
        (AnalysisSettings(engine="frequentist", sequential=True), "sequential"),
        (AnalysisSettings(engine="bayesian"), "bayesian"),
    ],
)
def test_factory_picks_the_test(settings: AnalysisSettings, expected: str) -> None:
    test = make_test(settings)
    assert isinstance(test, functools.partial)
    result = test(CONTROL, TREATMENT)
    assert result.method == expected and result.relative is True


def test_factory_binds_the_options() -> None:
    settings = AnalysisSettings(
        sequential=True, difference_type="absolute", alpha=0.1, tuning_n=900
    )
    a, b = MeanStats(500, 500.0, 1500.0), MeanStats(500, 560.0, 1700.0)
    assert make_test(settings)(a, b) == sequential_test(a, b, alpha=0.1, tuning_n=900)
    fixed = AnalysisSettings(sequential=False, difference_type="absolute")
    assert make_test(fixed)(a, b) == welch_test(a, b)
    with pytest.raises(ValueError, match="engine"):
        AnalysisSettings(engine="magic")  # type: ignore[arg-type]
