"""A simulated shop: population, incentive catalog, true per-user effects, and outcome sampling.

Layer: ``experiments.simulation``, used by the demo, the tests and the benchmarks as a world whose
truth is known. ``simulate_shop`` builds a :class:`Shop`; its arrays are the ground truth, and
``sample_outcomes`` / ``randomized_experiment`` draw realized outcomes whose expectations are
exactly those arrays. Deterministic by seed: every draw comes from a ``numpy.random.Generator``
seeded from ``SeedSequence([seed, stream, ...])``, never from global state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import expit

from experiments.simulation.incentives import DEFAULT_INCENTIVES, Incentive
from experiments.simulation.population import BASKET_SIGMA, Population, make_population
from experiments.simulation.response import (
    BUNDLE_LIFT,
    TASTE_SD,
    ArmModel,
    control_arm,
    incentive_arm,
    user_traits,
)

OUTCOMES: tuple[str, ...] = ("conversion", "revenue", "margin", "retention", "cost", "orders")
OUTCOME_COLUMNS: tuple[str, ...] = (
    "converted",
    "revenue",
    "margin",
    "incentive_cost",
    "orders",
    "retained_30d",
)
TASTE_MODES: tuple[str, ...] = ("drawn", "averaged")
TASTE_NODES = 24  # Gauss-Hermite nodes for the average over the taste term
_KIND_CODES = {"none": 0, "percent_discount": 1, "fixed_coupon": 2, "free_shipping": 3, "gift": 4}
_KIND_CODES["bundle"] = 5

# Stream identifiers of SeedSequence([seed, stream, ...]) so each use has its own generator.
STREAM_POPULATION, STREAM_OUTCOMES, STREAM_EXPERIMENT, STREAM_SEQUENCES, STREAM_TRAFFIC = range(5)


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(e) for e in entropy]))


@dataclass(frozen=True)
class Orders:
    """Orders drawn for a set of users: per-order rows (``owner`` indexes the users drawn)."""

    owner: np.ndarray
    value: np.ndarray
    cost: np.ndarray


class Shop:
    """A simulated shop with known truth. Build it with :func:`simulate_shop`.

    Arrays are ``(n_users, n_arms)``, column 0 is the control arm ``"none"``; they are read-only.
    """

    def __init__(
        self, population: Population, arms: list[ArmModel], incentives: list[Incentive], seed: int
    ):
        self.seed = int(seed)
        self.users: pd.DataFrame = population.users
        self.incentives: list[Incentive] = list(incentives)
        self.arms: list[str] = [arm.key for arm in arms]
        self._pop = population

        def stack(name: str) -> np.ndarray:
            # (n_arms, n) stacked then transposed: a Fortran-ordered (n, n_arms) array whose
            # columns are contiguous, several times cheaper to build than a column_stack
            out = np.stack([np.broadcast_to(getattr(a, name), (self.n_users,)) for a in arms]).T
            out.setflags(write=False)
            return out

        self._logit = stack("logit")
        self.taste = stack("taste")  # ε per user and arm (0 for the control)
        self._basket_mu = stack("basket_mu")
        self._extra = stack("extra_orders")
        self._retention_logit = stack("retention_logit")
        # coupon top-up and bundle take-up: per arm, only where the arm has them (else None)
        self._topup = [a.topup if a.kind == "fixed_coupon" else None for a in arms]
        self._take = [a.bundle_take if a.kind == "bundle" else None for a in arms]
        self._cost_if = stack("cost")
        self._kind = np.array([_KIND_CODES[a.kind] for a in arms])
        self._param = {
            name: np.array([float(a.params.get(name, 0.0)) for a in arms])
            for name in ("percent", "amount", "min_basket", "threshold", "unit_cost")
        }
        self._gm = population.gross_margin
        self._r0 = expit(population.retention_logit)

        self.p_convert: np.ndarray = _frozen(expit(self._logit))
        self.order_value: np.ndarray = stack("gross")
        self.expected_cost: np.ndarray = _frozen(self._expected(self.p_convert, "cost"))
        self.expected_margin: np.ndarray = _frozen(self._expected(self.p_convert, "margin"))

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_arms(self) -> int:
        return len(self.arms)

    def expected(self, outcome: str = "conversion", taste: str = "drawn") -> np.ndarray:
        """Expected outcome per user under each arm, (n_users, n_arms).

        ``taste="drawn"`` (the default) is the user's own expectation, with the taste term ε_ik
        this shop drew for them; ``taste="averaged"`` averages the conversion probability over
        ε ~ N(0, TASTE_SD²) instead: the effect a model can learn from the user's traits, since ε
        is independent of everything else (see :meth:`true_effect`).
        """
        if taste not in TASTE_MODES:
            raise ValueError(f"taste {taste!r} is unknown; use one of {', '.join(TASTE_MODES)}")
        if taste == "drawn" and outcome in ("margin", "cost"):
            return self.expected_margin if outcome == "margin" else self.expected_cost
        return self._expected(
            self.p_convert if taste == "drawn" else self.p_convert_averaged, outcome
        )

    def _expected(self, p: np.ndarray, outcome: str) -> np.ndarray:
        if outcome == "conversion":
            return p
        if outcome == "revenue":
            return p * self.order_value
        if outcome == "margin":
            return p * (self._gm[:, None] * self.order_value - self._cost_if)
        if outcome == "cost":
            return p * self._cost_if
        if outcome == "orders":
            return p * (1 + self._extra)
        if outcome == "retention":
            return p * expit(self._retention_logit) + (1 - p) * self._r0[:, None]
        raise ValueError(f"outcome {outcome!r} is unknown; use one of {', '.join(OUTCOMES)}")

    def true_effect(self, outcome: str = "conversion", taste: str = "drawn") -> np.ndarray:
        """True per-user effect of each incentive versus no incentive, (n_users, n_arms - 1).

        Every outcome is affine in the conversion probability, so ``taste="averaged"`` is exactly
        E_ε[effect | the user's traits]: the conditional effect against which √PEHE is defined
        (Hill 2011), with the idiosyncratic ε, which no feature carries, integrated out.
        """
        values = self.expected(outcome, taste)
        return values[:, 1:] - values[:, :1]

    @cached_property
    def p_convert_averaged(self) -> np.ndarray:
        """(n_users, n_arms) conversion probability averaged over the taste term ε ~ N(0, sd²):
        E[σ(b + τ + ε)] by 24-node Gauss–Hermite quadrature (within 1e-10 of numerical
        integration); the control's column, which has no ε, is the drawn one."""
        nodes, weights = np.polynomial.hermite_e.hermegauss(TASTE_NODES)
        weights = weights / weights.sum()
        out = self.p_convert.copy(order="F")
        incentives = self._kind != _KIND_CODES["none"]  # the control draws no ε
        structural = (self._logit - self.taste)[:, incentives]
        average = np.zeros_like(structural)
        for z, w in zip(nodes, weights, strict=True):
            average += w * expit(structural + TASTE_SD * z)
        out[:, incentives] = average
        return _frozen(out)

    def arm_index(self, keys: Sequence[str] | np.ndarray) -> np.ndarray:
        """Arm keys → column indices; unknown keys raise naming the valid arms."""
        lookup = {k: i for i, k in enumerate(self.arms)}
        keys = np.asarray(keys, dtype=object)
        unknown = sorted(set(keys.tolist()) - set(lookup))
        if unknown:
            raise ValueError(f"unknown arm keys {unknown[:5]}; valid arms: {self.arms}")
        return np.fromiter((lookup[k] for k in keys), dtype=np.int64, count=len(keys))

    def latent_traits(self) -> pd.DataFrame:
        """Hidden traits behind the features, for diagnostics only (a model never sees them):
        engagement, deal_seeking, gross_margin_rate, shipping_fee."""
        pop = self._pop
        return pd.DataFrame(
            {
                "unit_id": self.users["unit_id"],
                "engagement": pop.engagement,
                "deal_seeking": pop.deal_seeking,
                "gross_margin_rate": pop.gross_margin,
                "shipping_fee": pop.shipping_fee,
            }
        )

    def rows(self, unit_ids: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
        """Row positions of ``unit_ids`` in ``users`` and the truth arrays (ids are ``u<row>``)."""
        ids = pd.Series(np.asarray(unit_ids, dtype=object), dtype=object)
        parsed = pd.to_numeric(ids.str.slice(1), errors="coerce")
        bad = ~ids.str.startswith("u").fillna(False) | parsed.isna() | (parsed >= self.n_users)
        if bad.any():
            raise ValueError(
                f"unit ids {ids[bad].head(5).tolist()} are not users of this shop "
                f"(expected 'u000000' .. 'u{self.n_users - 1:06d}')"
            )
        return parsed.to_numpy(dtype=np.int64)

    # ---- sampling ---------------------------------------------------------------------------

    def _draw_orders(self, rows: np.ndarray, arm: np.ndarray, n_orders: np.ndarray, rng) -> Orders:
        owner = np.repeat(np.arange(len(rows)), n_orders)
        first = np.ones(len(owner), dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        r, k = rows[owner], arm[owner]
        kind = self._kind[k]
        value = np.exp(self._basket_mu[r, k] + BASKET_SIGMA * rng.standard_normal(len(owner)))
        u = rng.random((2, len(owner)))
        cost = np.zeros(len(owner))

        coupon = first & (kind == _KIND_CODES["fixed_coupon"])
        floor = self._param["min_basket"][k]
        topped = coupon & (value < floor) & (u[0] < _gather(self._topup, r, k))
        value = np.where(topped, floor, value)
        cost = np.where(coupon & (value >= floor), self._param["amount"][k], cost)

        bundle = (kind == _KIND_CODES["bundle"]) & (u[1] < _gather(self._take, r, k))
        value = np.where(bundle, value * BUNDLE_LIFT, value)
        pct = self._param["percent"][k] / 100
        cost = np.where(bundle, pct * value, cost)
        cost = np.where(kind == _KIND_CODES["percent_discount"], pct * value, cost)
        shipping = (kind == _KIND_CODES["free_shipping"]) & (value < self._param["threshold"][k])
        cost = np.where(shipping, self._pop.shipping_fee[r], cost)
        gift = first & (kind == _KIND_CODES["gift"])
        cost = np.where(gift, self._param["unit_cost"][k], cost)
        return Orders(owner=owner, value=value, cost=cost)

    def _sample(self, rows: np.ndarray, arm: np.ndarray, rng: np.random.Generator):
        n = len(rows)
        converted = rng.random(n) < self.p_convert[rows, arm]
        n_orders = np.where(converted, 1 + rng.poisson(self._extra[rows, arm]), 0)
        orders = self._draw_orders(rows, arm, n_orders, rng)
        # astype: bincount of no orders at all returns integers
        revenue = np.bincount(orders.owner, weights=orders.value, minlength=n).astype(float)
        cost = np.bincount(orders.owner, weights=orders.cost, minlength=n).astype(float)
        p_retain = np.where(converted, expit(self._retention_logit[rows, arm]), self._r0[rows])
        retained = rng.random(n) < p_retain
        frame = pd.DataFrame(
            {
                "converted": converted.astype(np.int64),
                "revenue": revenue,
                "margin": self._gm[rows] * revenue - cost,
                "incentive_cost": cost,
                "orders": n_orders.astype(np.int64),
                "retained_30d": retained.astype(np.int64),
            }
        )
        return frame, orders

    def sample_outcomes(self, treatment: np.ndarray | Sequence[int], seed: int = 0) -> pd.DataFrame:
        """Realized 30-day outcomes when user i gets arm ``treatment[i]`` (one row per user).

        Columns: converted (0/1), revenue (gross, before incentives), margin (gross margin minus
        incentive cost), incentive_cost, orders, retained_30d (0/1, ordered in days 31-60).
        """
        arm = np.asarray(treatment)
        if arm.shape != (self.n_users,) or not np.issubdtype(arm.dtype, np.integer):
            raise ValueError(
                f"treatment must be an integer array of shape ({self.n_users},) holding arm "
                f"indices 0..{self.n_arms - 1}; got dtype {arm.dtype} and shape {arm.shape}"
            )
        if arm.size and (arm.min() < 0 or arm.max() >= self.n_arms):
            raise ValueError(f"treatment holds arm indices outside 0..{self.n_arms - 1}")
        frame, _ = self._sample(
            np.arange(self.n_users), arm, _rng(self.seed, STREAM_OUTCOMES, seed)
        )
        return frame

    def randomized_experiment(
        self,
        n_users: int | None = None,
        arms: Sequence[str] | None = None,
        weights: Sequence[float] | None = None,
        seed: int = 0,
    ) -> pd.DataFrame:
        """A randomized test: features, ``treatment`` (arm key), ``propensity`` and outcomes.

        ``n_users`` users are drawn without replacement (all by default) and each gets one of
        ``arms`` (all by default) independently with probabilities ``weights`` (uniform).
        """
        arms = list(self.arms if arms is None else arms)
        arm_idx = self.arm_index(arms)
        if len(arms) == 0 or len(set(arms)) != len(arms):
            raise ValueError("arms must be a non-empty list of distinct arm keys")
        w = np.full(len(arms), 1.0) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (len(arms),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"weights must be {len(arms)} non-negative numbers with a positive sum"
            )
        w = w / w.sum()
        n = self.n_users if n_users is None else int(n_users)
        if not 0 < n <= self.n_users:
            raise ValueError(f"n_users must be between 1 and {self.n_users}; got {n}")
        rng = _rng(self.seed, STREAM_EXPERIMENT, seed)
        rows = np.sort(rng.choice(self.n_users, n, replace=False)) if n < self.n_users else None
        rows = np.arange(self.n_users) if rows is None else rows
        pick = rng.choice(len(arms), size=n, p=w)
        frame, _ = self._sample(rows, arm_idx[pick], rng)
        out = self.users.iloc[rows].reset_index(drop=True)
        out["treatment"] = np.asarray(arms, dtype=object)[pick]
        out["propensity"] = w[pick]
        return pd.concat([out, frame], axis=1)

    # ---- behaviour and traffic (see experiments.simulation.events) --------------------------

    def event_sequences(self, max_len: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Past behaviour per user: (codes int8 (n, max_len), days before now float32).

        Chronological, left-padded with code 0 (``EVENT_CODES``), the last column most recent.
        """
        from experiments.simulation.events import event_sequences

        return event_sequences(self, max_len, _rng(self.seed, STREAM_SEQUENCES, seed))

    def traffic(
        self,
        days: int = 14,
        seed: int = 0,
        assign: Callable[[np.ndarray], Sequence[str]] | None = None,
        start: datetime | None = None,
        visit_rate: float = 1.0,
        enroll_days: int | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Simulated days of events, one DataFrame per day; see :func:`events.traffic`.

        ``assign(unit_ids) -> arm keys`` picks the arm of each newly exposed user (default:
        uniform over all arms); ``enroll_days`` stops new exposures after that many days.
        """
        from experiments.simulation.events import traffic

        rng = _rng(self.seed, STREAM_TRAFFIC, seed)
        return traffic(self, days, rng, seed, assign, start, visit_rate, enroll_days)


def _gather(per_arm: list[np.ndarray | None], rows: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """``per_arm[arm[i]][rows[i]]`` for each i, 0 where the arm has no array."""
    out = np.zeros(len(rows))
    for k, values in enumerate(per_arm):
        if values is not None:
            mask = arm == k
            out[mask] = values[rows[mask]]
    return out


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def simulate_shop(
    n_users: int = 50_000, seed: int = 0, incentives: Sequence[Incentive] | None = None
) -> Shop:
    """Simulate a shop of ``n_users`` users and the true response to each incentive."""
    n_users = int(n_users)
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1; got {n_users}")
    catalog = list(DEFAULT_INCENTIVES if incentives is None else incentives)
    keys = [inc.key for inc in catalog]
    if len(set(keys)) != len(keys):
        raise ValueError(f"incentive keys must be distinct; got {keys}")
    pop = make_population(n_users, _rng(seed, STREAM_POPULATION))
    control = control_arm(pop)
    traits = user_traits(pop)
    arms = [control, *(incentive_arm(pop, control, inc, seed, traits) for inc in catalog)]
    return Shop(pop, arms, catalog, seed)


def summarize(shop: Shop) -> pd.DataFrame:
    """True average effect of each incentive (conversion and retention in percentage points,
    money per user) and the share of users for whom the effect is negative."""
    rows = {"incentive": shop.arms[1:]}
    for outcome in ("conversion", "revenue", "margin", "retention", "cost"):
        scale = 100.0 if outcome in ("conversion", "retention") else 1.0
        rows[outcome] = scale * shop.true_effect(outcome).mean(axis=0)
    for outcome in ("conversion", "margin"):
        rows[f"negative_{outcome}_share"] = (shop.true_effect(outcome) < 0).mean(axis=0)
    return pd.DataFrame(rows)
