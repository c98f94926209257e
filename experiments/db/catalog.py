"""Incentive catalog and metric definitions (layer: experiments.db)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from experiments.db.base import Base, utcnow

INCENTIVE_KINDS = ("percent_discount", "fixed_coupon", "free_shipping", "gift", "bundle")
METRIC_KINDS = ("binary", "count", "sum", "ratio")


class Incentive(Base):
    """Something a user can be given. ``params`` describe it, ``cost_model`` prices it."""

    __tablename__ = "incentives"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('percent_discount', 'fixed_coupon', 'free_shipping', 'gift', 'bundle')",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]]
    cost_model: Mapped[dict[str, Any]]
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Metric(Base):
    """A metric computed from events after a unit's first exposure.

    ``kind`` binary: the unit had ``event_name`` in the window; count: number of such events; sum:
    sum of their values; ratio: sum of ``event_name`` values over sum of ``denominator_event`` values.
    An event without a value counts as 1 on either side of a ratio (so a ratio over a count is the
    sum of values over a count of events).
    """

    __tablename__ = "metrics"
    __table_args__ = (
        CheckConstraint("kind IN ('binary', 'count', 'sum', 'ratio')", name="kind"),
        CheckConstraint("window_hours > 0", name="window_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    event_name: Mapped[str] = mapped_column(String(100))
    denominator_event: Mapped[str | None] = mapped_column(String(100))
    window_hours: Mapped[int] = mapped_column(default=24 * 30)
    higher_is_better: Mapped[bool] = mapped_column(default=True)
    cuped: Mapped[bool] = mapped_column(default=True)
    cap_value: Mapped[float | None]
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
