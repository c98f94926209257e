"""Bayesian test: normal–normal model of the lift, with an optional proper Gaussian prior.

Layer: pure domain core (numpy/scipy). Matches gbstats' ``EffectBayesianABTest``: the data
likelihood of the lift is N(effect, se^2) (the same effect and delta-method variance as the
frequentist tests), the prior N(mean, variance) is on the same scale (relative or absolute).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from experiments.stats.moments import lift_moments
from experiments.stats.results import BayesianResult
from experiments.stats.statistics import Statistic


@dataclass(frozen=True)
class GaussianPrior:
    """Prior N(mean, variance) on the lift; ``proper=False`` is the flat (improper) prior."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False

    def __post_init__(self) -> None:
        if self.proper and not self.variance > 0:
            raise ValueError(
                f"GaussianPrior.variance must be positive for a proper prior, got {self.variance}"
            )


FLAT_PRIOR = GaussianPrior()


def posterior_normal(
    data_mean: float, data_variance: float, prior: GaussianPrior
) -> tuple[float, float]:
    """Posterior mean and standard deviation of the conjugate normal–normal model.

    Precision-weighted average (Gelman et al. 2013, "Bayesian Data Analysis", 3rd ed.,
    section 2.5, normal with known variance): 1/tau^2 = 1/v + 1/s0^2,
    mu = tau^2 (d / v + m0 / s0^2).
    """
    if not prior.proper:
        return data_mean, float(np.sqrt(data_variance))
    precision = 1 / data_variance + 1 / prior.variance
    mean = (data_mean / data_variance + prior.mean / prior.variance) / precision
    return float(mean), float(np.sqrt(1 / precision))


def normal_risk(mu: float, sigma: float) -> tuple[float, float]:
    """Expected loss of keeping control and of shipping treatment when lift ~ N(mu, sigma^2).

    Loss of shipping = E[max(0, -lift)] = sigma phi(mu/sigma) - mu Phi(-mu/sigma), and loss of
    keeping control = E[max(0, lift)] = that + mu (the "expected loss" of Stucchio 2015,
    "Bayesian A/B Testing at VWO", for a normal posterior; gbstats ``get_risk``). The first
    term is the standard normal partial expectation E[max(0, -X)] for X ~ N(mu, sigma^2).
    """
    z = mu / sigma
    loss_treatment = sigma * sps.norm.pdf(z) - mu * sps.norm.cdf(-z)
    loss_treatment = max(float(loss_treatment), 0.0)
    loss_control = max(loss_treatment + mu, 0.0)
    return float(loss_control), loss_treatment


def bayesian_test(
    control: Statistic,
    treatment: Statistic,
    relative: bool = False,
    prior: GaussianPrior = FLAT_PRIOR,
    alpha: float = 0.05,
    inverse: bool = False,
) -> BayesianResult:
    """Posterior of the lift, chance to win, (1 - alpha) credible interval and risk.

    ``inverse=True`` is for metrics where lower is better (e.g. refunds): chance to win is then
    P(lift < 0) and the two risks swap, as in gbstats.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}; use e.g. alpha=0.05")
    m = lift_moments(control, treatment, relative=relative)
    if m.error:
        return BayesianResult(
            effect=0.0,
            ci_low=0.0,
            ci_high=0.0,
            se=0.0,
            chance_to_win=0.5,
            risk=(0.0, 0.0),
            error=m.error,
            relative=relative,
        )
    mu, sigma = posterior_normal(m.effect, m.variance, prior)
    ctw = float(sps.norm.sf(0.0, loc=mu, scale=sigma))
    low, high = sps.norm.ppf([alpha / 2, 1 - alpha / 2], loc=mu, scale=sigma)
    risk_control, risk_treatment = normal_risk(mu, sigma)
    if inverse:
        ctw = 1 - ctw
        risk_control, risk_treatment = risk_treatment, risk_control
    return BayesianResult(
        effect=mu,
        ci_low=float(low),
        ci_high=float(high),
        se=sigma,
        chance_to_win=ctw,
        risk=(risk_control, risk_treatment),
        relative=relative,
    )
