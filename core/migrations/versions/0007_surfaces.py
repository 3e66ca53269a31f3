"""Air-quality surfaces: meta.surfaces, one row per interpolated grid (collection, pollutant, day) with the method
that made it, the readings data version it came from, its leave-one-out errors per method and its COG path.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-11
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    """meta.surfaces, unique per collection and time step."""
    op.create_table(
        "surfaces",
        sa.Column("surface_id", sa.BigInteger(), sa.Identity(always=True)),
        sa.Column("collection_id", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("pollutant", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("valid_at", TSTZ, nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("readings_version", sa.BigInteger(), nullable=False),
        sa.Column("stations", sa.Integer(), nullable=False),
        sa.Column("validation", postgresql.JSONB(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("built_at", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("surface_id", name="surfaces_pkey"),
        sa.UniqueConstraint("collection_id", "valid_at", name="surfaces_collection_valid_at_key"),
        sa.CheckConstraint("period IN ('day', 'hour')", name="surfaces_period_check"),
        schema="meta",
    )


def downgrade() -> None:
    """Drop the surface catalog (the COG files stay where they are)."""
    op.drop_table("surfaces", schema="meta")
