"""Economics of an incentive: each user's incremental value of each incentive, and its spend.

Layer: ``experiments.strategy`` (pure numpy, no model, no database). Inputs are the predicted
outcomes per arm, ``(n_users, n_arms)`` with column 0 = no incentive (the layout of
``uplift.UpliftModel.predict_outcomes`` and of the simulator's ``Shop``): the conversion probability
``p`` and the expected gross order value given conversion ``g``. Outputs are
``(n_users, n_incentives)`` = ``n_arms - 1`` columns, the layout :func:`allocate` takes.

Per user i and incentive a (k = per-order cost of a, see :class:`CostModel`):

- expected spend ``c_ia = p_ia * k_ia + per_user_a`` — the incentive is paid on every treated
  order, incremental or not, so it is ``p_ia`` (not ``p_ia - p_i0``) that multiplies ``k_ia``;
- objective ``"profit"``: ``v_ia = m_i (p_ia g_ia - p_i0 g_i0) - c_ia`` (incremental gross margin
  at margin rate ``m_i`` minus the incentive's expected cost);
- objective ``"revenue"``: ``v_ia = p_ia g_ia - p_i0 g_i0`` (incremental gross order value; the
  spend is then governed by the budget alone);
- objective ``"orders"``: ``v_ia = p_ia - p_i0`` (incremental converters).

Spend variance assumes a Bernoulli(p) conversion with the per-order cost at its expectation:
``Var = k^2 p (1 - p)``; the largest possible spend per user is ``k + per_user``. These feed
:mod:`experiments.strategy.pacing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OBJECTIVES: tuple[str, ...] = ("profit", "revenue", "orders")


@dataclass(frozen=True)
class CostModel:
    """How one incentive's cost is counted, in money.

    Per converting (treated) user: ``per_order_fixed + min(per_order_rate * g, per_order_max)``
    where ``g`` is the expected gross order value; per treated user: ``per_user`` (e.g. an e-mail).
    """

    name: str
    per_order_fixed: float = 0.0
    per_order_rate: float = 0.0
    per_order_max: float | None = None
    per_user: float = 0.0

    def __post_init__(self) -> None:
        for field_name in ("per_order_fixed", "per_order_rate", "per_user"):
            value = getattr(self, field_name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"CostModel.{field_name} = {value!r} must be a finite number >= 0")
        if self.per_order_rate > 1:
            raise ValueError(
                f"CostModel.per_order_rate = {self.per_order_rate!r} is a share of the order "
                "value; give 0.1 for 10% off"
            )
        if self.per_order_max is not None and not self.per_order_max >= 0:
            raise ValueError("CostModel.per_order_max must be >= 0 or None (no cap)")

    def per_order(self, order_value: np.ndarray) -> np.ndarray:
        """Cost paid on a converting user's orders of expected gross value ``order_value``."""
        variable = self.per_order_rate * np.asarray(order_value, dtype=np.float64)
        if self.per_order_max is not None:
            variable = np.minimum(variable, self.per_order_max)
        return self.per_order_fixed + variable


def percent_discount(name: str, percent: float, max_discount: float | None = None) -> CostModel:
    """``percent`` % off every order (gross value), optionally capped at ``max_discount``."""
    return CostModel(name, per_order_rate=percent / 100.0, per_order_max=max_discount)


def fixed_coupon(name: str, amount: float) -> CostModel:
    """A coupon worth ``amount`` redeemed by each converting user."""
    return CostModel(name, per_order_fixed=amount)


def free_shipping(name: str, shipping_cost: float) -> CostModel:
    """The expected shipping fee waived per converting user."""
    return CostModel(name, per_order_fixed=shipping_cost)


def gift(name: str, unit_cost: float) -> CostModel:
    """A gift costing ``unit_cost`` given to each converting user."""
    return CostModel(name, per_order_fixed=unit_cost)


def contact(name: str, cost_per_user: float) -> CostModel:
    """A contact (e-mail, letter) paid for every treated user, converting or not."""
    return CostModel(name, per_user=cost_per_user)


@dataclass(frozen=True)
class Economics:
    """Per user and incentive ``(n_users, n_incentives)``: value, expected spend, its variance
    and its largest possible value."""

    value: np.ndarray
    cost: np.ndarray
    cost_var: np.ndarray
    cost_max: np.ndarray


def _outcomes(p_convert: np.ndarray, order_value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_convert, dtype=np.float64)
    g = np.asarray(order_value, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            f"p_convert must be (n_users, n_arms) with column 0 = no incentive and at least one "
            f"incentive column; got shape {p.shape}"
        )
    if g.shape != p.shape:
        raise ValueError(f"order_value must have the shape of p_convert {p.shape}; got {g.shape}")
    if not np.all(np.isfinite(p)) or p.min(initial=0) < 0 or p.max(initial=0) > 1:
        raise ValueError("p_convert must hold probabilities in [0, 1] (no NaN); clip or impute it")
    if not np.all(np.isfinite(g)) or g.min(initial=0) < 0:
        raise ValueError("order_value must be finite and >= 0; impute missing order values")
    return p, g


def expected_spend(
    p_convert: np.ndarray, order_value: np.ndarray, cost_models: Sequence[CostModel]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected spend, its variance and its maximum per user and incentive (see module doc)."""
    p, g = _outcomes(p_convert, order_value)
    models = list(cost_models)
    if len(models) != p.shape[1] - 1:
        raise ValueError(
            f"cost_models has {len(models)} entries but p_convert has {p.shape[1] - 1} incentive "
            "columns; give one CostModel per incentive, in column order (column 0 is none)"
        )
    per_order = np.column_stack([m.per_order(g[:, a + 1]) for a, m in enumerate(models)])
    per_user = np.array([m.per_user for m in models])
    q = p[:, 1:]
    cost = q * per_order + per_user
    cost_var = per_order**2 * q * (1.0 - q)
    return cost, cost_var, per_order + per_user


def incremental_value(
    p_convert: np.ndarray,
    order_value: np.ndarray,
    cost: np.ndarray,
    *,
    margin_rate: float | np.ndarray = 1.0,
    objective: str = "profit",
) -> np.ndarray:
    """Incremental value of each incentive versus none, ``(n_users, n_incentives)`` (module doc).

    ``cost`` is the expected spend ``(n_users, n_incentives)`` (from :func:`expected_spend` or a
    model of its own); it enters only the ``"profit"`` objective.
    """
    p, g = _outcomes(p_convert, order_value)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is unknown; use one of {', '.join(OBJECTIVES)}")
    if objective == "orders":
        return p[:, 1:] - p[:, :1]
    gross = p * g
    if objective == "revenue":
        return gross[:, 1:] - gross[:, :1]
    c = np.asarray(cost, dtype=np.float64)
    if c.shape != (p.shape[0], p.shape[1] - 1):
        raise ValueError(
            f"cost must be (n_users, n_incentives) = {(p.shape[0], p.shape[1] - 1)}; got {c.shape}"
        )
    m = np.asarray(margin_rate, dtype=np.float64)
    if m.ndim == 1:
        if m.shape != (p.shape[0],):
            raise ValueError(f"margin_rate must be a number or ({p.shape[0]},); got {m.shape}")
        m = m[:, None]
    if not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(m > 1):
        raise ValueError("margin_rate must be a share of gross order value in [0, 1]")
    return m * (gross[:, 1:] - gross[:, :1]) - c


def incentive_economics(
    p_convert: np.ndarray,
    order_value: np.ndarray,
    cost_models: Sequence[CostModel],
    *,
    margin_rate: float | np.ndarray = 1.0,
    objective: str = "profit",
) -> Economics:
    """Value and spend of every incentive for every user, ready for :func:`allocate`."""
    cost, cost_var, cost_max = expected_spend(p_convert, order_value, cost_models)
    value = incremental_value(
        p_convert, order_value, cost, margin_rate=margin_rate, objective=objective
    )
    return Economics(value=value, cost=cost, cost_var=cost_var, cost_max=cost_max)
