"""Uplift model runs as the admin sees them: list, read, promote and demote (layer: services).

Training itself is a job (``experiments.jobs.train``, ``liftlab models train``); this module only
reads the recorded runs and moves the "promoted" flag. One run at most is promoted per experiment:
the strategy job uses the promoted run of its source experiment when the strategy names none.
Every change is audited; nothing here commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.db import Experiment, ModelRun
from experiments.errors import ConflictError, NotFoundError
from experiments.services import audit


def list_runs(session: Session, *, experiment_id: int | None = None) -> list[ModelRun]:
    """Every run, newest first (of one experiment when ``experiment_id`` is given)."""
    query = select(ModelRun).order_by(ModelRun.id.desc())
    if experiment_id is not None:
        query = query.where(ModelRun.experiment_id == experiment_id)
    return list(session.scalars(query))


def get_run(session: Session, run_id: int) -> ModelRun:
    run = session.get(ModelRun, run_id)
    if run is None:
        raise NotFoundError("model run", run_id)
    return run


def experiment_keys(session: Session) -> dict[int, str]:
    """Experiment id → key, to name each run's experiment."""
    return {i: k for i, k in session.execute(select(Experiment.id, Experiment.key)).all()}


def snapshot(run: ModelRun) -> dict[str, Any]:
    """What the audit log keeps of a run."""
    return {
        "id": run.id,
        "experiment_id": run.experiment_id,
        "architecture": run.architecture,
        "status": run.status,
        "promoted": run.promoted,
    }


def _siblings(session: Session, run: ModelRun) -> list[ModelRun]:
    """The experiment's runs, locked (on PostgreSQL) so that two promotions cannot interleave."""
    same = (
        ModelRun.experiment_id.is_(None)
        if run.experiment_id is None
        else ModelRun.experiment_id == run.experiment_id
    )
    return list(session.scalars(select(ModelRun).where(same).with_for_update()))


def _set(session: Session, run: ModelRun, promoted: bool, *, actor: str, note: str | None) -> None:
    before = snapshot(run)
    run.promoted = promoted
    audit.record(
        session,
        actor=actor,
        action="model.promote" if promoted else "model.demote",
        entity_type="model_run",
        entity_id=run.id,
        before=before,
        after=snapshot(run),
        note=note,
    )


def promote(session: Session, run_id: int, *, actor: str) -> ModelRun:
    """Promote a succeeded run; the experiment's previously promoted run is demoted (audited)."""
    run = get_run(session, run_id)
    if run.status != "succeeded":
        raise ConflictError("status", f"model run {run_id} {run.status}; promote a succeeded run")
    for other in _siblings(session, run):
        if other.id != run.id and other.promoted:
            _set(session, other, False, actor=actor, note=f"replaced by model run {run.id}")
    if not run.promoted:
        _set(session, run, True, actor=actor, note=None)
    session.flush()
    return run


def demote(session: Session, run_id: int, *, actor: str) -> ModelRun:
    """Withdraw a run's promotion (the strategy job then falls back to the newest succeeded run)."""
    run = get_run(session, run_id)
    if not run.promoted:
        raise ConflictError("promoted", f"model run {run_id} is not promoted")
    _set(session, run, False, actor=actor, note=None)
    session.flush()
    return run
