"""Warehouse-native analysis: sufficient statistics per variant, computed by SQL in the database.

Layer: experiments.analysis (SQLAlchemy Core, experiments.db, experiments.stats; no pandas, no
web). Raw event rows never come into Python: the database returns one row per variant (×
dimension value) with counts, sums, sums of squares and sums of cross products, which
``MetricStatistics.to_statistic()`` hands to ``experiments.stats``. ``experiment_statistics_sql``
and ``compile_sql`` give the exact SQL behind every number ("show SQL", report appendix).
"""

from experiments.analysis.metrics import KINDS, MetricSpec
from experiments.analysis.query import Dimension, build_statistics_query, compile_sql
from experiments.analysis.sql_time import shift_hours
from experiments.analysis.statistics import (
    MetricStatistics,
    experiment_statistics,
    experiment_statistics_sql,
)

__all__ = [
    "KINDS",
    "Dimension",
    "MetricSpec",
    "MetricStatistics",
    "build_statistics_query",
    "compile_sql",
    "experiment_statistics",
    "experiment_statistics_sql",
    "shift_hours",
]
