"""The run registry's first schema: runs, their posteriors, decision plans.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

A run row points at its posterior by content address (sha256 of the NetCDF
bytes), so identical posteriors are stored once. JSON documents are canonical
text (sorted keys), portable between SQLite and PostgreSQL. Timestamps are
ISO-8601 UTC strings of one fixed width, so text order is time order.

This file is frozen: later schema changes go in new revisions, never here.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "posteriors",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("netcdf", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("identity_hash", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("action", sa.String(256), nullable=True),
        sa.Column("engine", sa.String(64), nullable=True),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("posterior_digest", sa.String(64), sa.ForeignKey("posteriors.digest"), nullable=False),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_identity_hash", "runs", ["identity_hash"])
    op.create_index("ix_runs_domain_created_at", "runs", ["domain", "created_at"])
    op.create_index("ix_runs_posterior_digest", "runs", ["posterior_digest"])
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("policy_hash", sa.String(128), nullable=False),
    )
    op.create_index("ix_plans_domain_name_created_at", "plans", ["domain", "name", "created_at"])


def downgrade() -> None:
    op.drop_table("plans")
    op.drop_table("runs")
    op.drop_table("posteriors")
