"""Statistics engine: sufficient statistics in, lifts, intervals and p-values out.

Layer: pure domain core (numpy and scipy only; no pandas, no database). Style follows
GrowthBook's gbstats: frozen sufficient-statistic dataclasses, one small function per test, a
result dataclass with an error message instead of an exception for degenerate data.
"""

from experiments.stats.frequentist import proportion_z_test, welch_test
from experiments.stats.results import BayesianResult, SrmResult, TestResult
from experiments.stats.sequential import (
    mixture_halfwidth,
    mixture_p_value,
    mixture_rho,
    running_min_p_value,
    sequential_test,
    update_running,
)
from experiments.stats.statistics import (
    CupedStats,
    MeanStats,
    ProportionStatistic,
    ProportionStats,
    RatioStatistic,
    RatioStats,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    Statistic,
    pooled_theta,
)

__all__ = [
    "BayesianResult",
    "CupedStats",
    "MeanStats",
    "ProportionStatistic",
    "ProportionStats",
    "RatioStatistic",
    "RatioStats",
    "RegressionAdjustedStatistic",
    "SampleMeanStatistic",
    "SrmResult",
    "Statistic",
    "TestResult",
    "mixture_halfwidth",
    "mixture_p_value",
    "mixture_rho",
    "pooled_theta",
    "proportion_z_test",
    "running_min_p_value",
    "sequential_test",
    "update_running",
    "welch_test",
]
