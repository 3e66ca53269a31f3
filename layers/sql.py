"""SQL builders for feature queries: composed with psycopg2.sql, identifiers quoted, values bound."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from psycopg2 import sql

from core.crs import CrsInfo
from layers.model import Column, Layer

_MAX_ARGS_PAIRS = 50  # json_build_object takes at most 100 arguments


@dataclass
class ItemsQuery:
    """A validated items request, ready to be composed."""

    out_crs: CrsInfo
    limit: int
    offset: int = 0
    after: Any = None  # keyset: the last id of the previous page
    where: list[sql.Composable] = field(default_factory=list)  # values inside are sql.Literal
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    properties: list[Column] | None = None
    skip_geometry: bool = False


def sql_geometry(layer: Layer, out_crs: CrsInfo) -> sql.Composable:
    """The geometry column in the output CRS, in that CRS's axis order."""
    expr: sql.Composable = layer.geom
    if out_crs.srid != layer.srid:
        expr = sql.SQL("ST_Transform({g}, {s})").format(g=expr, s=sql.Literal(out_crs.srid))
    if out_crs.northing_first:
        expr = sql.SQL("ST_FlipCoordinates({g})").format(g=expr)
    return expr


def sql_properties(cols: list[Column]) -> sql.Composable:
    """A JSON object of the given columns."""
    if not cols:
        return sql.SQL("'{}'::json")
    chunks = [cols[i:i + _MAX_ARGS_PAIRS] for i in range(0, len(cols), _MAX_ARGS_PAIRS)]
    parts = [
        sql.SQL("jsonb_build_object({})" if len(chunks) > 1 else "json_build_object({})").format(
            sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(c.name), sql.Identifier(c.name)) for c in chunk)
        )
        for chunk in chunks
    ]
    return sql.SQL(" || ").join(parts)


def sql_feature_text(layer: Layer, q: ItemsQuery) -> sql.Composable:
    """One GeoJSON Feature as text, built entirely in PostGIS."""
    props = tuple(q.properties) if q.properties is not None else None
    return _feature_text(layer, q.out_crs, props, q.skip_geometry)


@lru_cache(maxsize=1024)
def _feature_text(layer: Layer, out_crs: CrsInfo, properties: tuple[Column, ...] | None,
                  skip_geometry: bool) -> sql.Composable:
    """sql_feature_text, composed once per resolved layer, CRS and property choice."""
    geometry: sql.Composable = sql.SQL("'null'")
    if not skip_geometry:
        geometry = sql.SQL("coalesce(ST_AsGeoJSON({g}, {d}, 0), 'null')").format(
            g=sql_geometry(layer, out_crs), d=sql.Literal(out_crs.decimals))
    props = list(properties) if properties is not None else layer.properties
    return sql.SQL(
        "'{{\"type\":\"Feature\",\"id\":' || to_json({id})::text || ',\"geometry\":' || {geom}"
        " || ',\"properties\":' || ({props})::text || '}}'"
    ).format(id=sql.Identifier(layer.config.id), geom=geometry, props=sql_properties(props))


def sql_order(layer: Layer, q: ItemsQuery) -> sql.Composable:
    """ORDER BY: the requested sort keys, then the id for a stable order."""
    keys = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL("DESC" if desc else "ASC")) for c, desc in q.order]
    if not any(c == layer.config.id for c, _ in q.order):
        keys.append(sql.Identifier(layer.config.id))
    return sql.SQL(", ").join(keys)


def sql_items(layer: Layer, q: ItemsQuery) -> sql.Composable:
    """A page of features: (features joined by commas, how many, last id)."""
    where = list(q.where)
    if q.after is not None:
        where.append(sql.SQL("{} > {}").format(sql.Identifier(layer.config.id), sql.Literal(q.after)))
    cond = sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in where) if where else sql.SQL("TRUE")
    query = sql.SQL(
        "SELECT coalesce(string_agg(f, ','), ''), count(*), max(k) FROM ("
        "SELECT {feature} AS f, {id} AS k FROM {table} WHERE {cond} ORDER BY {order} LIMIT {limit}"
        "{offset}) s"
    ).format(
        feature=sql_feature_text(layer, q), id=sql.Identifier(layer.config.id), table=layer.table, cond=cond,
        order=sql_order(layer, q), limit=sql.Literal(int(q.limit)),
        offset=(sql.SQL(" OFFSET {}").format(sql.Literal(int(q.offset))) if q.offset and q.after is None
                else sql.SQL("")),
    )
    return query


def sql_count(layer: Layer, q: ItemsQuery) -> sql.Composable:
    """Exact number of matching features."""
    cond = sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in q.where) if q.where else sql.SQL("TRUE")
    return sql.SQL("SELECT count(*) FROM {t} WHERE {c}").format(t=layer.table, c=cond)


def sql_item(layer: Layer, q: ItemsQuery, fid: Any) -> sql.Composable:
    """One feature by id."""
    return sql.SQL("SELECT {f} FROM {t} WHERE {id} = {fid}").format(
        f=sql_feature_text(layer, q), t=layer.table, id=sql.Identifier(layer.config.id), fid=sql.Literal(fid))


def sql_bbox_filter(layer: Layer, boxes: list[tuple[float, float, float, float]], srid: int) -> sql.Composable:
    """Intersection with one or more boxes given in srid (segmentised so curved edges stay exact)."""
    parts = []
    for box in boxes:
        env = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(
            *[sql.Literal(float(v)) for v in box], sql.Literal(srid))
        if srid != layer.srid:
            step = 0.01 if srid == 4326 else 1000.0
            env = sql.SQL("ST_Transform(ST_Segmentize({e}, {s}), {t})").format(
                e=env, s=sql.Literal(step), t=sql.Literal(layer.srid))
        parts.append(sql.SQL("ST_Intersects({g}, {e})").format(g=layer.geom, e=env))
    return sql.SQL(" OR ").join(parts) if parts else sql.SQL("FALSE")
