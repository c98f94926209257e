"""The incentive catalog: what an offer is, what it does, and how its cost is counted.

Layer: ``experiments.simulation`` (a test and demo fixture of the domain core). Pure Python; the
response of users to each incentive lives in :mod:`experiments.simulation.response`.

Every incentive has a ``cost_model`` naming how its cost is counted (see ``docs/simulator.md``):

- ``percent_of_gross``: ``percent/100`` of the gross value of every order placed while the offer
  is valid (the whole 30-day window), incremental or not.
- ``fixed_per_redemption``: ``amount`` for every redeemed coupon (single use, on a first order of
  at least ``min_basket``).
- ``shipping_fee_waived``: the shipping ``fee`` the customer would otherwise have paid, on every
  order below the free-shipping ``threshold`` placed in the window.
- ``unit_cost_per_converter``: the gift's ``unit_cost``, once per converting user.
- ``percent_of_bundle``: ``percent/100`` of the gross value of every order that takes the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INCENTIVE_KINDS: tuple[str, ...] = (
    "percent_discount",
    "fixed_coupon",
    "free_shipping",
    "gift",
    "bundle",
)

COST_MODELS: dict[str, str] = {
    "percent_discount": "percent_of_gross",
    "fixed_coupon": "fixed_per_redemption",
    "free_shipping": "shipping_fee_waived",
    "gift": "unit_cost_per_converter",
    "bundle": "percent_of_bundle",
}

# Parameters each kind needs, with their defaults (None = required).
_PARAMS: dict[str, dict[str, Any]] = {
    "percent_discount": {"percent": None},
    "fixed_coupon": {"amount": None, "min_basket": 0.0},
    "free_shipping": {"threshold": 50.0},
    "gift": {"unit_cost": None, "perceived_value": None, "category": "beauty"},
    "bundle": {"percent": None, "min_items": 2},
}

CATEGORIES: tuple[str, ...] = ("fashion", "electronics", "home", "beauty", "sports")


@dataclass(frozen=True)
class Incentive:
    """One offer of the catalog.

    ``key`` is the stable identifier used as an arm name (``"none"`` is reserved for control);
    ``params`` holds the kind's parameters (missing optional ones are filled with defaults);
    ``cost_model`` defaults to the kind's model (``COST_MODELS``) and may not name another one.
    """

    key: str
    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    cost_model: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.key or self.key == "none" or not self.key.replace("_", "").isalnum():
            raise ValueError(
                f"Incentive.key {self.key!r} must be a non-empty snake_case identifier other "
                "than 'none' (reserved for the control arm)"
            )
        if self.kind not in INCENTIVE_KINDS:
            raise ValueError(
                f"Incentive.kind {self.kind!r} is unknown; use one of {', '.join(INCENTIVE_KINDS)}"
            )
        expected = COST_MODELS[self.kind]
        if self.cost_model and self.cost_model != expected:
            raise ValueError(
                f"Incentive.cost_model {self.cost_model!r} does not fit kind {self.kind!r}; "
                f"use {expected!r} (or leave it empty)"
            )
        object.__setattr__(self, "cost_model", expected)
        params = dict(_PARAMS[self.kind])
        unknown = set(self.params) - set(params)
        if unknown:
            raise ValueError(
                f"Incentive.params has unknown keys {sorted(unknown)} for kind {self.kind!r}; "
                f"allowed: {sorted(params)}"
            )
        params.update(self.params)
        missing = [name for name, value in params.items() if value is None]
        if missing:
            raise ValueError(f"Incentive.params is missing {missing} for kind {self.kind!r}")
        _check_values(self.kind, params)
        object.__setattr__(self, "params", params)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the database's incentives table and the API)."""
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "params": dict(self.params),
            "cost_model": self.cost_model,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incentive:
        return cls(
            key=data["key"],
            name=data["name"],
            kind=data["kind"],
            params=dict(data.get("params", {})),
            cost_model=data.get("cost_model", ""),
            description=data.get("description", ""),
        )


def _check_values(kind: str, params: dict[str, Any]) -> None:
    def positive(name: str, upper: float | None = None) -> None:
        value = params[name]
        if not isinstance(value, int | float) or value <= 0 or (upper and value >= upper):
            bound = f" and below {upper}" if upper else ""
            raise ValueError(f"Incentive.params[{name!r}] = {value!r} must be > 0{bound}")

    if kind in ("percent_discount", "bundle"):
        positive("percent", 100)
    if kind == "fixed_coupon":
        positive("amount")
        if params["min_basket"] < 0:
            raise ValueError("Incentive.params['min_basket'] must be >= 0")
    if kind == "free_shipping":
        positive("threshold")
    if kind == "gift":
        positive("unit_cost")
        positive("perceived_value")
        if params["category"] not in CATEGORIES:
            raise ValueError(
                f"Incentive.params['category'] = {params['category']!r}; use one of {CATEGORIES}"
            )
    if kind == "bundle" and (not isinstance(params["min_items"], int) or params["min_items"] < 2):
        raise ValueError("Incentive.params['min_items'] must be an integer >= 2")


DEFAULT_INCENTIVES: list[Incentive] = [
    Incentive(
        key="discount_10",
        name="10% off",
        kind="percent_discount",
        params={"percent": 10},
        description="10% off every order for 30 days",
    ),
    Incentive(
        key="discount_20",
        name="20% off",
        kind="percent_discount",
        params={"percent": 20},
        description="20% off every order for 30 days",
    ),
    Incentive(
        key="coupon_5",
        name="$5 off $40",
        kind="fixed_coupon",
        params={"amount": 5.0, "min_basket": 40.0},
        description="single-use $5 coupon on an order of $40 or more",
    ),
    Incentive(
        key="free_shipping",
        name="Free shipping",
        kind="free_shipping",
        params={"threshold": 50.0},
        description="no shipping fee on any order for 30 days (normally free from $50)",
    ),
    Incentive(
        key="free_gift",
        name="Free gift",
        kind="gift",
        params={"unit_cost": 4.0, "perceived_value": 12.0, "category": "beauty"},
        description="a beauty sample set with the first order",
    ),
]
