"""Alembic migrations of the `meta` schema on real PostGIS databases: fresh, old installation, no-op, down and up."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from core import schema

# The DDL that loaders/core.py (CATALOG_DDL), processes/jobs.py and processes/results.py executed before the
# migrations: an installation of that time has exactly this (a fixture of the past, kept verbatim).
OLD_DDL = [
    """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE TABLE IF NOT EXISTS meta.datasets (
  table_name text PRIMARY KEY,
  title text, licence text, attribution text,
  sources jsonb NOT NULL DEFAULT '[]',
  loaded_at timestamptz NOT NULL DEFAULT now(),
  rows_loaded integer NOT NULL DEFAULT 0,
  rows_skipped integer NOT NULL DEFAULT 0,
  geometries_repaired integer NOT NULL DEFAULT 0,
  data_version bigint NOT NULL DEFAULT 1
);
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
""",
    """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.jobs (
  job_id text PRIMARY KEY,
  process_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')),
  progress integer NOT NULL DEFAULT 0,
  message text NOT NULL DEFAULT '',
  inputs jsonb NOT NULL DEFAULT '{}',
  response text NOT NULL DEFAULT 'document',
  results jsonb,
  error jsonb,
  compute_s double precision,
  owner_host text NOT NULL,
  owner_pid integer NOT NULL,
  created timestamptz NOT NULL DEFAULT clock_timestamp(),
  started timestamptz,
  finished timestamptz,
  updated timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS jobs_created_idx ON meta.jobs (created DESC);
CREATE INDEX IF NOT EXISTS jobs_active_idx ON meta.jobs (status) WHERE status IN ('accepted', 'running');
""",
    """
CREATE SCHEMA IF NOT EXISTS results;
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.result_layers (
  layer_id text PRIMARY KEY,
  table_name text NOT NULL,
  title_ko text, title_en text,
  geometry_type text,
  job_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  style jsonb
);
CREATE INDEX IF NOT EXISTS result_layers_expires_idx ON meta.result_layers (expires_at);
""",
]

# What pg_dump would show of `meta`: columns, constraints, indexes, triggers, functions (names and definitions).
DESCRIBE = """
SELECT 'column', c.relname || '.' || a.attname,
       concat_ws(' ', format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = 'meta' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> 'alembic_version'
UNION ALL
SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE connamespace = 'meta'::regnamespace AND conrelid::regclass::text <> 'meta.alembic_version'
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'meta' AND tablename <> 'alembic_version'
UNION ALL
SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'meta.datasets'::regclass
UNION ALL
SELECT 'function', proname, pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = 'meta'::regnamespace
UNION ALL
SELECT 'schema', nspname, '' FROM pg_namespace WHERE nspname IN ('meta', 'staging', 'results')
ORDER BY 1, 2, 3
"""


def _admin(dsn: str) -> str:
    """A role that may create databases and PostGIS (the throwaway cluster's superuser)."""
    return os.environ.get("SEJONG_TEST_ADMIN_URL") or dsn


def _exec(dsn: str, query: str | sql.Composable, params: Any = None, *, autocommit: bool = False) -> list[Any]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


@pytest.fixture()
def new_database(dsn: str) -> Iterator[Callable[[], str]]:
    """Makes empty PostGIS databases owned by the test role (dropped afterwards); yields a factory of DSNs."""
    admin, made = _admin(dsn), []
    owner = parse_dsn(dsn)["user"]

    def make() -> str:
        name = f"sejong_mig_{uuid.uuid4().hex[:10]}"
        _exec(admin, sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)),
              autocommit=True)
        made.append(name)
        _exec(make_dsn(admin, dbname=name), "CREATE EXTENSION IF NOT EXISTS postgis")
        return make_dsn(dsn, dbname=name)

    yield make
    for name in made:
        _exec(admin, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)), autocommit=True)


def _revision(dsn: str) -> str | None:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            return schema.current(cur)
    finally:
        conn.close()


def _columns(dsn: str, table: str) -> dict[str, tuple[str, str, str | None]]:
    rows = _exec(dsn, "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
                      "WHERE table_schema = 'meta' AND table_name = %s", (table,))
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_fresh_database_migrates_to_head(new_database: Callable[[], str]) -> None:
    db = new_database()
    assert _revision(db) is None
    schema.migrate(db)
    assert _revision(db) == schema.head() == "0007"
    assert _exec(db, "SELECT count(*) FROM meta.alembic_version") == [(1,)]
    datasets = _columns(db, "datasets")
    assert list(datasets) == ["table_name", "title", "licence", "attribution", "sources", "loaded_at", "rows_loaded",
                              "rows_skipped", "geometries_repaired", "data_version", "quality", "rejects"]
    assert datasets["sources"] == ("jsonb", "NO", "'[]'::jsonb")
    assert datasets["quality"] == datasets["rejects"] == ("jsonb", "YES", None)  # 0003
    assert datasets["data_version"] == ("bigint", "NO", "1")
    jobs = _columns(db, "jobs")
    assert jobs["status"][:2] == ("text", "NO")
    assert jobs["created"] == ("timestamp with time zone", "NO", "clock_timestamp()")
    assert jobs["compute_s"] == ("double precision", "YES", None)
    assert jobs["lease_expires"] == ("timestamp with time zone", "YES", None)
    assert jobs["owner"] == ("text", "YES", None)  # 0005
    assert jobs["owner_roles"] == ("ARRAY", "NO", "'{}'::text[]")
    assert set(_columns(db, "result_layers")) == {"layer_id", "table_name", "title_ko", "title_en", "geometry_type",
                                                  "job_id", "created_at", "expires_at", "style"}
    keys = _columns(db, "api_keys")  # 0004
    assert list(keys) == ["key_id", "name", "secret_sha256", "roles", "created_at", "expires_at", "revoked_at"]
    assert keys["roles"] == ("ARRAY", "NO", "'{}'::text[]")
    assert _exec(db, "SELECT meta.pm10_grade(81), meta.pm25_grade(10)") == [("나쁨", "좋음")]
    with pytest.raises(psycopg2.errors.CheckViolation):
        _exec(db, "INSERT INTO meta.jobs (job_id, process_id, status, owner_host, owner_pid) "
                  "VALUES ('j', 'p', 'bogus', 'h', 1)")
    assert {r[0] for r in _exec(db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'meta'")} >= {
        "jobs_created_idx", "jobs_active_idx", "jobs_owner_idx", "result_layers_expires_idx"}
    assert _exec(db, "SELECT nspname FROM pg_namespace WHERE nspname IN ('staging', 'results') ORDER BY 1") == [
        ("results",), ("staging",)]


def test_trigger_notifies_on_catalog_write(new_database: Callable[[], str]) -> None:
    db = new_database()
    schema.migrate(db)
    conn = psycopg2.connect(db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("LISTEN sejong_data_version")
            cur.execute("INSERT INTO meta.datasets (table_name) VALUES ('public.bike_stations')")
        conn.poll()
        assert [n.payload for n in conn.notifies] == ["public.bike_stations"]
    finally:
        conn.close()


def test_declared_tables_match_the_migrations(new_database: Callable[[], str]) -> None:
    """core/schema.py and the migrations agree: autogenerate finds nothing to do at head, and does find a change."""
    db = new_database()
    schema.migrate(db)
    engine = create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(db), poolclass=NullPool)
    opts = {"include_schemas": True, "include_name": lambda n, t, _: n == schema.SCHEMA if t == "schema" else True,
            "compare_server_default": True, "version_table_schema": schema.SCHEMA}
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts=opts), schema.metadata) == []
            conn.exec_driver_sql("ALTER TABLE meta.jobs ALTER COLUMN progress SET DEFAULT 5")
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), schema.metadata)
            assert [d[0][0] for d in diff] == ["modify_default"]
    finally:
        engine.dispose()


def test_old_installation_is_stamped_and_keeps_its_rows(new_database: Callable[[], str]) -> None:
    old, fresh = new_database(), new_database()
    for ddl in OLD_DDL:
        _exec(old, ddl)
    _exec(old, "INSERT INTO meta.datasets (table_name, title, sources, rows_loaded, data_version) "
               "VALUES ('public.bike_stations', '공공자전거 대여소', '[{\"file\": \"a.csv\"}]', 42, 7)")
    _exec(old, "INSERT INTO meta.jobs (job_id, process_id, status, owner_host, owner_pid) "
               "VALUES ('j1', 'soc-siting', 'successful', 'host', 1)")
    before = _exec(old, DESCRIBE)
    assert _revision(old) is None
    schema.run(old, "0001")
    assert _exec(old, DESCRIBE) == before  # 0001 only stamps what the old DDL made
    schema.migrate(old)
    assert _revision(old) == schema.head()
    assert _exec(old, "SELECT table_name, title, sources, rows_loaded, data_version FROM meta.datasets") == [
        ("public.bike_stations", "공공자전거 대여소", [{"file": "a.csv"}], 42, 7)]
    assert _exec(old, "SELECT job_id, status FROM meta.jobs") == [("j1", "successful")]
    after = _exec(old, DESCRIBE)
    added = set(after) - set(before)
    assert {r[1] for r in added if "api_keys" in r[1]} == {  # 0004: a new table, its key, trigger function
        "api_keys.key_id", "api_keys.name", "api_keys.secret_sha256", "api_keys.roles", "api_keys.created_at",
        "api_keys.expires_at", "api_keys.revoked_at", "api_keys_pkey", "notify_api_keys"}
    assert {r[1] for r in added if "feature_changes" in r[1]} >= {  # 0006: the audit table of feature edits
        "feature_changes.change_id", "feature_changes.before", "feature_changes.after", "feature_changes_pkey",
        "feature_changes_operation_check", "feature_changes_layer_idx"}
    assert {r[1] for r in added if "surfaces" in r[1]} >= {  # 0007: the catalog of air-quality surfaces
        "surfaces.surface_id", "surfaces.collection_id", "surfaces.validation", "surfaces.path", "surfaces_pkey",
        "surfaces_collection_valid_at_key", "surfaces_period_check"}
    assert {r for r in added if "api_keys" not in r[1] and "feature_changes" not in r[1]
            and "surfaces" not in r[1]} == {
        ("column", "jobs.lease_expires", "timestamp with time zone f"), ("column", "datasets.quality", "jsonb f"),
        ("column", "datasets.rejects", "jsonb f"), ("column", "jobs.owner", "text f"),  # 0005
        ("column", "jobs.owner_roles", "text[] t '{}'::text[]"),
        ("index", "jobs_owner_idx", "CREATE INDEX jobs_owner_idx ON meta.jobs USING btree (owner, created DESC)")}
    schema.migrate(fresh)
    assert _exec(fresh, DESCRIBE) == after  # and it is exactly what a fresh installation gets


def test_migrate_at_head_is_a_no_op(new_database: Callable[[], str]) -> None:
    db = new_database()
    schema.migrate(db)
    state = "SELECT xmin::text, version_num, 'meta.jobs'::regclass::oid::int FROM meta.alembic_version"
    first = _exec(db, state)
    schema.migrate(db)
    assert _exec(db, state) == first  # no write, no re-created table
    # at head it does not even wait for the migration lock: it returns while another session holds it
    holder = psycopg2.connect(db)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (schema.LOCK_KEY,))
        done = threading.Event()
        worker = threading.Thread(target=lambda: (schema.migrate(db), done.set()), daemon=True)
        worker.start()
        assert done.wait(10)
    finally:
        holder.close()


def test_concurrent_migrations_serialise(new_database: Callable[[], str]) -> None:
    db = new_database()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            schema.migrate(db)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    assert _exec(db, "SELECT version_num FROM meta.alembic_version") == [(schema.head(),)]


def test_downgrade_to_base_then_upgrade(new_database: Callable[[], str]) -> None:
    db = new_database()
    schema.migrate(db)
    schema.run(db, "base", downgrade=True)
    assert _revision(db) is None
    assert _exec(db, "SELECT relname FROM pg_class WHERE relnamespace = 'meta'::regnamespace ORDER BY 1") == [
        ("alembic_version",), ("alembic_version_pkc",)]  # Alembic keeps its (now empty) version table
    assert _exec(db, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'meta'::regnamespace") == [(0,)]
    assert _exec(db, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('staging', 'results')") == [(0,)]
    schema.migrate(db)
    assert _revision(db) == schema.head()
    assert _exec(db, "SELECT meta.pm25_grade(80)") == [("매우나쁨",)]
    assert len(_columns(db, "jobs")) == 19  # 0002 added lease_expires, 0005 owner and owner_roles
