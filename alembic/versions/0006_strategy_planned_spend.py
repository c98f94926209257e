"""The spend a strategy's hard budget cap sees, kept as a running total on the strategy's row.

``strategies.planned_spend``: the current batch run's planned spend plus the expected cost of
every decision logged after it (online, and the new draws of the strategy's experiment variants).
It is written only under the ledger lock (``experiments.services.strategy_ledger``), so a new
decision reads one row instead of summing a ledger of up to millions of decisions.

Upgrade backfills it from the rows: the strategy's own decisions of its current run plus the
current run's variant decisions that drew anew (``reused_decision_id`` NULL). Downgrade drops it
(the rows it was counted from are untouched).

Revision ID: 0006_strategy_planned_spend
Revises: 0005_decision_batch_runs
Create Date: 2026-12-02 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_strategy_planned_spend"
down_revision: str | None = "0005_decision_batch_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("strategies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("planned_spend", sa.Float(), nullable=False, server_default="0")
        )
    op.execute(
        sa.text(
            "UPDATE strategies SET planned_spend = ("
            "SELECT coalesce(sum(d.expected_cost), 0) FROM decisions d "
            "WHERE d.strategy_id = strategies.id AND d.batch_run = strategies.batch_run "
            "AND (d.experiment_id IS NULL OR d.reused_decision_id IS NULL))"
        )
    )


def downgrade() -> None:
    # decisions and variants reference strategies: SQLite cannot drop and recreate the table
    # under them, but drops a plain column in place (SQLite 3.35+)
    with op.batch_alter_table("strategies", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("planned_spend")
