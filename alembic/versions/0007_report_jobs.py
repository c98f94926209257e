"""Queued causal-report builds: ``report_jobs``.

The admin and the API queue a report build instead of running it inside the request (a report
of 1,000,000 users takes minutes, past the web worker's timeout); the report worker
(``liftlab report-worker``) claims the oldest queued job, builds the report and records the
outcome. Downgrade drops the table (the reports already built stay as files).

Revision ID: 0007_report_jobs
Revises: 0006_strategy_planned_spend
Create Date: 2026-12-02 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_report_jobs"
down_revision: str | None = "0006_strategy_planned_spend"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("k_min", sa.Integer(), nullable=False),
        sa.Column("dp_epsilon", sa.Float(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_report_jobs_status")
        ),
        sa.CheckConstraint("k_min >= 1", name=op.f("ck_report_jobs_k_min_positive")),
        sa.CheckConstraint(
            "dp_epsilon IS NULL OR dp_epsilon > 0", name=op.f("ck_report_jobs_epsilon_positive")
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_report_jobs_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_jobs")),
    )
    op.create_index("ix_report_jobs_status_id", "report_jobs", ["status", "id"])
    op.create_index("ix_report_jobs_experiment_id_id", "report_jobs", ["experiment_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_report_jobs_experiment_id_id", table_name="report_jobs")
    op.drop_index("ix_report_jobs_status_id", table_name="report_jobs")
    op.drop_table("report_jobs")
