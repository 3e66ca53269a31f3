"""Vector-tile SQL per layer and tile matrix set: composed once, only bounds and filters bound per request."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from core.tms import TileMatrixSet
from layers.model import Layer

MVT_EXTENT = 4096
MVT_BUFFER = 64
LABEL_SUFFIX = "_label"  # source-layer `<id>_label`: one label point per feature (tiles: {labels: true})


def tile_properties(layer: Layer, z: int) -> tuple[str, ...]:
    """Properties a tile carries at zoom z: `tiles.properties`, narrowed by `tiles.properties_by_zoom`."""
    tiles = layer.config.tiles
    cols = [c.name for c in layer.properties if c.json_type[0] != "object"]
    if isinstance(tiles, bool):
        return tuple(cols)
    if tiles.properties:
        cols = [c for c in cols if c in tiles.properties or c == layer.config.id]
    if tiles.properties_by_zoom:
        steps = [k for k in sorted(tiles.properties_by_zoom) if k <= z]
        chosen = tiles.properties_by_zoom[steps[-1]] if steps else []
        if chosen != "*":
            cols = [c for c in cols if c in chosen or c == layer.config.id]
    return tuple(cols)


def bind_values(cql: sql.Composable, prefix: str = "cql") -> tuple[sql.Composable, dict[str, Any]]:
    """A filter with every sql.Literal turned into a named placeholder, and the values to bind to them.

    The tile query is executed with named parameters (%(x1)s ...), so its text is %-formatted: values are bound,
    never rendered into that text, and a '%' in the filter's own SQL text is escaped.
    """
    params: dict[str, Any] = {}

    def walk(node: sql.Composable) -> sql.Composable:
        if isinstance(node, sql.Composed):
            return sql.Composed([walk(part) for part in node.seq])
        if isinstance(node, sql.Literal):
            name = f"{prefix}{len(params)}"
            params[name] = node.wrapped
            return sql.Placeholder(name)
        if isinstance(node, sql.SQL):
            return sql.SQL(node.string.replace("%", "%%"))
        return node  # identifiers and placeholders render without '%' formatting

    return walk(cql), params


def sql_tile(layer: Layer, tms: TileMatrixSet, cols: tuple[str, ...],
             cql: sql.Composable | None = None) -> sql.Composed:
    """SELECT ST_AsMVT(...) for one tile of one layer (source-layer = layer id)."""
    geom: sql.Composable = layer.geom
    if "Polygon" in layer.geometry_type or "Line" in layer.geometry_type:
        geom = sql.SQL("CASE WHEN %(tol)s > 0 THEN ST_Simplify({g}, %(tol)s, true) ELSE {g} END").format(g=geom)
    if tms.srid != layer.srid:
        geom = sql.SQL("ST_Transform({g}, {s})").format(g=geom, s=sql.Literal(tms.srid))
    int_id = layer.id_column.json_type[0] == "integer"
    select_cols = [sql.SQL("{} AS {}").format(sql.Identifier(layer.config.id), sql.Identifier("__fid"))] if int_id \
        else []
    select_cols += [sql.Identifier(c) for c in cols]
    query_box = sql.SQL("ST_MakeEnvelope(%(q1)s, %(q2)s, %(q3)s, %(q4)s, {s})").format(s=sql.Literal(tms.srid))
    if tms.srid != layer.srid:
        query_box = sql.SQL("ST_Transform(ST_Segmentize({b}, (%(q3)s - %(q1)s) / 8.0), {s})").format(
            b=query_box, s=sql.Literal(layer.srid))
    where = sql.SQL("{g} && {b}").format(g=layer.geom, b=query_box)
    if cql is not None:
        where = sql.SQL("{w} AND ({f})").format(w=where, f=cql)
    main = sql.SQL(
        "SELECT ST_AsMVT(t, {name}, {extent}, 'geom'{fid}) FROM ("
        "SELECT {cols}, ST_AsMVTGeom({geom}, ST_MakeEnvelope(%(x1)s, %(y1)s, %(x2)s, %(y2)s, {tsrid}), "
        "{extent}, {buffer}, true) AS geom FROM {table} WHERE {where}) t"
    ).format(
        name=sql.Literal(layer.id), extent=sql.Literal(MVT_EXTENT), buffer=sql.Literal(MVT_BUFFER),
        fid=sql.SQL(", '__fid'") if int_id else sql.SQL(""), cols=sql.SQL(", ").join(select_cols), geom=geom,
        tsrid=sql.Literal(tms.srid), table=layer.table, where=where,
    )
    if not has_labels(layer):
        return main
    return sql.SQL("SELECT COALESCE(({m}), ''::bytea) || COALESCE(({lab}), ''::bytea)").format(
        m=main, lab=sql_label_points(layer, tms, cols, where, int_id))


def has_labels(layer: Layer) -> bool:
    """Whether the layer's tiles carry a label layer (`tiles: {labels: true}` on a polygon layer)."""
    tiles = layer.config.tiles
    return not isinstance(tiles, bool) and tiles.labels and "Polygon" in layer.geometry_type


def label_layer_id(layer_id: str) -> str:
    """Source-layer name of a layer's label points."""
    return f"{layer_id}{LABEL_SUFFIX}"


def sql_label_points(layer: Layer, tms: TileMatrixSet, cols: tuple[str, ...], where: sql.Composable,
                     int_id: bool) -> sql.Composed:
    """ST_AsMVT of one label point per feature: the centre of its largest inscribed circle, put only in the tile
    that holds it (half-open bounds), so an area split over many tiles is labelled once."""
    point = sql.SQL("(ST_MaximumInscribedCircle({g})).center").format(g=layer.geom)
    if tms.srid != layer.srid:
        point = sql.SQL("ST_Transform({p}, {s})").format(p=point, s=sql.Literal(tms.srid))
    names = [sql.Identifier(c) for c in cols]
    inner = [sql.SQL("{} AS {}").format(sql.Identifier(layer.config.id), sql.Identifier("__fid"))] if int_id else []
    outer = [sql.Identifier("__fid")] if int_id else []
    return sql.SQL(
        "SELECT ST_AsMVT(l, {name}, {extent}, 'geom'{fid}) FROM ("
        "SELECT {outer}, ST_AsMVTGeom(p, ST_MakeEnvelope(%(x1)s, %(y1)s, %(x2)s, %(y2)s, {tsrid}), {extent}, 0, "
        "false) AS geom FROM (SELECT {inner}, {point} AS p FROM {table} WHERE {where}) s "
        "WHERE ST_X(p) >= %(x1)s AND ST_X(p) < %(x2)s AND ST_Y(p) > %(y1)s AND ST_Y(p) <= %(y2)s) l"
    ).format(
        name=sql.Literal(label_layer_id(layer.id)), extent=sql.Literal(MVT_EXTENT),
        fid=sql.SQL(", '__fid'") if int_id else sql.SQL(""), outer=sql.SQL(", ").join(outer + names),
        inner=sql.SQL(", ").join(inner + names), point=point, tsrid=sql.Literal(tms.srid), table=layer.table,
        where=where,
    )
