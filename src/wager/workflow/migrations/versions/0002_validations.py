"""Validations: the verdicts of ``wager validate RUN``, kept beside the run they checked.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

A run row is immutable; each validation of it is a new row (gates, replay,
predictive checks, calibration), so a report can show the latest and the
history stays auditable.

This file is frozen: later schema changes go in new revisions, never here.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "validations",
        sa.Column("validation_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_validations_run_id_created_at", "validations", ["run_id", "created_at"])


def downgrade() -> None:
    op.drop_table("validations")
