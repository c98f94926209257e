"""``allocate``: the budgeted decision of which incentive (or none) each user gets.

Layer: ``experiments.strategy`` (pure numpy; no model, database or web). Inputs are per-user
values and expected spends of each incentive ``(n_users, n_incentives)`` — no incentive is implicit
with value 0 and cost 0 — and the budget. Arms in the result are ``-1`` = no incentive, else the
column index of the incentive (so the simulator's / model's arm index is ``arm + 1``).

Steps: validate; split units into holdout / explore / exploit buckets by a hash of the unit id
(:mod:`experiments.strategy.buckets`); draw the explore arms and charge their spend to the budget;
solve the multiple-choice knapsack for the exploit bucket (:mod:`experiments.strategy.knapsack`);
log for every unit the probability with which its arm was chosen. Deterministic: the same inputs
give the same result.

Guarantee: the planned (expected) spend ``sum_i cost[i, arm_i]`` never exceeds ``budget``, caps
are never exceeded. Realized spend is random; see :mod:`experiments.strategy.pacing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from experiments.strategy import buckets as bk
from experiments.strategy.exact import exact_sum, float_units, to_float
from experiments.strategy.knapsack import rule_choice, solve
from experiments.strategy.validation import (
    check_budget,
    check_matrix,
    check_pair,
    resolve_caps,
    resolve_eligible,
)


@dataclass(frozen=True, eq=False)
class Policy:
    """The decision rule behind a plan, for serving one request or a batch without re-solving.

    ``decide`` applies the buckets and, in the exploit bucket, ``argmax(0, s - lambda c - mu)``
    (ties to the cheaper arm). It does not track spend: a spend ledger must stop issuing
    incentives once the budget is used up.
    """

    lambda_: float
    mu: np.ndarray
    holdout: float
    explore: float
    salt: str
    hash_version: int
    roi_floor: float | None
    arms: tuple[str, ...]

    def decide(
        self,
        unit_ids: np.ndarray | Sequence[str],
        value: np.ndarray,
        cost: np.ndarray,
        *,
        eligible: np.ndarray | Mapping[str, np.ndarray] | None = None,
        value_lower: np.ndarray | None = None,
    ) -> Decisions:
        """Decisions for ``unit_ids`` given their value and cost rows ``(n, n_incentives)``."""
        mask, exploit = self._exploit(value, cost, eligible, value_lower)
        ids = np.asarray(unit_ids)
        code, explore_arm = bk.assign(
            ids, mask.shape[0], mask, self.holdout, self.explore, self.salt, self.hash_version
        )
        arm = np.where(code == bk.EXPLOIT, exploit, np.where(code == bk.EXPLORE, explore_arm, -1))
        n_elig = mask.sum(axis=1)
        p = bk.propensity(arm, exploit, n_elig, self.holdout, self.explore)
        return Decisions(arm=arm.astype(np.int32), bucket_code=code, propensity=p, arms=self.arms)

    def action_probabilities(
        self,
        value: np.ndarray,
        cost: np.ndarray,
        *,
        eligible: np.ndarray | Mapping[str, np.ndarray] | None = None,
        value_lower: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(n, 1 + n_incentives)`` probability of each arm under ``decide`` (column 0 = none)."""
        mask, exploit = self._exploit(value, cost, eligible, value_lower)
        return bk.action_probabilities(exploit, mask, self.holdout, self.explore)

    def _exploit(
        self,
        value: np.ndarray,
        cost: np.ndarray,
        eligible: np.ndarray | Mapping[str, np.ndarray] | None,
        value_lower: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The eligibility mask and the exploit bucket's choice for every row."""
        value, cost = check_pair(value, cost, len(self.arms))
        mask = resolve_eligible(eligible, value, cost, self.arms)
        score = value if value_lower is None else check_matrix("value_lower", value_lower, value)
        exploit = rule_choice(
            score, cost, _roi_mask(mask, score, cost, self.roi_floor), self.lambda_, self.mu
        )
        return mask, exploit


@dataclass(frozen=True, eq=False)
class Decisions:
    """Per unit: arm (-1 = none), bucket code (0 holdout, 1 explore, 2 exploit), propensity."""

    arm: np.ndarray
    bucket_code: np.ndarray
    propensity: np.ndarray
    arms: tuple[str, ...]

    @cached_property
    def bucket(self) -> np.ndarray:
        return np.asarray(bk.BUCKETS)[self.bucket_code]

    @cached_property
    def arm_name(self) -> np.ndarray:
        return np.asarray(("none", *self.arms), dtype=object)[self.arm + 1]


@dataclass(frozen=True, eq=False)
class Allocation(Decisions):
    """The plan: per-user decisions plus the optimizer's multipliers, spend and bounds.

    ``value`` is the sum of the point values of the chosen arms; ``objective`` the sum of the
    scores optimized (``value_lower`` when given, else ``value``). ``dual_bound`` >= the best
    objective any assignment could reach (with holdout and explore draws fixed) >= ``objective``;
    ``gap = dual_bound - objective``.
    """

    exploit_arm: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    eligible: np.ndarray = field(repr=False, default_factory=lambda: np.empty((0, 0)))
    expected_value: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    expected_cost: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    lambda_: float = 0.0
    mu: np.ndarray = field(default_factory=lambda: np.empty(0))
    budget: float = 0.0
    spend: float = 0.0
    value: float = 0.0
    objective: float = 0.0
    dual_bound: float = 0.0
    gap: float = 0.0
    spend_by_arm: np.ndarray = field(default_factory=lambda: np.empty(0))
    value_by_arm: np.ndarray = field(default_factory=lambda: np.empty(0))
    count_by_arm: np.ndarray = field(default_factory=lambda: np.empty(0))
    holdout: float = 0.0
    explore: float = 0.0
    policy: Policy | None = None

    def action_probabilities(self) -> np.ndarray:
        """``(n_users, 1 + n_incentives)`` probability of each arm (column 0 = none)."""
        return bk.action_probabilities(self.exploit_arm, self.eligible, self.holdout, self.explore)

    def summary(self) -> dict[str, object]:
        """Plan-level numbers as plain Python (JSON-ready) for services and the API."""
        return {
            "lambda": self.lambda_,
            "mu": self.mu.tolist(),
            "budget": self.budget,
            "spend": self.spend,
            "value": self.value,
            "objective": self.objective,
            "dual_bound": self.dual_bound,
            "gap": self.gap,
            "arms": list(self.arms),
            "spend_by_arm": self.spend_by_arm.tolist(),
            "value_by_arm": self.value_by_arm.tolist(),
            "count_by_arm": self.count_by_arm.tolist(),
            "count_by_bucket": np.bincount(self.bucket_code, minlength=3).tolist(),
        }


def _roi_mask(mask: np.ndarray, score: np.ndarray, cost: np.ndarray, roi_floor) -> np.ndarray:
    if roi_floor is None:
        return mask
    return mask & ((cost <= 0) | (score >= roi_floor * cost))


def allocate(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float,
    holdout: float = 0.0,
    explore: float = 0.0,
    seed: int = 0,
    unit_ids: np.ndarray | Sequence[str] | None = None,
    *,
    eligible: np.ndarray | Mapping[str, np.ndarray] | None = None,
    caps: Sequence[float] | Mapping[str, float] | None = None,
    roi_floor: float | None = None,
    value_lower: np.ndarray | None = None,
    arms: Sequence[str] | None = None,
    salt: str | None = None,
    hash_version: int = 1,
) -> Allocation:
    """Choose at most one incentive per user so that the expected spend fits ``budget``.

    value, cost: ``(n_users, n_incentives)``; float32 input is kept in float32 (half the memory
    and time). holdout, explore: shares of units (by hash of ``unit_ids``, required when either is
    > 0) kept without incentive / given a uniformly random eligible arm. seed: picks the hash salt
    (``salt`` overrides it). eligible: bool ``(n, k)`` or ``{arm_name: (n,) bool}``; NaN values are
    allowed only where not eligible. caps: max users per arm (inventory; ``inf`` = no cap).
    roi_floor: an arm is used only if ``score >= roi_floor * cost``. value_lower: a conservative
    score (e.g. the lower end of the effect interval in money) optimized instead of ``value``.
    arms: names of the incentives (default ``arm_0..``) for mappings and reports.
    """
    value, cost = check_pair(value, cost)
    n, k = value.shape
    names = tuple(arms) if arms is not None else tuple(f"arm_{a}" for a in range(k))
    if len(names) != k or len(set(names)) != k or "none" in names:
        raise ValueError(f"arms must be {k} distinct names other than 'none'; got {names}")
    budget = check_budget(budget)
    mask = resolve_eligible(eligible, value, cost, names)
    score = value if value_lower is None else check_matrix("value_lower", value_lower, value)
    if value_lower is not None and not np.all(np.isfinite(score[mask])):
        raise ValueError("value_lower has NaN or inf where eligible; mark those eligible=False")
    cap_arr = resolve_caps(caps, names)
    if roi_floor is not None and not np.isfinite(roi_floor):
        raise ValueError(f"roi_floor = {roi_floor!r} must be a finite number or None")
    salt = f"liftlab-strategy-{seed}" if salt is None else str(salt)

    ids = None if unit_ids is None else np.asarray(unit_ids)
    code, explore_arm = bk.assign(ids, n, mask, holdout, explore, salt, hash_version)
    opt_mask = _roi_mask(mask, score, cost, roi_floor)
    exploit_rows = np.flatnonzero(code == bk.EXPLOIT)
    everyone = exploit_rows.size == n
    arm = np.where(code == bk.EXPLORE, explore_arm, -1).astype(np.int32)

    fixed_rows = np.flatnonzero((code == bk.EXPLORE) & (arm >= 0))
    fixed_units = exact_sum(cost[fixed_rows, arm[fixed_rows]])  # exact: order-independent
    fixed_spend = to_float(fixed_units)
    if fixed_units > float_units(budget):  # exact, as every budget comparison
        raise ValueError(
            f"the explore bucket alone plans {fixed_spend:.6g} of spend, more than budget "
            f"{budget:.6g}; lower explore or raise the budget"
        )
    sub_caps = None
    if cap_arr is not None:
        sub_caps = cap_arr - np.bincount(arm[fixed_rows], minlength=k)
        if np.any(sub_caps < 0):
            raise ValueError("the explore bucket alone exceeds caps; lower explore or raise caps")

    if everyone:
        sol = solve(score, cost, opt_mask, budget - fixed_spend, sub_caps)
        exploit_arm = sol.arm
        arm = sol.arm.astype(np.int32)
    else:
        rows = exploit_rows
        sol = solve(score[rows], cost[rows], opt_mask[rows], budget - fixed_spend, sub_caps)
        arm[rows] = sol.arm
        others = np.flatnonzero(code != bk.EXPLOIT)  # what the exploit policy would have done
        exploit_arm = np.empty(n, dtype=np.int32)
        exploit_arm[rows] = sol.arm
        exploit_arm[others] = rule_choice(
            score[others], cost[others], opt_mask[others], sol.lam, sol.mu
        )

    total_units = fixed_units + sol.spend_units  # the exact spend of every chosen arm
    limit = float_units(budget)
    while True:
        chosen = np.flatnonzero(arm >= 0)
        a = arm[chosen]
        flat = chosen * k + a  # row-major (n, k): faster than 2-D fancy indexing
        ev = np.zeros(n)
        ec = np.zeros(n)
        ev[chosen] = value.ravel().take(flat)
        ec[chosen] = cost.ravel().take(flat)
        if total_units <= limit:  # exact, as every budget comparison
            break
        # rounding of the exploit part against the explore part: drop the exploit user with
        # the least value per cost until the total fits
        ex = chosen[(code[chosen] == bk.EXPLOIT) & (ec[chosen] > 0)]
        worst = ex[np.argmin(ev[ex] / ec[ex])]
        total_units -= float_units(ec[worst])
        arm[worst] = exploit_arm[worst] = -1
    spend = to_float(total_units)  # correctly rounded, so <= budget
    if everyone and holdout == 0 and explore == 0:
        p = np.ones(n)  # the exploit policy is deterministic
    else:
        p = bk.propensity(arm, exploit_arm, mask.sum(axis=1), holdout, explore)
    sc = ev[chosen] if value_lower is None else score.ravel().take(flat).astype(np.float64)
    objective = float(sc.sum())
    fixed_obj = float(sc[code[chosen] != bk.EXPLOIT].sum()) if not everyone else 0.0
    dual = fixed_obj + sol.dual_bound
    policy = Policy(sol.lam, sol.mu, holdout, explore, salt, hash_version, roi_floor, names)
    for arr in (arm, code, p, ev, ec, exploit_arm, sol.mu):
        arr.setflags(write=False)  # the result is frozen, arrays included
    return Allocation(
        arm=arm,
        bucket_code=code,
        propensity=p,
        arms=names,
        exploit_arm=exploit_arm,
        eligible=mask,
        expected_value=ev,
        expected_cost=ec,
        lambda_=sol.lam,
        mu=sol.mu,
        budget=budget,
        spend=spend,
        value=float(ev.sum()),
        objective=objective,
        dual_bound=dual,
        gap=dual - objective,
        spend_by_arm=np.bincount(a, weights=ec[chosen], minlength=k),
        value_by_arm=np.bincount(a, weights=ev[chosen], minlength=k),
        count_by_arm=np.bincount(a, minlength=k),
        holdout=holdout,
        explore=explore,
        policy=policy,
    )
