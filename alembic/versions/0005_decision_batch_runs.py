"""Batch runs supersede a strategy's decisions instead of deleting them.

``strategies.batch_run``: the number of local batch runs that logged decisions (0: none yet).
``decisions.batch_run``: the run whose ledger a decision belongs to; the strategy's current ledger
is its own decisions (no experiment) carrying the strategy's number. ``decisions.reused_decision_id``:
for a decision served through a strategy variant, the strategy's own decision it repeated.

Upgrade: every strategy is at run 0 and its own decisions belong to run 0 (the old batch run
deleted what came before, so all of them are current). Decisions served through an experiment
before this revision were outside the strategy's budget cap; they keep ``batch_run`` NULL and stay
outside it (the index ``ix_decisions_strategy_run_unit`` serves the ledger and ``latest_decision``).

Downgrade refuses while any decision belongs to an earlier run than its strategy's: the old schema
would count such rows in the ledger again, and dropping them would lose logged propensities.

Revision ID: 0005_decision_batch_runs
Revises: 0004_model_run_provenance
Create Date: 2026-12-02 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_decision_batch_runs"
down_revision: str | None = "0004_model_run_provenance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("strategies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("batch_run", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_run", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reused_decision_id", sa.String(length=64), nullable=True))
    op.execute(
        sa.text(
            "UPDATE decisions SET batch_run = 0 "
            "WHERE strategy_id IS NOT NULL AND experiment_id IS NULL"
        )
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_decisions_own_batch_run"),
            "strategy_id IS NULL OR experiment_id IS NOT NULL OR batch_run IS NOT NULL",
        )
        batch_op.create_index(
            "ix_decisions_strategy_run_unit", ["strategy_id", "batch_run", "unit_id"], unique=False
        )


def downgrade() -> None:
    superseded = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM decisions d JOIN strategies s ON s.id = d.strategy_id "
            "WHERE d.batch_run IS NOT NULL AND d.batch_run < s.batch_run"
        )
    )
    if superseded:
        raise RuntimeError(
            f"{superseded} decisions were superseded by a later batch run; the schema before "
            "0005_decision_batch_runs would count them in the strategy's ledger again. Export "
            "them (and decide what to keep) before downgrading; nothing was changed."
        )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_strategy_run_unit")
        batch_op.drop_constraint(op.f("ck_decisions_own_batch_run"), type_="check")
        batch_op.drop_column("reused_decision_id")
        batch_op.drop_column("batch_run")
    # decisions and variants reference strategies: SQLite cannot drop and recreate the table
    # under them, but drops a plain column in place (SQLite 3.35+)
    with op.batch_alter_table("strategies", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("batch_run")
