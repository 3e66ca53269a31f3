"""Result layers: job outputs stored as temporary tables results.job_<id>_<name> with a catalog row."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg2.extensions
from psycopg2 import sql

from core.db import Database
from core.schema import migrate

_PG_TYPES = {bool: "boolean", int: "double precision", float: "double precision"}


def ensure(db: Database) -> None:
    """Migrate the database's own schema: the results schema and meta.result_layers (core.schema)."""
    migrate(db.dsn)


def layer_id(job_id: str, name: str) -> str:
    """Layer id (also the table name) of a job's output."""
    clean = re.sub(r"[^a-z0-9_]", "_", name.lower())[:30]
    return f"job_{job_id.replace('-', '')[:16]}_{clean}"


def _column_type(values: Sequence[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int, float}:
        return "double precision"
    if kinds == {bool}:
        return "boolean"
    return "text"


def store_layer(conn: psycopg2.extensions.connection, job_id: str, name: str, rows: list[dict[str, Any]],
                geometry_type: str, titles: tuple[str, str], ttl_hours: float,
                style: dict[str, Any] | None = None) -> str:
    """Write rows ({'geom_wkb': bytes in EPSG:5186, other keys: properties}) as a result layer; returns its id."""
    lid = layer_id(job_id, name)
    table = sql.Identifier("results", lid)
    keys = [k for k in (rows[0] if rows else {}) if k != "geom_wkb" and k != "id"]
    types = {k: _column_type([r.get(k) for r in rows]) for k in keys}
    cols = [sql.SQL("{} {}").format(sql.Identifier(k), sql.SQL(types[k])) for k in keys]
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        cur.execute(sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY, {} geom geometry({}, 5186))").format(
            table, sql.SQL("").join(sql.SQL("{}, ").format(c) for c in cols), sql.SQL(geometry_type)))
        ins = sql.SQL("INSERT INTO {} (id, {} geom) VALUES (%s, {} ST_SetSRID(%s::geometry, 5186))").format(
            table, sql.SQL("").join(sql.SQL("{}, ").format(sql.Identifier(k)) for k in keys),
            sql.SQL("").join(sql.SQL("%s, ") for _ in keys))
        for i, r in enumerate(rows, start=1):
            vals = [(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v) for v in
                    (r.get(k) for k in keys)]
            cur.execute(ins, [i, *vals, psycopg2.Binary(r["geom_wkb"])])
        cur.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(
            sql.Identifier(f"{lid}_gist"[:63]), table))
        cur.execute(sql.SQL("ANALYZE {}").format(table))
        cur.execute("INSERT INTO meta.result_layers (layer_id, table_name, title_ko, title_en, geometry_type, job_id,"
                    " expires_at, style) VALUES (%s, %s, %s, %s, %s, %s, now() + %s, %s::jsonb) "
                    "ON CONFLICT (layer_id) DO UPDATE SET table_name = EXCLUDED.table_name, "
                    "title_ko = EXCLUDED.title_ko, title_en = EXCLUDED.title_en, "
                    "geometry_type = EXCLUDED.geometry_type, expires_at = EXCLUDED.expires_at, style = EXCLUDED.style",
                    (lid, f"results.{lid}", titles[0], titles[1], geometry_type, job_id,
                     timedelta(hours=ttl_hours), json.dumps(style) if style else None))
        cur.execute("SELECT pg_notify('sejong_data_version', 'meta.result_layers')")  # every server re-reads
    return lid


def _drop(cur: psycopg2.extensions.cursor, where: sql.Composable, params: Sequence[Any]) -> int:
    cur.execute(sql.SQL("DELETE FROM meta.result_layers WHERE {} RETURNING layer_id").format(where), params)
    ids = [r[0] for r in cur.fetchall()]
    for lid in ids:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("results", lid)))
    return len(ids)


def cleanup(db: Database) -> int:
    """Drop expired result layers."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('meta.result_layers')")
        row = cur.fetchone()
        if not row or row[0] is None:
            return 0
        return _drop(cur, sql.SQL("expires_at < now()"), [])


def drop_job_layers(db: Database, job_id: str) -> int:
    """Drop the result layers of one job (dismissed jobs)."""
    with db.transaction() as conn, conn.cursor() as cur:
        return _drop(cur, sql.SQL("job_id = %s"), [job_id])
