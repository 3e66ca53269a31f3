"""The project's own schema `meta` (catalog, jobs, result layers, API keys, feature edits, surfaces) in SQLAlchemy Core,
migrated by Alembic.

Data tables written by loaders (public.*, network.*, results.job_*) are made per load and are not declared here.
`migrate(dsn)` brings a database to the newest revision in core/migrations/versions; loaders and the job runtime
call it before they touch `meta`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import psycopg2
import psycopg2.extensions
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg2 import sql
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Double,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.pool import NullPool

LOGGER = logging.getLogger(__name__)

SCHEMA = "meta"
VERSION_TABLE = "alembic_version"  # kept in `meta`, beside the tables it versions
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = "sejong-schema-migrate"
JOB_STATUSES = ("accepted", "running", "successful", "failed", "dismissed")

metadata = MetaData(schema=SCHEMA)
_TSTZ = TIMESTAMP(timezone=True)

datasets = Table(
    "datasets", metadata,
    Column("table_name", Text),
    Column("title", Text),
    Column("licence", Text),
    Column("attribution", Text),
    Column("sources", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("loaded_at", _TSTZ, nullable=False, server_default=text("now()")),
    Column("rows_loaded", Integer, nullable=False, server_default=text("0")),
    Column("rows_skipped", Integer, nullable=False, server_default=text("0")),
    Column("geometries_repaired", Integer, nullable=False, server_default=text("0")),
    Column("data_version", BigInteger, nullable=False, server_default=text("1")),
    Column("quality", JSONB),  # the load's data-quality report (0003)
    Column("rejects", JSONB),  # rows set aside by --max-bad-rows: file, line, column, reason (0003)
    PrimaryKeyConstraint("table_name", name="datasets_pkey"),
)

jobs = Table(
    "jobs", metadata,
    Column("job_id", Text),
    Column("process_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("progress", Integer, nullable=False, server_default=text("0")),
    Column("message", Text, nullable=False, server_default=text("''::text")),
    Column("inputs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("response", Text, nullable=False, server_default=text("'document'::text")),
    Column("results", JSONB),
    Column("error", JSONB),
    Column("compute_s", Double),
    Column("owner_host", Text, nullable=False),
    Column("owner_pid", Integer, nullable=False),
    Column("created", _TSTZ, nullable=False, server_default=text("clock_timestamp()")),
    Column("started", _TSTZ),
    Column("finished", _TSTZ),
    Column("updated", _TSTZ, nullable=False, server_default=text("clock_timestamp()")),
    Column("lease_expires", _TSTZ),  # renewed by the server holding the job; past: that server is gone
    Column("owner", Text),  # who created the job: oidc:<sub> or api-key:<id>; NULL: anonymous (0005)
    Column("owner_roles", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),  # their roles then
    PrimaryKeyConstraint("job_id", name="jobs_pkey"),
    CheckConstraint("status IN ({})".format(", ".join(f"'{s}'" for s in JOB_STATUSES)), name="jobs_status_check"),
)
Index("jobs_created_idx", jobs.c.created.desc())
Index("jobs_active_idx", jobs.c.status, postgresql_where=text("status IN ('accepted', 'running')"))
Index("jobs_owner_idx", jobs.c.owner, jobs.c.created.desc())  # a caller's own jobs, newest first (0005)

result_layers = Table(
    "result_layers", metadata,
    Column("layer_id", Text),
    Column("table_name", Text, nullable=False),
    Column("title_ko", Text),
    Column("title_en", Text),
    Column("geometry_type", Text),
    Column("job_id", Text),
    Column("created_at", _TSTZ, nullable=False, server_default=text("now()")),
    Column("expires_at", _TSTZ, nullable=False),
    Column("style", JSONB),
    PrimaryKeyConstraint("layer_id", name="result_layers_pkey"),
)
Index("result_layers_expires_idx", result_layers.c.expires_at)


api_keys = Table(
    "api_keys", metadata,
    Column("key_id", Text),  # the public part of a key (sjk_<key_id>_<secret>)
    Column("name", Text, nullable=False),
    Column("secret_sha256", Text, nullable=False),  # hex sha256 of the secret; the secret itself is never stored
    Column("roles", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("created_at", _TSTZ, nullable=False, server_default=text("now()")),
    Column("expires_at", _TSTZ),
    Column("revoked_at", _TSTZ),
    PrimaryKeyConstraint("key_id", name="api_keys_pkey"),
)  # 0004; its trigger notifies `sejong_api_keys` on every change

feature_changes = Table(
    "feature_changes", metadata,
    Column("change_id", BigInteger, Identity(always=True)),
    Column("layer_id", Text, nullable=False),
    Column("table_name", Text, nullable=False),
    Column("feature_id", Text, nullable=False),
    Column("operation", Text, nullable=False),  # create, replace, update, delete
    Column("subject", Text),  # who: the identity's subject (oidc sub or api-key id) and display name
    Column("subject_name", Text),
    Column("via", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("changed_at", _TSTZ, nullable=False, server_default=text("clock_timestamp()")),
    Column("data_version", BigInteger, nullable=False),  # the table's data version the change made
    Column("before", JSONB),  # the feature (GeoJSON, CRS84) before; NULL for create
    Column("after", JSONB),  # and after; NULL for delete
    PrimaryKeyConstraint("change_id", name="feature_changes_pkey"),
    CheckConstraint("operation IN ('create', 'replace', 'update', 'delete')", name="feature_changes_operation_check"),
)  # 0006: the audit trail of Features Part 4 edits
Index("feature_changes_layer_idx", feature_changes.c.layer_id, feature_changes.c.change_id.desc())

surfaces = Table(
    "surfaces", metadata,
    Column("surface_id", BigInteger, Identity(always=True)),
    Column("collection_id", Text, nullable=False),  # e.g. pm10_seoul
    Column("region", Text, nullable=False),
    Column("pollutant", Text, nullable=False),
    Column("period", Text, nullable=False),  # day | hour
    Column("valid_at", _TSTZ, nullable=False),
    Column("method", Text, nullable=False),  # the method that made the grid (kriging may fall back to idw)
    Column("readings_version", BigInteger, nullable=False),  # data version of public.air_quality_readings
    Column("stations", Integer, nullable=False),
    Column("validation", JSONB, nullable=False),  # leave-one-out {method: {rmse, mae, n}}
    Column("path", Text, nullable=False),  # the COG
    Column("built_at", _TSTZ, nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("surface_id", name="surfaces_pkey"),
    UniqueConstraint("collection_id", "valid_at", name="surfaces_collection_valid_at_key"),
    CheckConstraint("period IN ('day', 'hour')", name="surfaces_period_check"),
)  # 0007: air-quality surfaces


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini), optionally bound to an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.set_main_option("version_table_schema", SCHEMA)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head() -> str:
    """The newest revision of core/migrations/versions."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if rev is None:
        raise RuntimeError(f"no migrations under {MIGRATIONS}")
    return rev


def current(cur: psycopg2.extensions.cursor) -> str | None:
    """The revision a database is at (None when never migrated)."""
    cur.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{VERSION_TABLE}",))
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    cur.execute(sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(SCHEMA, VERSION_TABLE)))
    found = cur.fetchone()
    return str(found[0]) if found else None


def _revision(dsn: str) -> str | None:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            return current(cur)
    finally:
        conn.close()


def run(dsn: str, revision: str = "head", *, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) to a revision in one transaction, serialised by an advisory lock."""
    engine = create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(dsn), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": LOCK_KEY})
            cfg = alembic_config(conn)
            if downgrade:
                command.downgrade(cfg, revision)
            else:
                command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def migrate(dsn: str) -> None:
    """Bring the database's own schema to the newest revision (one cheap query when already there)."""
    target = head()
    if _revision(dsn) == target:
        return
    LOGGER.info("migrating the database schema to %s", target)
    run(dsn, target)  # a concurrent caller waits on the lock, then finds the database at head (a no-op)
