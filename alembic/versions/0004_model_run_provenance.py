"""Model runs record who ran them and a fingerprint of the data they were trained on.

``created_by``: the OS user (or ``--user``) that ran ``liftlab uplift train``/``tune`` or
``liftlab models train``; ``data_fingerprint``: sha256 (hex) of the training frame, see
``experiments.jobs.fingerprint``. Both are nullable: runs recorded before this revision have neither.

Revision ID: 0004_model_run_provenance
Revises: 0003_events_without_name_index
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_model_run_provenance"
down_revision: str | None = "0003_events_without_name_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("data_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_runs", schema=None) as batch_op:
        batch_op.drop_column("data_fingerprint")
        batch_op.drop_column("created_by")
