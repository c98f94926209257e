"""Pacing a budget across days: each day's lambda re-solved from what was actually spent.

Layer: ``experiments.strategy`` (pure numpy). A strategy's budget covers a period of ``days``; a
daily schedule (``"even"`` or custom weights, e.g. more on weekends) says how it should be spread.
:class:`BudgetPacer` is the feedback controller; :func:`serve_days` runs it over a simulated
period in which users arrive day by day and realized spend is random.

The controller, each morning (day ``d``, weights ``w``, total budget ``B``, realized spend so far
``S``):

1. **Re-solve for the remaining budget over the remaining days** (the re-solving heuristic of
   network revenue management: Jasin & Kumar, "A re-solving heuristic with bounded revenue loss
   for network revenue management with customer choice", *Math. Oper. Res.* 37(2), 2012, 313-345;
   lambda plays the role of the bid price of budget, Talluri & van Ryzin, *The Theory and Practice
   of Revenue Management*, 2004, section 3.3): today's target is
   ``T_d = (B - S) * w_d / sum_{j >= d} w_j``. Overspending yesterday lowers every later target,
   underspending raises them — integral feedback on the budget error.
2. **Correct the cost model by what was observed**: the planned (expected) spend of the incentives
   issued so far, ``P``, against their realized spend ``S``; the planning budget is
   ``T_d * P / S`` (ratio estimator, no correction before anything was spent, clipped to
   ``[1/4, 4]``). A model that over- or under-estimates costs by a constant factor is thereby
   corrected from the first day on instead of only through the remaining budget.
3. **Scale to the planning sample**: lambda is solved by :func:`allocate` on the scored population
   (``n`` users) for the budget ``T_d * (P / S) * n / E_d``, where ``E_d`` is the day's forecast of
   arrivals, so that the expected spend of a random day's arrivals is the target.

Serving applies the day's plan to the day's arrivals, in arrival order, under the hard cap of
:func:`experiments.strategy.pacing.issue_within_cap` on the *total* budget with each user's
realized cost (checkout incentives: the discount is known on the order that redeems it, so the
ledger can refuse it before granting it). Realized spend therefore never exceeds the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.strategy.allocation import allocate
from experiments.strategy.pacing import issue_within_cap
from experiments.strategy.validation import check_budget, check_matrix, check_pair

SCHEDULES: tuple[str, ...] = ("even",)
RATIO_BOUNDS = (0.25, 4.0)


def schedule_weights(days: int, schedule: str | Sequence[float] = "even") -> np.ndarray:
    """Daily shares of the budget, summing to 1: ``"even"`` or one non-negative weight per day."""
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ValueError(f"days = {days!r} must be a whole number of days >= 1")
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(
                f"schedule {schedule!r} is unknown; use 'even' or a list of {days} daily weights"
            )
        return np.full(days, 1.0 / days)
    w = np.asarray(schedule, dtype=np.float64)
    if w.shape != (days,):
        raise ValueError(f"schedule has {w.size} weights; give one per day ({days})")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("schedule weights must be finite, >= 0, and not all 0")
    return w / w.sum()


def day_target(remaining: float, weights: np.ndarray, day: int) -> float:
    """Day ``day``'s budget: ``remaining`` times its share of the schedule's remaining days."""
    rest = float(weights[day:].sum())
    return max(0.0, remaining) * float(weights[day]) / rest if rest > 0 else 0.0


class BudgetPacer:
    """The feedback controller of the module doc; call :meth:`record` once per day, in order."""

    def __init__(
        self,
        budget: float,
        days: int,
        schedule: str | Sequence[float] = "even",
        *,
        calibrate: bool = True,
    ) -> None:
        self.budget = check_budget(budget)
        self.weights = schedule_weights(days, schedule)
        self.calibrate = calibrate
        self.spent: list[float] = []
        self.planned: list[float] = []

    @property
    def days(self) -> int:
        return int(self.weights.size)

    @property
    def day(self) -> int:
        """Index of the day to plan next (0-based)."""
        return len(self.spent)

    @property
    def remaining(self) -> float:
        return max(0.0, self.budget - float(sum(self.spent)))

    def target(self) -> float:
        """Today's budget: the remaining budget times today's share of the remaining schedule."""
        if self.day >= self.days:
            raise ValueError(f"the period of {self.days} days is over; start a new pacer")
        return day_target(self.remaining, self.weights, self.day)

    def cost_ratio(self) -> float:
        """Planned / realized spend so far (1 before anything was spent), clipped."""
        spent, planned = float(sum(self.spent)), float(sum(self.planned))
        if not self.calibrate or spent <= 0 or planned <= 0:
            return 1.0
        return float(np.clip(planned / spent, *RATIO_BOUNDS))

    def planning_budget(self, sample_size: int, expected_arrivals: float) -> float:
        """The budget to solve lambda for on a planning sample of ``sample_size`` users."""
        if not expected_arrivals > 0:
            raise ValueError("expected_arrivals must be > 0 (the day's forecast of users)")
        return self.target() * self.cost_ratio() * sample_size / float(expected_arrivals)

    def record(self, realized: float, planned: float) -> None:
        """Close the day: its realized spend and the planned (expected) spend of what was issued."""
        if not (np.isfinite(realized) and np.isfinite(planned)) or realized < 0 or planned < 0:
            raise ValueError("realized and planned spend must be finite and >= 0")
        if self.day >= self.days:
            raise ValueError(f"the period of {self.days} days is over")
        self.spent.append(float(realized))
        self.planned.append(float(planned))


@dataclass(frozen=True, eq=False)
class PacedDays:
    """A served period: per user the arm issued (-1 none), the day's plan propensity and whether
    the hard cap refused the planned incentive; per day target, lambda, spend; totals."""

    arm: np.ndarray
    propensity: np.ndarray
    capped: np.ndarray
    day_target: np.ndarray
    day_lambda: np.ndarray
    day_spend: np.ndarray
    day_planned: np.ndarray
    budget: float
    spend: float
    value: float
    plans: list[Any] = field(repr=False, default_factory=list)


def _arrival_days(arrival_day: Any, n: int, days: int) -> np.ndarray:
    day = np.asarray(arrival_day)
    if day.shape != (n,) or not np.issubdtype(day.dtype, np.integer):
        raise ValueError(f"arrival_day must be ({n},) integers (day index, -1 = never arrives)")
    if day.size and (day.min() < -1 or day.max() >= days):
        raise ValueError(f"arrival_day holds days outside -1..{days - 1}")
    return day


def serve_days(
    value: np.ndarray,
    cost: np.ndarray,
    realized_cost: np.ndarray,
    arrival_day: np.ndarray,
    budget: float,
    *,
    days: int,
    schedule: str | Sequence[float] = "even",
    expected_arrivals: Sequence[float] | None = None,
    calibrate: bool = True,
    resolve: bool = True,
    true_value: np.ndarray | None = None,
    order_seed: int = 0,
    **allocate_kwargs: Any,
) -> PacedDays:
    """Serve a period of ``days`` under :class:`BudgetPacer` (module doc).

    value, cost: the model's ``(n, k)`` estimates for the scored population (the planning
    sample); realized_cost: what giving user i arm a actually costs ``(n, k)`` (drawn by a
    simulator); arrival_day: the day each user arrives. expected_arrivals: the forecast per day
    (default: the population spread evenly). resolve=False is the open-loop baseline: lambda
    solved once for the whole budget and kept. true_value (default ``value``) scores the result.
    Extra keyword arguments go to :func:`allocate` (holdout, explore, unit_ids, arms, ...).
    """
    value, cost = check_pair(value, cost)
    realized = check_matrix("realized_cost", realized_cost, value)
    if not np.all(np.isfinite(realized)) or np.any(realized < 0):
        raise ValueError("realized_cost must be finite and >= 0")
    scored = value if true_value is None else check_matrix("true_value", true_value, value)
    n = value.shape[0]
    pacer = BudgetPacer(budget, days, schedule, calibrate=calibrate and resolve)
    day = _arrival_days(arrival_day, n, pacer.days)
    forecast = (
        np.full(pacer.days, n / pacer.days)
        if expected_arrivals is None
        else np.asarray(expected_arrivals, dtype=np.float64)
    )
    if forecast.shape != (pacer.days,) or not np.all(forecast > 0):
        raise ValueError(f"expected_arrivals must be {pacer.days} positive numbers (one per day)")
    rng = np.random.default_rng(order_seed)
    arm = np.full(n, -1, dtype=np.int32)
    propensity = np.ones(n)
    capped = np.zeros(n, dtype=bool)
    lambdas, targets, plans = [], [], []
    open_loop = None if resolve else allocate(value, cost, pacer.budget, **allocate_kwargs)
    for d in range(pacer.days):
        targets.append(pacer.target())
        if open_loop is not None:
            plan = open_loop
        else:
            plan = allocate(value, cost, pacer.planning_budget(n, forecast[d]), **allocate_kwargs)
        plans.append(plan)
        lambdas.append(plan.lambda_)
        rows = np.flatnonzero(day == d)
        rows = rows[rng.permutation(rows.size)]  # arrival order within the day
        wanted = np.asarray(plan.arm)[rows]
        pick = np.maximum(wanted, 0)
        worst = np.where(wanted >= 0, realized[rows, pick], 0.0)
        issued = issue_within_cap(wanted, worst, pacer.budget, float(sum(pacer.spent)))
        arm[rows] = issued
        propensity[rows] = np.asarray(plan.propensity)[rows]
        capped[rows] = (wanted >= 0) & (issued < 0)
        given = issued >= 0
        pacer.record(
            float(realized[rows[given], issued[given]].sum()),
            float(cost[rows[given], issued[given]].sum()),
        )
    treated = np.flatnonzero(arm >= 0)
    return PacedDays(
        arm=arm,
        propensity=propensity,
        capped=capped,
        day_target=np.array(targets),
        day_lambda=np.array(lambdas),
        day_spend=np.array(pacer.spent),
        day_planned=np.array(pacer.planned),
        budget=pacer.budget,
        spend=float(sum(pacer.spent)),
        value=float(scored[treated, arm[treated]].sum()),
        plans=plans,
    )
