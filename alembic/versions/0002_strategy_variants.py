"""Strategies as experiment variants: a variant may reference a strategy; decisions served through
an experiment record the experiment and the variant (their strategy is then optional).

Revision ID: 0002_strategy_variants
Revises: 0001_baseline
Create Date: 2026-11-29 10:00:00

Downgrade deletes the decisions that have no strategy (those served by an experiment's incentive
or control variant): the old schema cannot hold them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_strategy_variants"
down_revision: str | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strategy_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_variants_strategy_id_strategies"), "strategies", ["strategy_id"], ["id"]
        )
        batch_op.create_check_constraint(
            op.f("ck_variants_one_treatment"), "incentive_id IS NULL OR strategy_id IS NULL"
        )

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("experiment_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("variant_id", sa.Integer(), nullable=True))
        batch_op.alter_column("strategy_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            op.f("fk_decisions_experiment_id_experiments"),
            "experiments",
            ["experiment_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            op.f("fk_decisions_variant_id_variants"),
            "variants",
            ["variant_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(
            op.f("ck_decisions_strategy_or_experiment"),
            "strategy_id IS NOT NULL OR experiment_id IS NOT NULL",
        )
        batch_op.create_index(
            "ix_decisions_experiment_unit", ["experiment_id", "unit_id"], unique=False
        )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM decisions WHERE strategy_id IS NULL"))
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_experiment_unit")
        batch_op.drop_constraint(op.f("ck_decisions_strategy_or_experiment"), type_="check")
        batch_op.drop_constraint(op.f("fk_decisions_variant_id_variants"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_decisions_experiment_id_experiments"), type_="foreignkey")
        batch_op.alter_column("strategy_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("variant_id")
        batch_op.drop_column("experiment_id")

    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_variants_one_treatment"), type_="check")
        batch_op.drop_constraint(op.f("fk_variants_strategy_id_strategies"), type_="foreignkey")
        batch_op.drop_column("strategy_id")
