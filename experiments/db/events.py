"""Raw events: exposures, views, carts, orders (layer: experiments.db).

``event_id`` is the client's idempotency key: an event sent twice is stored once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from experiments.db.base import Base, BigId, utcnow


class Event(Base):
    __tablename__ = "events"
    # every reader joins events to exposures per unit: one index for that (migration 0003)
    __table_args__ = (Index("ix_events_unit_name_at", "unit_id", "name", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    unit_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float | None]
    occurred_at: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    properties: Mapped[dict[str, Any] | None]
