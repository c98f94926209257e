"""Always-valid sequential test: the mixture e-value, running minimum, and an A/A simulation.

The simulation monitors thousands of A/A experiments after every batch of users (vectorized
over simulations with numpy, using the library's own statistics on arrays) and shows that the
sequential test keeps its false-positive rate at or below alpha while the fixed-horizon test,
peeked at the same looks, inflates it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from experiments.stats import (
    MeanStats,
    ProportionStats,
    mixture_halfwidth,
    mixture_p_value,
    mixture_rho,
    running_min_p_value,
    sequential_test,
    update_running,
    welch_test,
)


@pytest.mark.parametrize(
    ("d", "sigma", "n", "tuning_n"), [(0.05, 1.0, 2000, 5000), (0.2, 2.0, 300, 1000)]
)
def test_p_value_is_the_inverse_normal_mixture_likelihood_ratio(
    d: float, sigma: float, n: int, tuning_n: float
) -> None:
    # mSPRT (Johari et al. 2017): Lambda_n = int prod f_theta / f_0 dH(theta), H = N(0, tau^2),
    # for n observations with mean d and variance sigma^2; tau^2 = rho^2 sigma^2.
    alpha = 0.05
    tau = mixture_rho(alpha, tuning_n) * sigma

    def integrand(theta: float) -> float:
        log_lr = n * (theta * d - theta**2 / 2) / sigma**2
        return float(np.exp(log_lr) * sps.norm.pdf(theta, scale=tau))

    likelihood_ratio, _ = integrate.quad(integrand, -20 * tau, 20 * tau, points=[d], limit=200)
    se = sigma / np.sqrt(n)
    assert mixture_p_value(d, se, n, tuning_n, alpha) == pytest.approx(
        min(1.0, 1 / likelihood_ratio), rel=1e-7
    )
    # The interval and the p-value are one test: the boundary is where p = alpha.
    half = mixture_halfwidth(se, n, tuning_n, alpha)
    assert mixture_p_value(half, se, n, tuning_n, alpha) == pytest.approx(alpha, rel=1e-9)


def test_sequential_interval_is_wider_than_fixed_and_narrowest_near_tuning_n() -> None:
    control, treatment = ProportionStats(3000, 300), ProportionStats(3000, 345)
    fixed = welch_test(control, treatment)
    seq = sequential_test(control, treatment, tuning_n=6000)
    assert seq.effect == fixed.effect and seq.se == fixed.se
    assert seq.ci_high - seq.ci_low > fixed.ci_high - fixed.ci_low
    # Relative to the fixed-horizon width, the boundary is tightest at n = N*.
    ratios = {tn: mixture_halfwidth(1.0, 6000, tn, 0.05) for tn in (600, 6000, 60000)}
    assert ratios[6000] < ratios[600] and ratios[6000] < ratios[60000]
    degenerate = sequential_test(ProportionStats(0, 0), treatment)
    assert degenerate.error and degenerate.p_value == 1.0


def test_running_minimum_and_update_running() -> None:
    np.testing.assert_allclose(
        running_min_p_value([0.9, 0.4, 0.6, 0.2, 0.3]), [0.9, 0.4, 0.4, 0.2, 0.2]
    )
    a = MeanStats(1000, 1000.0, 3000.0)
    first = sequential_test(a, MeanStats(1000, 1100.0, 3300.0))
    second = sequential_test(a + a, MeanStats(2000, 2080.0, 6300.0))
    folded = update_running(first, second)
    assert folded.p_value == min(first.p_value, second.p_value)
    assert folded.ci_low == max(first.ci_low, second.ci_low)
    assert folded.ci_high == min(first.ci_high, second.ci_high)
    assert update_running(None, first) is first
    bad = sequential_test(MeanStats(0, 0, 0), a)
    assert update_running(first, bad) is first


def _monitor_aa(sims: int, looks: int, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-look sequential and fixed-horizon p-values (sims x looks) for A/A Bernoulli data."""
    rng = np.random.default_rng(seed)
    p = 0.1
    # Batches of a Bernoulli(p) metric: the batch sum is Binomial(batch, p) exactly.
    conv = rng.binomial(batch, p, size=(2, sims, looks)).cumsum(axis=2).astype(float)
    n = batch * np.arange(1, looks + 1, dtype=float)
    control = ProportionStats(n=n, sum=conv[0])
    treatment = ProportionStats(n=n, sum=conv[1])
    effect = treatment.mean - control.mean
    se = np.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    safe_se = np.where(se > 0, se, np.inf)  # no conversions yet: no evidence
    seq_p = mixture_p_value(effect, safe_se, 2 * n, tuning_n=5000, alpha=0.05)
    fixed_p = 2 * sps.norm.sf(np.abs(effect) / safe_se)
    return seq_p, fixed_p


def test_aa_simulation_sequential_controls_type_one_error_while_peeking_inflates_it() -> None:
    sims, alpha = 4000, 0.05
    seq_p, fixed_p = _monitor_aa(sims=sims, looks=50, batch=200, seed=20240601)
    mc_error = 3 * np.sqrt(alpha * (1 - alpha) / sims)
    # Always valid: reject once the running minimum (running_min_p_value, per experiment)
    # falls below alpha.
    seq_fpr = float(np.mean(np.minimum.accumulate(seq_p, axis=1)[:, -1] < alpha))
    assert seq_fpr <= alpha + mc_error
    # The fixed test read once at the horizon is calibrated ...
    fixed_once = float(np.mean(fixed_p[:, -1] < alpha))
    assert abs(fixed_once - alpha) <= mc_error
    # ... but peeked at all fifty looks it rejects far more often (Armitage, McPherson & Rowe
    # 1969: about 0.3 for 50 looks).
    peeking_fpr = float(np.mean(fixed_p.min(axis=1) < alpha))
    assert peeking_fpr > 3 * alpha
    assert peeking_fpr > seq_fpr + 10 * mc_error
