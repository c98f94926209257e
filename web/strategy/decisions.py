"""Read-only pages of a strategy's decision log, newest first: the current ledger (its latest
batch run's decisions and the online ones after it), an earlier run's (``?run=N``), or every
decision of one unit across runs and experiments (``?unit=ID``).

A read helper of the web layer (no service owns paging the log yet); it only selects, through the
ledger's own predicates (``experiments.services.strategy_ledger``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from experiments.db import Decision, Incentive, Strategy
from experiments.services.strategy_ledger import check_run, own_decisions

LATEST = 200  # the page shows the latest decisions only; the ledger sums them all
PER_PAGE = 50


@dataclass
class DecisionPage:
    rows: list[dict[str, Any]]
    page: int
    pages: int
    shown: int  # decisions within the latest LATEST
    total: int  # decisions in the log shown
    batch_run: int | None  # the run shown (None: one unit's history)
    current_run: int  # the strategy's current batch run
    unit_id: str | None = None


def decision_page(
    session: Session,
    strategy: Strategy,
    page: int,
    *,
    batch_run: str | int | None = None,
    unit_id: str | None = None,
) -> DecisionPage:
    """One page of the log; ``batch_run`` is checked (``ValidationError`` naming ``run``)."""
    if unit_id:
        where: tuple[Any, ...] = (Decision.strategy_id == strategy.id, Decision.unit_id == unit_id)
        run = None
    else:
        run = strategy.batch_run if batch_run is None else check_run(strategy, batch_run, "run")
        where = own_decisions(strategy, run)
    total = session.scalar(select(func.count()).select_from(Decision).where(*where))
    shown = min(int(total or 0), LATEST)
    pages = max(1, math.ceil(shown / PER_PAGE))
    page = min(max(page, 1), pages)
    query = (
        select(Decision, Incentive.key)
        .outerjoin(Incentive, Decision.incentive_id == Incentive.id)
        .where(*where)
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
            "batch_run": d.batch_run,
            "decided_at": d.decided_at,
        }
        for d, key in session.execute(query).all()
    ]
    return DecisionPage(
        rows=rows,
        page=page,
        pages=pages,
        shown=shown,
        total=int(total or 0),
        batch_run=run,
        current_run=strategy.batch_run,
        unit_id=unit_id or None,
    )
