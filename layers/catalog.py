"""Catalog introspection: columns, geometry SRID/type, extents and provenance of declared tables."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql
from pyproj import Transformer

from core.config import LayerConfig


def columns(conn: Any, table: str) -> list[tuple[str, str]]:
    """(name, type) of a table or view, in order; empty when it does not exist."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (table,),
        )
        return [(r[0], r[1]) for r in cur.fetchall()]


def is_empty(conn: Any, cfg: LayerConfig) -> bool:
    """Whether the table has no rows at all."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {t})").format(
            t=sql.Identifier(cfg.schema_name, cfg.table_name)))
        return bool(cur.fetchone()[0])


def geometry_info(conn: Any, cfg: LayerConfig) -> tuple[int, str]:
    """SRID and geometry type from geometry_columns, falling back to the first row."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT srid, type FROM geometry_columns "
            "WHERE f_table_schema = %s AND f_table_name = %s AND f_geometry_column = %s",
            (cfg.schema_name, cfg.table_name, cfg.geometry),
        )
        row = cur.fetchone()
        if row and row[0] and row[1] and row[1] != "GEOMETRY":
            return int(row[0]), str(row[1]).title().replace("string", "String").replace("polygon", "Polygon")
        cur.execute(
            sql.SQL("SELECT ST_SRID({g}), GeometryType({g}) FROM {t} WHERE {g} IS NOT NULL LIMIT 1").format(
                g=sql.Identifier(cfg.geometry), t=sql.Identifier(cfg.schema_name, cfg.table_name)
            )
        )
        first = cur.fetchone()
    srid = int(row[0]) if row and row[0] else (int(first[0]) if first else 4326)
    gtype = str(first[1]) if first else "GEOMETRY"
    return srid, gtype.title().replace("string", "String").replace("polygon", "Polygon")


def estimated_rows(conn: Any, cfg: LayerConfig) -> int:
    """Row estimate from pg_class (exact count for views and never-analysed tables under 100k rows)."""
    with conn.cursor() as cur:
        cur.execute("SELECT relkind, reltuples FROM pg_class WHERE oid = to_regclass(%s)", (cfg.table,))
        row = cur.fetchone()
        if row and row[0] in ("r", "p", "m") and row[1] is not None and row[1] >= 0:
            return int(row[1])
        cur.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 100001) s").format(
            t=sql.Identifier(cfg.schema_name, cfg.table_name)))
        return int(cur.fetchone()[0])


def extent_lonlat(conn: Any, cfg: LayerConfig, srid: int) -> tuple[float, float, float, float] | None:
    """Spatial extent in CRS84, None for an empty layer."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                    "(SELECT ST_Extent({g}) AS e FROM {t}) s").format(
                g=sql.Identifier(cfg.geometry), t=sql.Identifier(cfg.schema_name, cfg.table_name))
        )
        row = cur.fetchone()
    if not row or row[0] is None:
        return None
    if srid == 4326:
        return (row[0], row[1], row[2], row[3])
    tr = Transformer.from_crs(srid, 4326, always_xy=True)
    w, s, e, n = tr.transform_bounds(row[0], row[1], row[2], row[3], densify_pts=21)
    return (round(w, 6), round(s, 6), round(e, 6), round(n, 6))


def temporal_extent(conn: Any, cfg: LayerConfig) -> tuple[str | None, str | None]:
    """First and last instant of the layer's time column, as RFC 3339 strings."""
    assert cfg.datetime
    col = sql.Identifier(cfg.datetime)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT min({c})::timestamptz, max({c})::timestamptz FROM {t}").format(
            c=col, t=sql.Identifier(cfg.schema_name, cfg.table_name)))
        lo, hi = cur.fetchone()

    def fmt(v: Any) -> str | None:
        return v.isoformat().replace("+00:00", "Z") if v is not None else None

    return fmt(lo), fmt(hi)


def provenance(conn: Any, tables: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Catalog rows (source, checksum, licence, load time, counts) and the summed data version."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('meta.datasets') IS NOT NULL")
        if not cur.fetchone()[0]:
            return [], 0
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'meta.datasets'::regclass "
                    "AND attname = 'quality' AND NOT attisdropped)")
        quality = sql.SQL("quality" if cur.fetchone()[0] else "NULL::jsonb")  # a catalog before migration 0003
        cur.execute(sql.SQL(
            "SELECT table_name, title, licence, attribution, sources, loaded_at, rows_loaded, rows_skipped, "
            "geometries_repaired, data_version, {} FROM meta.datasets WHERE table_name = ANY(%s) "
            "ORDER BY table_name").format(quality), (tables,))
        rows = cur.fetchall()
    out = []
    version = 0
    for r in rows:
        version += int(r[9] or 0)
        out.append({
            "table": r[0], "title": r[1], "licence": r[2], "attribution": r[3], "sources": r[4] or [],
            "loadedAt": r[5].isoformat() if r[5] else None, "rows": r[6], "rowsSkipped": r[7],
            "geometriesRepaired": r[8], "dataVersion": r[9], "quality": r[10],
        })
    return out, version
