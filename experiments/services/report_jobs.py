"""Queued causal-report builds as a use case: request, claim, finish, show (services layer).

A report of a large experiment takes minutes (1,000,000 users: about 4 minutes here,
``docs/benchmarks/report.md``), past what a web request may take (gunicorn's timeout is 60 s),
so the admin and the API queue a job and the report worker (``experiments.jobs.report_worker``,
``liftlab report-worker``) builds it outside the web process:

- ``request_report`` queues a job for an experiment with its options (``k_min``, ``epsilon``,
  checked as a build checks them); a job with the same options already queued or running is
  returned instead of a second one, so repeated clicks build once.
- ``claim_next`` moves the oldest queued job to ``running`` with a compare-and-set ``UPDATE ...
  WHERE status = 'queued'``: of several workers (or threads) racing for a job, exactly one
  claims it, on SQLite and PostgreSQL alike. Jobs left ``running`` longer than ``STALE_AFTER``
  (their worker died) are marked failed first, with an error that says so.
- ``finish`` records ``done`` or ``failed`` (with the error), once: a job that is not running is
  a ``ConflictError``.

Every function takes the caller's ``Session`` and never commits; the worker commits each step in
its own transaction, so that a claim is visible to other workers before the build starts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from experiments.db import Experiment, ReportJob, utcnow
from experiments.errors import ConflictError, NotFoundError
from experiments.services import audit
from experiments.services.experiments import get_experiment
from experiments.services.reporting import check_options

ACTIVE = ("queued", "running")
STALE_AFTER = dt.timedelta(hours=2)
CLAIM_ATTEMPTS = 5
ERROR_CHARS = 2000


def request_report(
    session: Session,
    key: str,
    *,
    actor: str,
    k_min: int = 50,
    dp_epsilon: float | None = None,
) -> ReportJob:
    """Queue a report build of experiment ``key`` (or return the same one already queued)."""
    experiment = get_experiment(session, key)
    check_options(k_min, dp_epsilon)
    same_epsilon = (
        ReportJob.dp_epsilon.is_(None)
        if dp_epsilon is None
        else ReportJob.dp_epsilon == float(dp_epsilon)
    )
    pending = session.scalars(
        select(ReportJob)
        .where(
            ReportJob.experiment_id == experiment.id,
            ReportJob.status.in_(ACTIVE),
            ReportJob.k_min == k_min,
            same_epsilon,
        )
        .order_by(ReportJob.id)
    ).first()
    if pending is not None:
        return pending
    job = ReportJob(
        experiment_id=experiment.id,
        status="queued",
        k_min=k_min,
        dp_epsilon=None if dp_epsilon is None else float(dp_epsilon),
        requested_by=actor,
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="report.request",
        entity_type="experiment",
        entity_id=key,
        after={"job": job.id, "k_min": k_min, "epsilon": job.dp_epsilon},
    )
    return job


def get_job(session: Session, job_id: int) -> ReportJob:
    job = session.get(ReportJob, job_id)
    if job is None:
        raise NotFoundError("report job", job_id)
    return job


def latest_job(session: Session, key: str) -> ReportJob | None:
    """The experiment's most recently requested report job, or None."""
    experiment = get_experiment(session, key)
    return session.scalars(
        select(ReportJob)
        .where(ReportJob.experiment_id == experiment.id)
        .order_by(ReportJob.id.desc())
        .limit(1)
    ).first()


def fail_stale(session: Session, now: dt.datetime | None = None) -> int:
    """Mark jobs running for longer than ``STALE_AFTER`` failed; returns how many."""
    now = now or utcnow()
    stale = (ReportJob.status == "running", ReportJob.started_at < now - STALE_AFTER)
    # read first: an idle worker polls every few seconds, and an UPDATE would take SQLite's
    # write lock each time even when it changes nothing
    if session.scalar(select(ReportJob.id).where(*stale).limit(1)) is None:
        return 0
    result = session.execute(
        update(ReportJob)
        .where(*stale)
        .values(
            status="failed",
            finished_at=now,
            error=f"the worker stopped while building (running for over {STALE_AFTER}); "
            "generate the report again",
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def claim_next(session: Session, worker: str, now: dt.datetime | None = None) -> ReportJob | None:
    """The oldest queued job, now ``running`` for ``worker``; None when none is queued."""
    now = now or utcnow()
    fail_stale(session, now)
    for _ in range(CLAIM_ATTEMPTS):
        job_id = session.scalar(
            select(ReportJob.id).where(ReportJob.status == "queued").order_by(ReportJob.id).limit(1)
        )
        if job_id is None:
            return None
        claimed = session.execute(
            update(ReportJob)
            .where(ReportJob.id == job_id, ReportJob.status == "queued")
            .values(status="running", started_at=now, worker=worker[:200])
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:
            job = session.get(ReportJob, job_id)
            assert job is not None
            session.refresh(job)
            return job
    return None  # every attempt lost its race: the other workers have the queue in hand


def finish(session: Session, job_id: int, *, error: str | None = None) -> ReportJob:
    """Record a running job's outcome: ``done``, or ``failed`` with ``error``."""
    job = get_job(session, job_id)
    session.refresh(job)
    if job.status != "running":
        raise ConflictError(
            "job", f"report job {job_id} is {job.status}, not running; it cannot finish again"
        )
    job.status = "done" if error is None else "failed"
    job.error = None if error is None else error[:ERROR_CHARS]
    job.finished_at = utcnow()
    session.flush()
    return job


def describe(session: Session, job_id: int) -> dict[str, Any]:
    """Job ``job_id`` as the API shows it (``NotFoundError`` for an unknown id)."""
    job = get_job(session, job_id)
    experiment = session.get(Experiment, job.experiment_id)
    return job_json(job, experiment.key if experiment is not None else "")


def job_json(job: ReportJob, key: str) -> dict[str, Any]:
    """A job as the API shows it."""

    def iso(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": job.id,
        "experiment": key,
        "status": job.status,
        "k_min": job.k_min,
        "epsilon": job.dp_epsilon,
        "requested_by": job.requested_by,
        "requested_at": iso(job.requested_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "worker": job.worker,
        "error": job.error,
    }
