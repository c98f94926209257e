"""Statistics engine: sufficient statistics in, lifts, intervals and p-values out.

Layer: pure domain core (numpy and scipy only; no pandas, no database). Style follows
GrowthBook's gbstats: frozen sufficient-statistic dataclasses, one small function per test, a
result dataclass with an error message instead of an exception for degenerate data, and a pure
factory (:func:`make_test`) that picks the test from the analysis settings.
"""

from experiments.stats.bayesian import FLAT_PRIOR, GaussianPrior, bayesian_test
from experiments.stats.factory import AnalysisSettings, make_test
from experiments.stats.frequentist import proportion_z_test, welch_test
from experiments.stats.group_sequential import (
    GroupSequentialDesign,
    GroupSequentialResult,
    group_sequential_test,
    lan_demets_boundaries,
    obrien_fleming_spending,
    pocock_spending,
)
from experiments.stats.multiple import (
    adjust_family,
    adjust_p_values,
    benjamini_hochberg_adjust,
    guardrail_test,
    holm_adjust,
)
from experiments.stats.power import (
    fixed_mde,
    fixed_power,
    fixed_sample_size,
    relative_to_absolute,
    sequential_mde,
    sequential_power,
    sequential_sample_size,
)
from experiments.stats.quantile import QuantileStatistic, quantile_ranks
from experiments.stats.results import BayesianResult, SrmResult, TestResult
from experiments.stats.sequential import (
    DEFAULT_TUNING_N,
    mixture_halfwidth,
    mixture_p_value,
    mixture_rho,
    running_min_p_value,
    sequential_test,
    update_running,
)
from experiments.stats.srm import SRM_ALERT_P, srm_check, srm_test
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
    "DEFAULT_TUNING_N",
    "FLAT_PRIOR",
    "SRM_ALERT_P",
    "AnalysisSettings",
    "BayesianResult",
    "CupedStats",
    "GaussianPrior",
    "GroupSequentialDesign",
    "GroupSequentialResult",
    "MeanStats",
    "ProportionStatistic",
    "ProportionStats",
    "QuantileStatistic",
    "RatioStatistic",
    "RatioStats",
    "RegressionAdjustedStatistic",
    "SampleMeanStatistic",
    "SrmResult",
    "Statistic",
    "TestResult",
    "adjust_family",
    "adjust_p_values",
    "bayesian_test",
    "benjamini_hochberg_adjust",
    "fixed_mde",
    "fixed_power",
    "fixed_sample_size",
    "group_sequential_test",
    "guardrail_test",
    "holm_adjust",
    "lan_demets_boundaries",
    "make_test",
    "mixture_halfwidth",
    "mixture_p_value",
    "mixture_rho",
    "obrien_fleming_spending",
    "pocock_spending",
    "pooled_theta",
    "proportion_z_test",
    "quantile_ranks",
    "relative_to_absolute",
    "running_min_p_value",
    "sequential_mde",
    "sequential_power",
    "sequential_sample_size",
    "sequential_test",
    "srm_check",
    "srm_test",
    "update_running",
    "welch_test",
]
