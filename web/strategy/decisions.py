"""Read-only pages of a strategy's decision log: the latest decisions, newest first.

A read helper of the web layer (no service owns paging the log yet); it only selects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from experiments.db import Decision, Incentive

LATEST = 200  # the page shows the latest decisions only; the ledger sums them all
PER_PAGE = 50


@dataclass
class DecisionPage:
    rows: list[dict[str, Any]]
    page: int
    pages: int
    shown: int  # decisions within the latest LATEST
    total: int  # decisions in the log


def decision_page(session: Session, strategy_id: int, page: int) -> DecisionPage:
    total = session.scalar(
        select(func.count()).select_from(Decision).where(Decision.strategy_id == strategy_id)
    )
    shown = min(int(total or 0), LATEST)
    pages = max(1, math.ceil(shown / PER_PAGE))
    page = min(max(page, 1), pages)
    query = (
        select(Decision, Incentive.key)
        .outerjoin(Incentive, Decision.incentive_id == Incentive.id)
        .where(Decision.strategy_id == strategy_id)
        .order_by(Decision.decided_at.desc(), Decision.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(min(PER_PAGE, shown - (page - 1) * PER_PAGE) if shown else PER_PAGE)
    )
    rows = [
        {
            "decision_id": d.decision_id,
            "unit_id": d.unit_id,
            "incentive": key or "none",
            "bucket": d.bucket,
            "propensity": d.propensity,
            "expected_value": d.expected_value,
            "expected_cost": d.expected_cost,
            "source": (d.context or {}).get("source", ""),
            "decided_at": d.decided_at,
        }
        for d, key in session.execute(query).all()
    ]
    return DecisionPage(rows=rows, page=page, pages=pages, shown=shown, total=int(total or 0))
