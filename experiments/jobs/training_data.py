"""Per-unit training data of a randomized experiment: arm, conversion and revenue in the window.

The per-unit aggregation runs in the database (one row per exposed unit comes back, never the raw
events); the user features come from a population table (Parquet) keyed by ``unit_id``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from experiments.analysis.sql_time import shift_hours
from experiments.db import Assignment, Event, Incentive, Strategy, Variant
from experiments.errors import ValidationError
from experiments.services.experiments import get_experiment

if TYPE_CHECKING:
    import pandas as pd

WINDOW_HOURS = 24 * 30
STRATEGY_ARM_PREFIX = "strategy:"


def unit_outcomes(session: Session, key: str, window_hours: int = WINDOW_HOURS) -> pd.DataFrame:
    """unit_id, arm, variant, conversion (0/1), revenue, orders.

    ``arm`` is the variant's incentive key, ``"strategy:<key>"`` for a variant that serves a
    strategy (strategies A/B-tested), or ``"none"`` for the control.
    """
    import pandas as pd

    experiment = get_experiment(session, key)
    in_window = and_(
        Event.occurred_at >= Assignment.first_exposure_at,
        Event.occurred_at < shift_hours(Assignment.first_exposure_at, window_hours),
    )
    query = (
        select(
            Assignment.unit_id,
            Variant.key.label("variant"),
            func.coalesce(
                Incentive.key, literal(STRATEGY_ARM_PREFIX).concat(Strategy.key), "none"
            ).label("arm"),
            func.count(Event.id).label("orders"),
            func.coalesce(func.sum(case((in_window, Event.value), else_=0.0)), 0.0).label(
                "revenue"
            ),
        )
        .join(Variant, Variant.id == Assignment.variant_id)
        .outerjoin(Incentive, Incentive.id == Variant.incentive_id)
        .outerjoin(Strategy, Strategy.id == Variant.strategy_id)
        .outerjoin(
            Event,
            and_(Event.unit_id == Assignment.unit_id, Event.name == "order", in_window),
        )
        .where(Assignment.experiment_id == experiment.id)
        .group_by(Assignment.unit_id, Variant.key, Incentive.key, Strategy.key)
    )
    frame = pd.DataFrame(
        session.execute(query).all(), columns=["unit_id", "variant", "arm", "orders", "revenue"]
    )
    if frame.empty:
        raise ValidationError("experiment", f"{key!r} has no exposed units yet")
    frame["conversion"] = (frame["orders"] > 0).astype(float)
    frame["revenue"] = frame["revenue"].astype(float)
    return frame


def load_population(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise ValidationError("features", f"{path} not found; give the population Parquet file")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ValidationError(
            "features",
            f"{path} could not be read as Parquet ({exc.__class__.__name__}: {exc}); "
            "give the population Parquet file",
        ) from exc
    if "unit_id" not in frame.columns:
        raise ValidationError("features", f"{path} has no unit_id column")
    return frame


def training_frame(session: Session, key: str, population: pd.DataFrame) -> pd.DataFrame:
    """Outcomes joined to features; units without features are dropped (and counted)."""
    outcomes = unit_outcomes(session, key)
    strategy_arms = sorted(a for a in outcomes["arm"].unique() if a.startswith(STRATEGY_ARM_PREFIX))
    if strategy_arms:
        raise ValidationError(
            "experiment",
            f"{key!r} has variants that serve strategies ({', '.join(strategy_arms)}); the uplift "
            "model learns the effect of single incentives: train it on an experiment whose "
            "variants are incentives",
        )
    merged = outcomes.merge(population, on="unit_id", how="inner")
    if len(merged) < 0.9 * len(outcomes):
        raise ValidationError(
            "features",
            f"only {len(merged)} of {len(outcomes)} exposed units have features; "
            "is this the right population file?",
        )
    return merged
