"""The schema as the IF NOT EXISTS DDL of loaders and processes made it: catalog, jobs, result layers.

Every statement tolerates what that DDL already created, so an existing installation upgrades to this revision
without change (it is only stamped).

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateSchema, DropSchema

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = postgresql.TIMESTAMP(timezone=True)

FUNCTIONS = """
CREATE OR REPLACE FUNCTION meta.notify_data_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sejong_data_version', NEW.table_name);  -- delivered at commit, with the swap
  RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER datasets_notify AFTER INSERT OR UPDATE ON meta.datasets
  FOR EACH ROW EXECUTE FUNCTION meta.notify_data_version();
CREATE OR REPLACE FUNCTION meta.pm10_grade(v numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL THEN NULL WHEN v <= 30 THEN '좋음' WHEN v <= 80 THEN '보통'
              WHEN v <= 150 THEN '나쁨' ELSE '매우나쁨' END $$;
CREATE OR REPLACE FUNCTION meta.pm25_grade(v numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL THEN NULL WHEN v <= 15 THEN '좋음' WHEN v <= 35 THEN '보통'
              WHEN v <= 75 THEN '나쁨' ELSE '매우나쁨' END $$;
"""


def upgrade() -> None:
    """Schemas meta, staging, results; meta.datasets with its notify trigger; meta.jobs; meta.result_layers."""
    for schema in ("meta", "staging", "results"):
        op.execute(CreateSchema(schema, if_not_exists=True))
    op.create_table(
        "datasets",
        sa.Column("table_name", sa.Text()),
        sa.Column("title", sa.Text()),
        sa.Column("licence", sa.Text()),
        sa.Column("attribution", sa.Text()),
        sa.Column("sources", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("loaded_at", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("rows_loaded", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("rows_skipped", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("geometries_repaired", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("data_version", sa.BigInteger(), nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("table_name", name="datasets_pkey"),
        schema="meta", if_not_exists=True,
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.Text()),
        sa.Column("process_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("message", sa.Text(), nullable=False, server_default=sa.text("''::text")),
        sa.Column("inputs", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("response", sa.Text(), nullable=False, server_default=sa.text("'document'::text")),
        sa.Column("results", postgresql.JSONB()),
        sa.Column("error", postgresql.JSONB()),
        sa.Column("compute_s", sa.Double()),
        sa.Column("owner_host", sa.Text(), nullable=False),
        sa.Column("owner_pid", sa.Integer(), nullable=False),
        sa.Column("created", TSTZ, nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("started", TSTZ),
        sa.Column("finished", TSTZ),
        sa.Column("updated", TSTZ, nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.PrimaryKeyConstraint("job_id", name="jobs_pkey"),
        sa.CheckConstraint("status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')",
                           name="jobs_status_check"),
        schema="meta", if_not_exists=True,
    )
    op.create_index("jobs_created_idx", "jobs", [sa.text("created DESC")], schema="meta", if_not_exists=True)
    op.create_index("jobs_active_idx", "jobs", ["status"], schema="meta", if_not_exists=True,
                    postgresql_where=sa.text("status IN ('accepted', 'running')"))
    op.create_table(
        "result_layers",
        sa.Column("layer_id", sa.Text()),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("title_ko", sa.Text()),
        sa.Column("title_en", sa.Text()),
        sa.Column("geometry_type", sa.Text()),
        sa.Column("job_id", sa.Text()),
        sa.Column("created_at", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", TSTZ, nullable=False),
        sa.Column("style", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("layer_id", name="result_layers_pkey"),
        schema="meta", if_not_exists=True,
    )
    op.create_index("result_layers_expires_idx", "result_layers", ["expires_at"], schema="meta", if_not_exists=True)
    op.execute(FUNCTIONS)


def downgrade() -> None:
    """Drop what upgrade created; the staging and results schemas only when empty (never anyone's data)."""
    op.execute("DROP TRIGGER IF EXISTS datasets_notify ON meta.datasets")
    for table in ("result_layers", "jobs", "datasets"):
        op.drop_table(table, schema="meta", if_exists=True)
    op.execute("DROP FUNCTION IF EXISTS meta.notify_data_version(), meta.pm10_grade(numeric), "
               "meta.pm25_grade(numeric)")
    for schema in ("staging", "results"):
        op.execute(DropSchema(schema, if_exists=True))
