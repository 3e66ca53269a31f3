"""Job leases: a job queued or running holds a lease its server renews; an expired lease means the server is gone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """meta.jobs.lease_expires (active jobs of an older version get a lease from now)."""
    op.add_column("jobs", sa.Column("lease_expires", postgresql.TIMESTAMP(timezone=True)), schema="meta")
    op.execute("UPDATE meta.jobs SET lease_expires = clock_timestamp() + interval '1 minute' "
               "WHERE status IN ('accepted', 'running')")


def downgrade() -> None:
    """Drop the lease column."""
    op.drop_column("jobs", "lease_expires", schema="meta")
