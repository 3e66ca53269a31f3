"""API keys for services: a public id, the sha256 of the secret, roles, optional expiry, revocation; changes notify.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = postgresql.TIMESTAMP(timezone=True)

NOTIFY = """
CREATE OR REPLACE FUNCTION meta.notify_api_keys() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sejong_api_keys', COALESCE(NEW.key_id, OLD.key_id));  -- servers drop their cached entry
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON meta.api_keys
  FOR EACH ROW EXECUTE FUNCTION meta.notify_api_keys();
"""


def upgrade() -> None:
    """meta.api_keys and its notify trigger."""
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text()),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.Text(), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("created_at", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", TSTZ),
        sa.Column("revoked_at", TSTZ),
        sa.PrimaryKeyConstraint("key_id", name="api_keys_pkey"),
        schema="meta",
    )
    op.execute(NOTIFY)


def downgrade() -> None:
    """Drop the table, its trigger and function."""
    op.drop_table("api_keys", schema="meta")
    op.execute("DROP FUNCTION IF EXISTS meta.notify_api_keys()")
