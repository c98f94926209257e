"""Simulated data for the demo and for `liftlab simulate`: the catalog and a shop's event history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from experiments.services import events

if TYPE_CHECKING:
    import pandas as pd

    from experiments.simulation import Shop


def default_incentive_specs() -> list[dict[str, Any]]:
    """The simulator's default catalog as rows for ``catalog.create_incentive``."""
    from experiments.simulation import DEFAULT_INCENTIVES

    specs = []
    for incentive in DEFAULT_INCENTIVES:
        data = incentive.to_dict()
        data["cost_model"] = {"model": data["cost_model"]}
        specs.append(data)
    return specs


def event_rows(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Rows of a simulator traffic frame in the ingestion format (one dict per event)."""
    columns = ["event_id", "unit_id", "name", "value", "timestamp"]
    frame = frame.assign(timestamp=frame["timestamp"].dt.floor("us"))  # databases keep microseconds
    for event_id, unit_id, name, value, timestamp in frame[columns].itertuples(
        index=False, name=None
    ):
        yield {
            "event_id": str(event_id),
            "unit_id": str(unit_id),
            "name": str(name),
            "value": None if value != value else float(value),  # NaN → null
            "occurred_at": timestamp.to_pydatetime().astimezone(dt.UTC),
        }


def load_history(
    session: Session, shop: Shop, *, days: int, seed: int, start: dt.datetime | None = None
) -> int:
    """Ingest ``days`` of the shop's behaviour events (no experiment running); returns rows stored."""
    stored = 0
    frames = shop.traffic(days=days, seed=seed, assign=lambda ids: ["none"] * len(ids), start=start)
    for frame in frames:
        frame = frame[frame["name"] != "exposure"]
        batch: list[dict[str, Any]] = []
        for row in event_rows(frame):
            batch.append(row)
            if len(batch) == events.MAX_BATCH:
                stored += events.ingest(session, batch).inserted
                batch = []
        if batch:
            stored += events.ingest(session, batch).inserted
    return stored


DEMO_EXPERIMENT = "checkout-incentives"


def demo_experiment_spec(n_star: int) -> dict[str, Any]:
    return {
        "key": DEMO_EXPERIMENT,
        "name": "Checkout incentives: 20% off vs $5 coupon vs free shipping",
        "hypothesis": "A checkout incentive raises 30-day conversion without hurting margin.",
        "variants": [
            {"key": "control", "name": "No incentive", "weight": 0.25},
            {"key": "discount_20", "name": "20% off", "weight": 0.25, "incentive": "discount_20"},
            {"key": "coupon_5", "name": "$5 off $40", "weight": 0.25, "incentive": "coupon_5"},
            {
                "key": "free_shipping",
                "name": "Free shipping",
                "weight": 0.25,
                "incentive": "free_shipping",
            },
        ],
        "metrics": {
            "primary": "conversion",
            "secondary": ["revenue", "orders"],
            "guardrail": ["margin"],
        },
        "design": {"type": "sequential", "alpha": 0.05, "n_star": n_star},
    }
