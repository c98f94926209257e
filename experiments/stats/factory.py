"""Pick the test from an experiment's analysis settings (a pure factory, no I/O).

Layer: pure domain core. ``make_test(settings)`` returns a one-argument-pair callable
``test(control, treatment) -> TestResult | BayesianResult``, so callers (analysis, services,
web) never branch on the engine themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from experiments.stats.bayesian import FLAT_PRIOR, GaussianPrior, bayesian_test
from experiments.stats.frequentist import welch_test
from experiments.stats.results import BayesianResult, TestResult
from experiments.stats.sequential import DEFAULT_TUNING_N, sequential_test
from experiments.stats.statistics import Statistic

Engine = Literal["frequentist", "bayesian"]
DifferenceType = Literal["relative", "absolute"]
StatTest = Callable[[Statistic, Statistic], TestResult | BayesianResult]


@dataclass(frozen=True)
class AnalysisSettings:
    """How an experiment's metrics are compared (stored with the experiment)."""

    engine: Engine = "frequentist"
    sequential: bool = True
    difference_type: DifferenceType = "relative"
    alpha: float = 0.05
    tuning_n: float = DEFAULT_TUNING_N
    prior: GaussianPrior = field(default=FLAT_PRIOR)

    def __post_init__(self) -> None:
        if self.engine not in ("frequentist", "bayesian"):
            raise ValueError(f"engine must be 'frequentist' or 'bayesian', got {self.engine!r}")
        if self.difference_type not in ("relative", "absolute"):
            raise ValueError(
                f"difference_type must be 'relative' or 'absolute', got {self.difference_type!r}"
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.tuning_n > 0:
            raise ValueError(f"tuning_n must be positive, got {self.tuning_n}")


def make_test(settings: AnalysisSettings) -> StatTest:
    """The test the settings ask for, with its options bound."""
    relative = settings.difference_type == "relative"
    if settings.engine == "bayesian":
        return partial(bayesian_test, relative=relative, prior=settings.prior, alpha=settings.alpha)
    if settings.sequential:
        return partial(
            sequential_test, alpha=settings.alpha, relative=relative, tuning_n=settings.tuning_n
        )
    return partial(welch_test, alpha=settings.alpha, relative=relative)
