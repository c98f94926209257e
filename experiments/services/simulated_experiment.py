"""Run a stored experiment on the simulated shop, day by day (demo, tests, benchmarks).

Each simulated day's newly exposed users are assigned exactly as the API would assign them (the
batch forms of GrowthBook-compatible hashing), their first exposures are recorded, the day's events
are ingested (orders with revenue; margin and incentive cost as their own events), and the results
may be refreshed at the end of the day, as a scheduled refresh would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from experiments.assignment import bucket_hash_many, choose_variation_many
from experiments.db import Incentive
from experiments.errors import ValidationError
from experiments.services import events, results
from experiments.services.assignments import record_first_exposures
from experiments.services.experiments import assignment_config, get_experiment

if TYPE_CHECKING:
    import pandas as pd

    from experiments.simulation import Shop


def _arm_keys(session: Session, experiment: Any, shop: Shop) -> list[str]:
    keys = []
    for variant in experiment.variants:
        arm = session.get(Incentive, variant.incentive_id).key if variant.incentive_id else "none"
        if arm not in shop.arms:
            raise ValidationError(
                "variants", f"incentive {arm!r} of variant {variant.key!r} is not in the shop"
            )
        keys.append(arm)
    return keys


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Events to ingest: everything but exposures; orders add margin and incentive-cost events."""
    frame = frame[frame["name"] != "exposure"]
    stamps = frame["timestamp"].dt.floor("us").dt.to_pydatetime()
    out: list[dict[str, Any]] = []
    columns = zip(
        frame["event_id"],
        frame["unit_id"],
        frame["name"],
        frame["value"],
        stamps,
        frame["margin"],
        frame["incentive_cost"],
        strict=True,
    )
    for event_id, unit_id, name, value, when, margin, cost in columns:
        out.append(
            {
                "event_id": event_id,
                "unit_id": unit_id,
                "name": name,
                "value": float(value),
                "occurred_at": when,
            }
        )
        if name == "order":
            out.append(
                {
                    "event_id": f"{event_id}:margin",
                    "unit_id": unit_id,
                    "name": "margin",
                    "value": float(margin),
                    "occurred_at": when,
                }
            )
            out.append(
                {
                    "event_id": f"{event_id}:cost",
                    "unit_id": unit_id,
                    "name": "incentive_cost",
                    "value": float(cost),
                    "occurred_at": when,
                }
            )
    return out


def run_on_shop(
    session: Session,
    shop: Shop,
    key: str,
    *,
    days: int,
    seed: int = 0,
    start: dt.datetime | None = None,
    enroll_days: int | None = None,
    refresh_daily: bool = True,
    on_day: Callable[[int, dict[str, Any] | None], None] | None = None,
) -> dict[str, Any] | None:
    """Simulate ``days`` of traffic through running experiment ``key``; returns the last results."""
    experiment = get_experiment(session, key)
    if experiment.status != "running":
        raise ValidationError("status", f"start {key!r} first (it is {experiment.status})")
    config = assignment_config(experiment)
    ranges = config.effective_ranges()
    arms = _arm_keys(session, experiment, shop)
    variant_ids = [v.id for v in experiment.variants]
    chosen: dict[str, int] = {}

    def assign(unit_ids: np.ndarray) -> list[str]:
        buckets = bucket_hash_many(
            config.hash_seed, np.asarray(unit_ids, dtype=str), config.hash_version
        )
        picks = choose_variation_many(buckets, ranges)
        for unit, pick in zip(unit_ids, picks, strict=True):
            if pick >= 0:
                chosen[str(unit)] = int(pick)
        return [arms[p] if p >= 0 else "none" for p in picks]

    last = None
    start = start or dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    frames = shop.traffic(days=days, seed=seed, assign=assign, start=start, enroll_days=enroll_days)
    for day, frame in enumerate(frames):
        exposed = frame[(frame["name"] == "exposure") & frame["unit_id"].isin(chosen.keys())]
        if len(exposed):
            rows = [
                {
                    "experiment_id": experiment.id,
                    "unit_id": unit,
                    "variant_id": variant_ids[chosen[unit]],
                    "first_exposure_at": when,
                }
                for unit, when in zip(
                    exposed["unit_id"],
                    exposed["timestamp"].dt.floor("us").dt.to_pydatetime(),
                    strict=True,
                )
            ]
            record_first_exposures(session, rows)
        batch = _rows(frame)
        for offset in range(0, len(batch), events.MAX_BATCH):
            events.ingest(session, batch[offset : offset + events.MAX_BATCH])
        if refresh_daily:
            as_of = start + dt.timedelta(days=day + 1)
            last = results.refresh(session, key, actor="simulator", as_of=as_of)
        if on_day:
            on_day(day, last)
    return last
