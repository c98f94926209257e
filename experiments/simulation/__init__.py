"""A simulated e-commerce shop with known causal truth, for the demo, tests and benchmarks.

Layer: ``experiments.simulation`` (numpy, scipy, pandas; no database, no web, no torch).

    >>> shop = simulate_shop(n_users=1_000, seed=0)
    >>> shop.true_effect("margin").shape
    (1000, 5)

The generative model (equations, parameters, incentives and their cost models) is documented in
``docs/simulator.md``.
"""

from experiments.simulation.events import EVENT_CODES, TRAFFIC_EVENTS
from experiments.simulation.incentives import (
    CATEGORIES,
    COST_MODELS,
    DEFAULT_INCENTIVES,
    INCENTIVE_KINDS,
    Incentive,
)
from experiments.simulation.population import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from experiments.simulation.shop import OUTCOME_COLUMNS, OUTCOMES, Shop, simulate_shop

__all__ = [
    "CATEGORICAL_FEATURES",
    "CATEGORIES",
    "COST_MODELS",
    "DEFAULT_INCENTIVES",
    "EVENT_CODES",
    "INCENTIVE_KINDS",
    "NUMERIC_FEATURES",
    "OUTCOMES",
    "OUTCOME_COLUMNS",
    "TRAFFIC_EVENTS",
    "Incentive",
    "Shop",
    "simulate_shop",
]
