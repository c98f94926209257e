"""Queued causal-report builds (layer: experiments.db).

A report of a large experiment takes minutes (``docs/benchmarks/report.md``), longer than a web
request may run, so the admin and the API queue a ``ReportJob`` and the report worker
(``experiments.jobs.report_worker``) builds it; ``experiments.services.report_jobs`` owns the
states: ``queued`` → ``running`` → ``done`` or ``failed``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from experiments.db.base import Base, utcnow

JOB_STATUSES = ("queued", "running", "done", "failed")


class ReportJob(Base):
    __tablename__ = "report_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        CheckConstraint("k_min >= 1", name="k_min_positive"),
        CheckConstraint("dp_epsilon IS NULL OR dp_epsilon > 0", name="epsilon_positive"),
        Index("ix_report_jobs_status_id", "status", "id"),
        Index("ix_report_jobs_experiment_id_id", "experiment_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    k_min: Mapped[int] = mapped_column(default=50)
    dp_epsilon: Mapped[float | None]
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))  # host:pid that built it
    error: Mapped[str | None] = mapped_column(Text)
