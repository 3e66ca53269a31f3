"""Dataset quality: each load's data-quality report and its set-aside rows, kept beside the catalog entry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """meta.datasets.quality (the load's quality report) and meta.datasets.rejects (rows set aside); both nullable."""
    op.add_column("datasets", sa.Column("quality", postgresql.JSONB()), schema="meta")
    op.add_column("datasets", sa.Column("rejects", postgresql.JSONB()), schema="meta")


def downgrade() -> None:
    """Drop the quality and rejects columns."""
    op.drop_column("datasets", "rejects", schema="meta")
    op.drop_column("datasets", "quality", schema="meta")
