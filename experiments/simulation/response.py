"""How each user responds to each incentive: the simulator's ground truth.

Layer: ``experiments.simulation``. For every arm (control first) this module computes, per user,
the conversion logit, the order-value distribution, the number of orders, the retention given
conversion, and the closed-form expectations (gross value and incentive cost given conversion)
that the sampler in :mod:`experiments.simulation.shop` reproduces draw by draw.

Order values are lognormal; the partial expectations used below are the standard lognormal
results (e.g. Johnson, Kotz & Balakrishnan, *Continuous Univariate Distributions* vol. 1, 2nd ed.,
ch. 14): for X ~ LN(mu, s^2), P(X < t) = Phi(a) and E[(t - X)+] = t Phi(a) - e^{mu + s^2/2}
Phi(a - s), with a = (ln t - mu) / s. Equations and parameters: ``docs/simulator.md``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, ndtr

from experiments.simulation.incentives import CATEGORIES, Incentive
from experiments.simulation.population import BASKET_SIGMA, Population

RETENTION_CONVERT_BOOST = 1.1  # logit bonus on 30-day retention for users who convert
BUNDLE_LIFT = 1.5  # an order that takes a bundle is 50% larger
TASTE_SD = 0.15  # sd of the unexplained, per-user, per-incentive conversion response


@dataclass(frozen=True)
class ArmModel:
    """Per-user parameters of one arm (arrays of length n) and its expectations given conversion."""

    key: str
    kind: str  # "none" or an incentive kind
    params: dict[str, Any]
    logit: np.ndarray  # conversion logit over the 30-day window (the taste term included)
    taste: np.ndarray  # the unexplained per-user taste term in ``logit`` (0 for the control)
    basket_mu: np.ndarray  # log-mean of each order's gross value
    extra_orders: np.ndarray  # Poisson mean of orders after the first, given conversion
    retention_logit: np.ndarray  # 30-day retention logit given conversion
    topup: np.ndarray  # coupon: P(top a first order below min_basket up to it); else 0
    bundle_take: np.ndarray  # bundle: P(an order takes the bundle); else 0
    gross: np.ndarray  # E[gross value of the window's orders | converted]
    cost: np.ndarray  # E[incentive cost | converted]
    orders: np.ndarray  # E[number of orders | converted]

    @property
    def p_convert(self) -> np.ndarray:
        return expit(self.logit)


@dataclass(frozen=True)
class _Traits:
    """Derived per-user quantities the response equations share."""

    s: np.ndarray  # price sensitivity
    g: np.ndarray  # sensitivity response g(s) = 0.25 + 1.75 s^1.5
    cab: np.ndarray  # cart abandonment rate
    loyal: np.ndarray  # loyal full-price buyer score in (0, 1)
    q: np.ndarray  # hidden deal-seeking
    mean_basket: np.ndarray
    mobile: np.ndarray


def _lognormal_below(t: float, mu: np.ndarray) -> np.ndarray:
    return ndtr((np.log(t) - mu) / BASKET_SIGMA)


def _lognormal_shortfall(t: float, mu: np.ndarray) -> np.ndarray:
    """E[(t - X)+] for X ~ LN(mu, BASKET_SIGMA^2)."""
    a = (np.log(t) - mu) / BASKET_SIGMA
    return t * ndtr(a) - np.exp(mu + BASKET_SIGMA**2 / 2) * ndtr(a - BASKET_SIGMA)


def _taste(seed: int, key: str, n: int) -> np.ndarray:
    """Unexplained response noise, stable per (shop seed, incentive key) whatever the catalog."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(key.encode())]))
    return TASTE_SD * rng.normal(0, 1, n)


def control_arm(pop: Population) -> ArmModel:
    users = pop.users
    n = len(users)
    frequency = users["frequency"].to_numpy(dtype=float)
    extra = 0.05 + 0.4 * (1 - np.exp(-frequency / 6))
    mean_basket = np.exp(pop.basket_mu + BASKET_SIGMA**2 / 2)
    zeros = np.zeros(n)
    return ArmModel(
        key="none",
        kind="none",
        params={},
        logit=pop.baseline_logit,
        taste=zeros,
        basket_mu=pop.basket_mu,
        extra_orders=extra,
        retention_logit=pop.retention_logit + RETENTION_CONVERT_BOOST,
        topup=zeros,
        bundle_take=zeros,
        gross=(1 + extra) * mean_basket,
        cost=zeros,
        orders=1 + extra,
    )


def user_traits(pop: Population) -> _Traits:
    """The derived quantities every incentive's response uses (computed once per shop)."""
    users = pop.users
    s = users["price_sensitivity"].to_numpy()
    frequency = users["frequency"].to_numpy(dtype=float)
    return _Traits(
        s=s,
        g=0.25 + 1.75 * s**1.5,
        cab=users["cart_abandon_rate"].to_numpy(),
        loyal=expit(2.0 * (np.log1p(frequency) - 1.6)) * (1 - s),
        q=pop.deal_seeking,
        mean_basket=np.exp(pop.basket_mu + BASKET_SIGMA**2 / 2),
        mobile=(users["device"] == "mobile").to_numpy(),
    )


def incentive_arm(
    pop: Population, control: ArmModel, inc: Incentive, seed: int, traits: _Traits | None = None
) -> ArmModel:
    """The arm of one incentive; each branch is one subsection of docs/simulator.md."""
    t = user_traits(pop) if traits is None else traits
    n = len(pop.users)
    p = inc.params
    eps = _taste(seed, inc.key, n)
    zeros = np.zeros(n)
    mu = control.basket_mu
    extra = control.extra_orders
    retention = control.retention_logit
    topup = zeros
    take = zeros

    if inc.kind == "percent_discount":
        d = p["percent"] / 100
        tau = (
            0.65 * (1 - np.exp(-d / 0.15)) * t.g * (1 + 0.8 * t.cab)
            - 1.0 * t.q**2 * max(0.0, 0.25 - d) / 0.15  # deal-trained users wait for a bigger one
            - 0.5 * t.loyal  # loyal full-price buyers: an offer cheapens the brand
        )
        mu = mu + np.log1p(0.6 * d * t.s)
        extra = extra * (1 + 1.5 * d * t.s)
        retention = retention - 1.5 * d * t.q
        mean = np.exp(mu + BASKET_SIGMA**2 / 2)
        gross = (1 + extra) * mean
        cost = d * gross
    elif inc.kind == "fixed_coupon":
        amount, floor = float(p["amount"]), float(p["min_basket"])
        reach = expit((t.mean_basket - 0.6 * floor) / (0.15 * floor)) if floor > 0 else 1.0
        rel = amount / np.maximum(t.mean_basket, floor)
        tau = 4.5 * rel * t.g * (0.3 + 0.7 * reach) * (1 + 0.5 * t.cab) - 0.2 * t.loyal
        topup = 0.2 + 0.5 * t.s
        mean = np.exp(mu + BASKET_SIGMA**2 / 2)
        if floor > 0:
            below = _lognormal_below(floor, mu)
            first = mean + topup * _lognormal_shortfall(floor, mu)
            cost = amount * (1 - below + topup * below)
        else:
            first, cost = mean, np.full(n, amount)
        gross = first + extra * mean
    elif inc.kind == "free_shipping":
        threshold = float(p["threshold"])
        below0 = _lognormal_below(threshold, mu)
        near = below0 - _lognormal_below(0.7 * threshold, mu)
        rel_fee = pop.shipping_fee / np.maximum(t.mean_basket, 15.0)
        tau = (
            2.2 * rel_fee * below0 * (0.5 + t.s)
            + 0.6 * t.cab * below0
            + 0.15 * t.mobile
            - 0.1 * t.loyal
        )
        mu = mu + np.log1p(-0.15 * near)  # no more padding baskets up to the threshold
        extra = extra * (1 + 0.3 * below0)
        retention = retention + 0.25
        mean = np.exp(mu + BASKET_SIGMA**2 / 2)
        gross = (1 + extra) * mean
        cost = pop.shipping_fee * (1 + extra) * _lognormal_below(threshold, mu)
    elif inc.kind == "gift":
        a = pop.users[f"affinity_{p['category']}"].to_numpy()
        fit = np.tanh(6 * (a - 0.15))
        fit = np.where(fit < 0, 0.4 * fit, fit)  # an irrelevant gift is clutter, mildly negative
        tau = 0.9 * fit * np.sqrt(p["perceived_value"] / t.mean_basket) * (0.6 + 0.4 * (1 - t.s))
        retention = retention + 0.6 * a
        gross = control.gross
        cost = np.full(n, float(p["unit_cost"]))
    elif inc.kind == "bundle":
        d = p["percent"] / 100
        aff = pop.users[[f"affinity_{c}" for c in CATEGORIES]].to_numpy()
        multi = aff[:, CATEGORIES.index("fashion")] + aff[:, CATEGORIES.index("home")]
        take = expit(3 * (multi - 0.4) + 0.5 * t.s - 0.5)
        tau = 2.0 * d * take * t.g - 0.1 * t.loyal
        mean = np.exp(mu + BASKET_SIGMA**2 / 2)
        gross = (1 + extra) * mean * (1 + (BUNDLE_LIFT - 1) * take)
        cost = d * (1 + extra) * mean * BUNDLE_LIFT * take
    else:  # pragma: no cover - Incentive validates kinds
        raise ValueError(f"unknown incentive kind {inc.kind!r}")

    return ArmModel(
        key=inc.key,
        kind=inc.kind,
        params=dict(p),
        logit=control.logit + tau + eps,
        taste=eps,
        basket_mu=mu,
        extra_orders=extra,
        retention_logit=retention,
        topup=np.broadcast_to(topup, (n,)) if np.ndim(topup) == 0 else topup,
        bundle_take=take,
        gross=gross,
        cost=cost,
        orders=1 + extra,
    )
