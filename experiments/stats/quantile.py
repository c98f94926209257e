"""Quantile metrics (e.g. median or p90 order value) from three order statistics per arm.

Layer: pure domain core (numpy/scipy). A quantile has no additive sufficient statistics, so
honest inference needs the SQL layer to return, per arm, the sample quantile and the two order
statistics at the ranks of :func:`quantile_ranks` (a distribution-free confidence interval for
the quantile). The standard error is that interval's width over 2 z (McKean & Schrader 1984,
Commun. Statist. Simul. Comput. 13:751-773, for the median; the same construction for any
quantile level). The statistic plugs into ``welch_test``, ``sequential_test`` and
``bayesian_test`` like any other; it does not pool (``+`` raises), recompute it over the union.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

QUANTILE_CONFIDENCE = 0.95


def quantile_ranks(
    n: int, level: float, confidence: float = QUANTILE_CONFIDENCE
) -> tuple[int, int]:
    """1-based ranks (lower, upper) of the order statistics bounding the quantile.

    Large-sample binomial ranks n p -+ z sqrt(n p (1 - p)) (Conover 1999, "Practical
    Nonparametric Statistics", 3rd ed., section 3.2, confidence interval for a quantile),
    rounded outward and clipped to [1, n].
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}; e.g. 0.5 for the median")
    z = sps.norm.isf((1 - confidence) / 2)
    half = z * np.sqrt(n * level * (1 - level))
    lower = int(np.clip(np.floor(n * level - half), 1, n))
    upper = int(np.clip(np.ceil(n * level + half) + 1, 1, n))
    return lower, upper


@dataclass(frozen=True)
class QuantileStatistic:
    """One arm's sample quantile at ``level`` and the order statistics at
    :func:`quantile_ranks` (``lower``, ``upper``)."""

    n: int
    level: float
    quantile: float
    lower: float
    upper: float
    confidence: float = QUANTILE_CONFIDENCE

    @property
    def mean(self) -> float:
        """The point estimate (named ``mean`` so every test can use it)."""
        return self.quantile

    @property
    def unadjusted_mean(self) -> float:
        return self.quantile

    @property
    def se(self) -> float:
        # McKean & Schrader (1984): SE = (X_(u) - X_(l)) / (2 z_{1 - (1 - confidence) / 2}).
        z = sps.norm.isf((1 - self.confidence) / 2)
        return (self.upper - self.lower) / (2 * z)

    @property
    def variance(self) -> float:
        """Per-unit scale, so that ``variance / n`` is the squared standard error."""
        return self.n * self.se**2

    def __add__(self, other: object) -> QuantileStatistic:
        raise TypeError(
            "quantiles do not pool: recompute the QuantileStatistic over the union of units"
        )

    @classmethod
    def from_sample(
        cls, values: np.ndarray, level: float, confidence: float = QUANTILE_CONFIDENCE
    ) -> QuantileStatistic:
        """Build from raw values (tests and small data; SQL computes the same three numbers)."""
        x = np.sort(np.asarray(values, dtype=float))
        lo, hi = quantile_ranks(len(x), level, confidence)
        return cls(
            n=len(x),
            level=level,
            quantile=float(np.quantile(x, level)),
            lower=float(x[lo - 1]),
            upper=float(x[hi - 1]),
            confidence=confidence,
        )
