"""Atomic, idempotent table loads: rows -> staging table -> validate -> swap + catalog in ONE transaction."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from loaders.crs import STORAGE_SRID
from loaders.errors import LoadError
from loaders.progress import Progress

DEFAULT_MAX_ROWS = 5_000_000
POLYGONAL = {"MultiPolygon", "Polygon"}

CATALOG_DDL = """
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
"""


@dataclass(frozen=True)
class Column:
    """A target column: name, PostgreSQL type (from code, never user text), Korean original name."""

    name: str
    pgtype: str = "text"
    ko: str = ""


@dataclass
class TableSpec:
    """A target table: columns (pk first), geometry type, optional partial-replace key."""

    table: str
    columns: list[Column]
    geom_type: str | None = "Point"
    pk: str = "id"
    generated_pk: bool = False
    replace_by: str | None = None
    indexes: list[str] = field(default_factory=list)

    @property
    def schema(self) -> str:
        """Schema part of the table name."""
        return self.table.split(".", 1)[0] if "." in self.table else "public"

    @property
    def name(self) -> str:
        """Unqualified table name."""
        return self.table.split(".", 1)[-1]

    @property
    def qualified(self) -> str:
        """schema.table."""
        return f"{self.schema}.{self.name}"

    def ident(self) -> sql.Composed:
        """The table as a quoted identifier."""
        return sql.Identifier(self.schema, self.name)

    def load_columns(self) -> list[str]:
        """Columns written by loaders (the generated pk excluded), geometry last."""
        cols = [c.name for c in self.columns if not (self.generated_pk and c.name == self.pk)]
        return [*cols, "geom"] if self.geom_type else cols


@dataclass
class SourceFile:
    """One source file of a load, recorded in the catalog."""

    file: str
    sha256: str = ""
    url: str = ""
    rows: int = 0

    def as_json(self) -> dict[str, Any]:
        """Catalog representation."""
        d: dict[str, Any] = {"file": self.file, "sha256": self.sha256, "rows": self.rows}
        if self.url:
            d["url"] = self.url
        return d


@dataclass
class Meta:
    """Catalog text for a table."""

    title: str = ""
    licence: str = ""
    attribution: str = ""


@dataclass
class LoadResult:
    """Outcome of a successful load."""

    table: str
    rows: int
    skipped: int
    repaired: int
    data_version: int


@dataclass
class RowStats:
    """Counters a row producer fills while it yields rows."""

    skipped: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def connect(dsn: str) -> psycopg2.extensions.connection:
    """Open a connection (autocommit off)."""
    try:
        return psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        raise LoadError(f"cannot connect to the database ({dsn}): {exc}".strip()) from exc


def ensure_catalog(conn: psycopg2.extensions.connection) -> None:
    """Create meta.datasets, the staging schema and the grade functions (idempotent)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('sejong-loaders-ddl'))")
        cur.execute(CATALOG_DDL)


def ensure_table(conn: psycopg2.extensions.connection, spec: TableSpec) -> None:
    """CREATE TABLE IF NOT EXISTS with pk, geometry, GiST index and Korean column comments."""
    defs: list[sql.Composable] = []
    for c in spec.columns:
        pk = sql.SQL(" PRIMARY KEY") if c.name == spec.pk else sql.SQL("")
        defs.append(sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.pgtype), pk))
    if spec.geom_type:
        defs.append(sql.SQL("geom geometry({}, {})").format(sql.SQL(spec.geom_type), sql.Literal(STORAGE_SRID)))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema)))
        cur.execute(sql.SQL("SELECT to_regclass({})").format(sql.Literal(spec.qualified)))
        row = cur.fetchone()
        if row is not None and row[0] is not None:
            return
        cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(spec.ident(), sql.SQL(", ").join(defs)))
        if spec.geom_type:
            cur.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gist (geom)").format(
                sql.Identifier(f"{spec.name}_geom_gist"), spec.ident()))
        for col in spec.indexes:
            cols = [sql.Identifier(p.strip()) for p in col.split(",")]
            idx = f"{spec.name}_{'_'.join(p.strip() for p in col.split(','))}_idx"
            cur.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(idx[:63]), spec.ident(), sql.SQL(", ").join(cols)))
        for c in spec.columns:
            if c.ko:
                cur.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                    spec.ident(), sql.Identifier(c.name), sql.Literal(c.ko)))


def prepare(dsn: str, specs: Iterable[TableSpec]) -> None:
    """Create the catalog and the (empty) target tables if missing."""
    conn = connect(dsn)
    try:
        ensure_catalog(conn)
        for spec in specs:
            ensure_table(conn, spec)
        conn.commit()
    finally:
        conn.close()


_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(v: Any) -> str:
    """One value in COPY text format."""
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, float, Decimal)):
        return str(v)
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False).translate(_ESC)
    return str(v).translate(_ESC)


def max_rows_default() -> int:
    """Row limit per load: SEJONG_LOADER_MAX_ROWS or 5,000,000."""
    return int(os.environ.get("SEJONG_LOADER_MAX_ROWS", DEFAULT_MAX_ROWS))


def _copy_rows(cur: psycopg2.extensions.cursor, staging: sql.Composed, cols: list[str],
               rows: Iterable[Mapping[str, Any]], label: str, max_rows: int, total: int | None) -> int:
    """Stream rows into the staging table with COPY in batches; returns the row count."""
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, sql.SQL(", ").join(map(sql.Identifier, cols)))
    copy_text = copy.as_string(cur)
    progress = Progress(label, total)
    buf = io.StringIO()
    n = 0
    pending = 0
    for row in rows:
        n += 1
        if n > max_rows:
            raise LoadError(f"{label}: more than {max_rows:,} rows — refused by the row limit "
                            f"(raise it with --max-rows or SEJONG_LOADER_MAX_ROWS)")
        buf.write("\t".join(_copy_value(row.get(c)) for c in cols))
        buf.write("\n")
        pending += 1
        progress.tick()
        if pending >= 5000:
            buf.seek(0)
            cur.copy_expert(copy_text, buf)
            buf = io.StringIO()
            pending = 0
    if pending:
        buf.seek(0)
        cur.copy_expert(copy_text, buf)
    progress.finish()
    return n


def _merge_sources(old: list[dict[str, Any]], new: list[SourceFile], replace: bool) -> list[dict[str, Any]]:
    """New catalog source list; partial replaces keep other files' entries."""
    fresh = [s.as_json() for s in new]
    if replace:
        return fresh
    names = {s.file for s in new}
    return [o for o in old if o.get("file") not in names] + fresh


def load_table(dsn: str, spec: TableSpec, rows: Iterable[Mapping[str, Any]], *, label: str,
               sources: list[SourceFile], meta: Meta, stats: RowStats | None = None,
               max_rows: int | None = None, total: int | None = None) -> LoadResult:
    """Load rows into spec.table atomically: nothing touches the target before the final commit."""
    stats = stats or RowStats()
    max_rows = max_rows if max_rows is not None else max_rows_default()
    prepare(dsn, [spec])
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (spec.qualified,))
            stg = sql.Identifier("staging", re.sub(r"\W", "_", f"{spec.schema}__{spec.name}")[:50] + "_load")
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stg))
            cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(stg, spec.ident()))
            cols = spec.load_columns()
            _check_columns(cur, spec, cols, label)
            n = _copy_rows(cur, stg, cols, rows, label, max_rows, total)
            if n == 0:
                raise LoadError(f"{label}: zero rows to load (empty file or nothing matched the filter)")
            for src in sources:
                src.rows = src.rows or stats.per_source.get(src.file, n if len(sources) == 1 else 0)
            repaired = _repair(cur, spec, stg)
            _check_unique(cur, spec, stg, label)
            version = _swap(cur, spec, stg, meta, sources, stats, repaired)
            cur.execute(sql.SQL("DROP TABLE {}").format(stg))
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(spec.ident()))
            total_rows = int(_one(cur))
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise LoadError(f"{label}: database refused the data: {str(exc).strip().splitlines()[0]}") from exc
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return LoadResult(spec.qualified, total_rows if spec.replace_by else n, stats.skipped, repaired, version)


def _check_columns(cur: psycopg2.extensions.cursor, spec: TableSpec, cols: list[str], label: str) -> None:
    """Refuse a load whose columns the existing target table lacks."""
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                (spec.schema, spec.name))
    have = {r[0] for r in cur.fetchall()}
    missing = [c for c in cols if c not in have]
    if missing:
        raise LoadError(f"{label}: table {spec.qualified} exists with other columns (lacks {', '.join(missing[:5])}); "
                        f"load into another --table or drop it first")


def _one(cur: psycopg2.extensions.cursor) -> Any:
    row = cur.fetchone()
    return row[0] if row else None


def _repair(cur: psycopg2.extensions.cursor, spec: TableSpec, stg: sql.Composed) -> int:
    """ST_MakeValid invalid polygons in staging; returns the number repaired."""
    if spec.geom_type not in POLYGONAL:
        return 0
    fix = "ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))" if spec.geom_type.startswith("Multi") \
        else "ST_CollectionExtract(ST_MakeValid(geom), 3)"
    cur.execute(sql.SQL("UPDATE {} SET geom = " + fix + " WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)")
                .format(stg))
    return int(cur.rowcount)


def _check_unique(cur: psycopg2.extensions.cursor, spec: TableSpec, stg: sql.Composed, label: str) -> None:
    """Refuse duplicate or missing primary keys with a clear message."""
    if spec.generated_pk:
        return
    pk = sql.Identifier(spec.pk)
    cur.execute(sql.SQL("SELECT {pk}::text, count(*) FROM {t} GROUP BY {pk} HAVING count(*) > 1 OR {pk} IS NULL "
                        "LIMIT 1").format(pk=pk, t=stg))
    row = cur.fetchone()
    if row:
        raise LoadError(f"{label}: column {spec.pk}: value {row[0]!r} occurs {row[1]} times (must be unique)")


def _swap(cur: psycopg2.extensions.cursor, spec: TableSpec, stg: sql.Composed, meta: Meta,
          sources: list[SourceFile], stats: RowStats, repaired: int) -> int:
    """Replace the target's rows and bump the catalog in the current transaction."""
    cols = sql.SQL(", ").join(map(sql.Identifier, spec.load_columns()))
    if spec.replace_by:
        key = sql.Identifier(spec.replace_by)
        cur.execute(sql.SQL("DELETE FROM {t} WHERE {k} IN (SELECT DISTINCT {k} FROM {s})").format(
            t=spec.ident(), k=key, s=stg))
    else:
        cur.execute(sql.SQL("TRUNCATE {}").format(spec.ident()))
    cur.execute(sql.SQL("INSERT INTO {} ({c}) SELECT {c} FROM {}").format(spec.ident(), stg, c=cols))
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(spec.ident()))
    rows_now = int(_one(cur))
    cur.execute("SELECT sources FROM meta.datasets WHERE table_name = %s FOR UPDATE", (spec.qualified,))
    row = cur.fetchone()
    old = list(row[0]) if row and row[0] else []
    merged = _merge_sources(old, sources, replace=not spec.replace_by)
    cur.execute(
        """INSERT INTO meta.datasets AS d (table_name, title, licence, attribution, sources, loaded_at,
                                           rows_loaded, rows_skipped, geometries_repaired, data_version)
           VALUES (%s, %s, %s, %s, %s::jsonb, now(), %s, %s, %s, 1)
           ON CONFLICT (table_name) DO UPDATE SET title = EXCLUDED.title, licence = EXCLUDED.licence,
             attribution = EXCLUDED.attribution, sources = EXCLUDED.sources, loaded_at = now(),
             rows_loaded = EXCLUDED.rows_loaded, rows_skipped = EXCLUDED.rows_skipped,
             geometries_repaired = EXCLUDED.geometries_repaired, data_version = d.data_version + 1
           RETURNING data_version""",
        (spec.qualified, meta.title, meta.licence, meta.attribution, json.dumps(merged, ensure_ascii=False),
         rows_now, stats.skipped, repaired))
    return int(_one(cur))


def catalog_entry(dsn: str, table: str) -> dict[str, Any] | None:
    """The catalog row of a table (None when never loaded)."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('meta.datasets')")
            if _one(cur) is None:
                return None
            cur.execute("SELECT table_name, sources, rows_loaded, data_version FROM meta.datasets "
                        "WHERE table_name = %s", (table,))
            row = cur.fetchone()
            if not row:
                return None
            return {"table_name": row[0], "sources": row[1], "rows_loaded": row[2], "data_version": row[3]}
    finally:
        conn.close()
