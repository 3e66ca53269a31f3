"""Feature edits (OGC API - Features Part 4): meta.feature_changes, the audit trail of every create, replace, update
and delete through the API (who, when, which feature, before and after).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    """meta.feature_changes and its per-layer index (newest first)."""
    op.create_table(
        "feature_changes",
        sa.Column("change_id", sa.BigInteger(), sa.Identity(always=True)),
        sa.Column("layer_id", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("feature_id", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("subject_name", sa.Text()),
        sa.Column("via", sa.Text(), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("changed_at", TSTZ, nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("data_version", sa.BigInteger(), nullable=False),
        sa.Column("before", postgresql.JSONB()),
        sa.Column("after", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("change_id", name="feature_changes_pkey"),
        sa.CheckConstraint("operation IN ('create', 'replace', 'update', 'delete')",
                           name="feature_changes_operation_check"),
        schema="meta",
    )
    op.create_index("feature_changes_layer_idx", "feature_changes", ["layer_id", sa.text("change_id DESC")],
                    schema="meta")


def downgrade() -> None:
    """Drop the audit table (its index goes with it)."""
    op.drop_table("feature_changes", schema="meta")
