"""Job ownership: the identity that created a job (NULL: anonymous), its roles then, an index to list its jobs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """meta.jobs.owner, meta.jobs.owner_roles and jobs_owner_idx (existing jobs become anonymous ones)."""
    op.add_column("jobs", sa.Column("owner", sa.Text()), schema="meta")
    op.add_column("jobs", sa.Column("owner_roles", postgresql.ARRAY(sa.Text()), nullable=False,
                                    server_default=sa.text("'{}'::text[]")), schema="meta")
    op.create_index("jobs_owner_idx", "jobs", ["owner", sa.text("created DESC")], schema="meta")


def downgrade() -> None:
    """Drop the owner columns and their index."""
    op.drop_index("jobs_owner_idx", table_name="jobs", schema="meta")
    op.drop_column("jobs", "owner_roles", schema="meta")
    op.drop_column("jobs", "owner", schema="meta")
