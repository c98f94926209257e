"""Strategy selection: budgeted incentive allocation with holdout, exploration and OPE.

Layer: ``experiments.strategy`` — pure numpy/scipy (no model, no database, no web). It turns
per-user values and costs of each incentive into decisions under a budget:

- :mod:`.economics` — incremental value and expected spend of each incentive per user;
- :func:`allocate` — the multiple-choice knapsack (Lagrangian dual, exact breakpoint bisection,
  greedy fill), holdout / explore / exploit buckets and logged propensities;
- :mod:`.evaluation` — off-policy estimators (IPW, SNIPW, DM, DR, SNDR, Switch-DR, DRos) matching
  Open Bandit Pipeline 0.5.7;
- :mod:`.pacing` — a safety margin so that realized (random) spend stays within the budget, and
  the hard cap of a spend ledger (``issue_within_cap``, and ``serve_within_cap`` for one served
  decision with the capped policy's propensity);
- :mod:`.daily_pacing` — a daily budget schedule whose lambda is re-solved each day for the
  remaining budget from what was actually spent (a feedback controller);
- :mod:`.spend_curve` — a plan's spend per user as a function of lambda, from which a paced day's
  lambda is read without the population.
"""

from experiments.strategy.allocation import Allocation, Decisions, Policy, allocate
from experiments.strategy.buckets import BUCKETS
from experiments.strategy.daily_pacing import (
    BudgetPacer,
    PacedDays,
    day_target,
    schedule_weights,
    serve_days,
)
from experiments.strategy.economics import (
    OBJECTIVES,
    CostModel,
    Economics,
    expected_spend,
    incentive_economics,
    incremental_value,
)
from experiments.strategy.evaluation import ESTIMATORS, bootstrap_interval, estimate, feedback
from experiments.strategy.pacing import (
    PacedAllocation,
    allocate_with_margin,
    issue_within_cap,
    serve_within_cap,
)
from experiments.strategy.spend_curve import lambda_for_spend, spend_curve

__all__ = [
    "BUCKETS",
    "ESTIMATORS",
    "OBJECTIVES",
    "Allocation",
    "BudgetPacer",
    "CostModel",
    "Decisions",
    "Economics",
    "PacedAllocation",
    "PacedDays",
    "Policy",
    "allocate",
    "allocate_with_margin",
    "bootstrap_interval",
    "day_target",
    "estimate",
    "expected_spend",
    "feedback",
    "incentive_economics",
    "incremental_value",
    "schedule_weights",
    "serve_days",
    "spend_curve",
    "lambda_for_spend",
    "issue_within_cap",
    "serve_within_cap",
]
