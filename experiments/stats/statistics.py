"""Sufficient statistics of one experiment arm: the inputs of every test in ``experiments.stats``.

Layer: pure domain core (numpy only). Each dataclass is frozen; ``mean`` and ``variance`` are
properties and ``a + b`` pools two of them (e.g. two days, or two dimension slices, of one arm).
The numbers are what ``experiments.analysis`` computes in SQL: counts, sums, sums of squares and
sums of cross products, never raw rows. Fields may also hold numpy arrays of equal shape (one
entry per simulation), in which case the properties are elementwise.

Conventions follow GrowthBook's gbstats (``gbstats/models/statistics.py``): the sample variance
of a mean uses the ``n - 1`` denominator, a proportion uses ``p (1 - p)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from experiments.stats.quantile import QuantileStatistic


def _sample_variance(n: Any, total: Any, sum_squares: Any) -> Any:
    # Unbiased sample variance from moments: (sum x^2 - (sum x)^2 / n) / (n - 1).
    return (sum_squares - total**2 / n) / (n - 1)


def sample_covariance(n: Any, sum_x: Any, sum_y: Any, sum_xy: Any) -> Any:
    """Unbiased sample covariance from sums: (sum xy - sum x sum y / n) / (n - 1)."""
    return (sum_xy - sum_x * sum_y / n) / (n - 1)


@dataclass(frozen=True)
class SampleMeanStatistic:
    """A continuous or count metric: units ``n``, ``sum`` of values, ``sum_squares`` of values."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        """Sample variance of one unit's value (``n - 1`` denominator); 0 when ``n <= 1``."""
        if np.ndim(self.n) == 0 and self.n <= 1:
            return 0.0
        return _sample_variance(self.n, self.sum, self.sum_squares)

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    def __add__(self, other: SampleMeanStatistic) -> SampleMeanStatistic:
        _same_kind(self, other)
        return SampleMeanStatistic(
            n=self.n + other.n,
            sum=self.sum + other.sum,
            sum_squares=self.sum_squares + other.sum_squares,
        )


@dataclass(frozen=True)
class ProportionStatistic:
    """A binary metric: units ``n`` and ``sum`` of converted units (so sum of squares = sum)."""

    n: int
    sum: float

    @property
    def sum_squares(self) -> float:
        return self.sum

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        """Bernoulli variance ``p (1 - p)`` (gbstats' convention, no ``n - 1`` correction)."""
        p = self.mean
        return p * (1 - p)

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    def __add__(self, other: ProportionStatistic) -> ProportionStatistic:
        _same_kind(self, other)
        return ProportionStatistic(n=self.n + other.n, sum=self.sum + other.sum)


@dataclass(frozen=True)
class RatioStatistic:
    """A ratio metric, e.g. revenue per order: sum(numerator) / sum(denominator) over units.

    ``sum_of_products`` is the sum over units of numerator * denominator. The variance is the
    delta-method variance of the ratio of means (Deng, Knoblich & Lu 2018, "Applying the Delta
    Method in Metric Analytics", KDD 2018, the ratio of means; gbstats ``RatioStatistic.variance``).
    """

    numerator: SampleMeanStatistic | ProportionStatistic
    denominator: SampleMeanStatistic | ProportionStatistic
    sum_of_products: float

    def __post_init__(self) -> None:
        if np.ndim(self.numerator.n) == 0 and self.numerator.n != self.denominator.n:
            raise ValueError(
                f"RatioStatistic: numerator.n ({self.numerator.n}) must equal denominator.n "
                f"({self.denominator.n}); both count the same units"
            )

    @property
    def n(self) -> int:
        return self.numerator.n

    @property
    def mean(self) -> float:
        return self.numerator.sum / self.denominator.sum

    @property
    def covariance(self) -> float:
        return sample_covariance(
            self.n, self.numerator.sum, self.denominator.sum, self.sum_of_products
        )

    @property
    def variance(self) -> float:
        # Delta method for g(m, d) = m / d (Deng et al. 2018, ratio of means):
        # Var = s_m^2 / d^2 - 2 m cov / d^3 + m^2 s_d^2 / d^4, per unit.
        m, d = self.numerator.mean, self.denominator.mean
        return (
            self.numerator.variance / d**2
            - 2 * self.covariance * m / d**3
            + m**2 * self.denominator.variance / d**4
        )

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    def __add__(self, other: RatioStatistic) -> RatioStatistic:
        _same_kind(self, other)
        return RatioStatistic(
            numerator=self.numerator + other.numerator,  # type: ignore[operator]
            denominator=self.denominator + other.denominator,  # type: ignore[operator]
            sum_of_products=self.sum_of_products + other.sum_of_products,
        )


def _vector(value: Any, name: str) -> tuple[float, ...]:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1:
        raise ValueError(f"RegressionAdjustedStatistic.{name} must be a number or a 1-d sequence")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class RegressionAdjustedStatistic:
    """A metric with pre-exposure covariates for CUPED (Deng, Xu, Kohavi & Walker 2013).

    ``post_*`` are the moments of the outcome; ``pre_sum`` holds one sum per covariate,
    ``pre_sum_squares`` the covariates' Gram matrix of sums (sum x_i x_j; a number for one
    covariate) and ``post_pre_sum_of_products`` the sums of outcome * covariate. ``theta`` is
    the adjustment coefficient; tests set it to the value pooled over both arms
    (:func:`pooled_theta`). When it is ``None`` the arm's own OLS coefficient is used.
    """

    n: int
    post_sum: float
    post_sum_squares: float
    pre_sum: Any
    pre_sum_squares: Any
    post_pre_sum_of_products: Any
    theta: Any = field(default=None)

    def __post_init__(self) -> None:
        pre_sum = _vector(self.pre_sum, "pre_sum")
        k = len(pre_sum)
        gram = np.asarray(self.pre_sum_squares, dtype=float)
        gram = gram.reshape(1, 1) if gram.ndim == 0 else gram
        if gram.shape != (k, k):
            raise ValueError(
                f"RegressionAdjustedStatistic.pre_sum_squares must be a {k}x{k} matrix of sums "
                "of products of the covariates (a number for one covariate)"
            )
        cross = _vector(self.post_pre_sum_of_products, "post_pre_sum_of_products")
        if len(cross) != k:
            raise ValueError(
                "RegressionAdjustedStatistic.post_pre_sum_of_products needs one entry per "
                f"covariate ({k})"
            )
        object.__setattr__(self, "pre_sum", pre_sum)
        object.__setattr__(self, "pre_sum_squares", tuple(map(tuple, gram.tolist())))
        object.__setattr__(self, "post_pre_sum_of_products", cross)
        if self.theta is not None:
            theta = _vector(self.theta, "theta")
            if len(theta) != k:
                raise ValueError(f"RegressionAdjustedStatistic.theta needs {k} entries")
            object.__setattr__(self, "theta", theta)

    @property
    def post(self) -> SampleMeanStatistic:
        return SampleMeanStatistic(self.n, self.post_sum, self.post_sum_squares)

    @property
    def pre_covariance(self) -> np.ndarray:
        """Sample covariance matrix of the covariates (k x k)."""
        s = np.asarray(self.pre_sum)
        return (np.asarray(self.pre_sum_squares) - np.outer(s, s) / self.n) / (self.n - 1)

    @property
    def post_pre_covariance(self) -> np.ndarray:
        """Sample covariances of the outcome with each covariate (k,)."""
        return sample_covariance(
            self.n,
            self.post_sum,
            np.asarray(self.pre_sum),
            np.asarray(self.post_pre_sum_of_products),
        )

    @property
    def own_theta(self) -> tuple[float, ...]:
        """This arm's OLS coefficient Sigma_xx^-1 sigma_xy (Deng et al. 2013, eq. 4,
        theta = cov(Y, X) / var(X); for several covariates the OLS solution, section 3.2.1)."""
        return _solve_theta(self.pre_covariance, self.post_pre_covariance)

    @property
    def theta_used(self) -> np.ndarray:
        return np.asarray(self.theta if self.theta is not None else self.own_theta)

    @property
    def unadjusted_mean(self) -> float:
        return self.post_sum / self.n

    @property
    def mean(self) -> float:
        # CUPED-adjusted mean Y - theta' X (Deng et al. 2013, eq. 3, without the + theta E[X]:
        # the covariate mean is common to both arms, so it cancels in the difference).
        return self.unadjusted_mean - float(self.theta_used @ (np.asarray(self.pre_sum) / self.n))

    @property
    def variance(self) -> float:
        # Var(Y - theta'X) = s_y^2 + theta' S_xx theta - 2 theta' s_xy (Deng et al. 2013, the
        # display after eq. 3, in matrix form for several covariates).
        theta = self.theta_used
        if self.n <= 1:
            return 0.0
        return float(
            self.post.variance
            + theta @ self.pre_covariance @ theta
            - 2 * theta @ self.post_pre_covariance
        )

    def with_theta(self, theta: Any) -> RegressionAdjustedStatistic:
        return replace(self, theta=theta)

    def __add__(self, other: RegressionAdjustedStatistic) -> RegressionAdjustedStatistic:
        _same_kind(self, other)
        return RegressionAdjustedStatistic(
            n=self.n + other.n,
            post_sum=self.post_sum + other.post_sum,
            post_sum_squares=self.post_sum_squares + other.post_sum_squares,
            pre_sum=np.add(self.pre_sum, other.pre_sum),
            pre_sum_squares=np.add(self.pre_sum_squares, other.pre_sum_squares),
            post_pre_sum_of_products=np.add(
                self.post_pre_sum_of_products, other.post_pre_sum_of_products
            ),
        )


def _solve_theta(cov_xx: np.ndarray, cov_xy: np.ndarray) -> tuple[float, ...]:
    # A singular covariate matrix (e.g. a constant covariate) gets theta = 0 for that direction
    # via the pseudo-inverse, which is the no-adjustment fallback gbstats uses for k = 1.
    if not np.all(np.isfinite(cov_xx)) or not np.all(np.isfinite(cov_xy)):
        return tuple(0.0 for _ in cov_xy)
    return tuple(float(v) for v in np.linalg.pinv(cov_xx) @ cov_xy)


def pooled_theta(
    a: RegressionAdjustedStatistic, b: RegressionAdjustedStatistic
) -> tuple[float, ...]:
    """CUPED coefficient estimated on both arms pooled (Deng et al. 2013, section 3.2.2, after
    eq. 7: "the same theta has to be used for both control and treatment ... estimate it from
    the pooled population").

    Pooling the moments of the two arms, as gbstats' ``compute_theta`` does, keeps theta the
    same for both arms so the adjustment cannot create a difference by itself.
    """
    return (a + b).own_theta


Statistic = (
    SampleMeanStatistic
    | ProportionStatistic
    | RatioStatistic
    | RegressionAdjustedStatistic
    | QuantileStatistic
)


def _same_kind(a: object, b: object) -> None:
    if type(a) is not type(b):
        raise TypeError(
            f"cannot pool a {type(a).__name__} with a {type(b).__name__}; pool statistics of "
            "the same metric kind"
        )


# Short names used by the stable interface (issue 4).
MeanStats = SampleMeanStatistic
ProportionStats = ProportionStatistic
RatioStats = RatioStatistic
CupedStats = RegressionAdjustedStatistic
