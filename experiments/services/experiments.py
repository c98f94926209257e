"""Experiments: listing and lookup (the lifecycle use cases build on these)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.db import STATUSES, Experiment
from experiments.errors import NotFoundError, ValidationError


def list_experiments(session: Session, *, status: str | None = None) -> list[Experiment]:
    query = select(Experiment).order_by(Experiment.created_at.desc(), Experiment.id.desc())
    if status:
        if status not in STATUSES:
            raise ValidationError(
                "status", f"{status!r} is unknown; use one of {', '.join(STATUSES)}"
            )
        query = query.where(Experiment.status == status)
    return list(session.scalars(query))


def get_experiment(session: Session, key: str) -> Experiment:
    experiment = session.scalar(select(Experiment).where(Experiment.key == key))
    if experiment is None:
        raise NotFoundError("experiment", key)
    return experiment
