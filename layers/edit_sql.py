"""Feature edits (OGC API - Features Part 4) as SQL: a GeoJSON body checked against a layer, and the INSERT, UPDATE,
DELETE, data-version bump and audit statements, composed with psycopg2.sql (identifiers quoted, values bound).

A feature's ETag is the md5 of its table row as text (`md5(t::text)`): any change of any column changes it, and the
features view and the edits compute it the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json

from core.crs import CrsInfo
from core.errors import InvalidParameterValue
from layers.model import Column, Layer
from layers.sql import sql_properties

GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                  "GeometryCollection")
OPERATIONS = ("create", "replace", "update", "delete")
_AUDIT_COLUMNS = ("change_id", "changed_at", "feature_id", "operation", "subject", "subject_name", "via", "roles",
                  "data_version", "before", "after")


def feature_id(layer: Layer, text: str) -> Any | None:
    """A feature id from a URL or body, typed like the id column; None when it cannot be one (404)."""
    if layer.id_column.json_type[0] != "integer":
        return text
    if not text.isascii() or not text.lstrip("-").isdigit():  # int() would take "１" as 1
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def etag(alias: str = "t") -> sql.Composable:
    """The ETag of the row `alias`: md5 of the whole row as text."""
    return sql.SQL("md5(CAST({} AS text))").format(sql.Identifier(alias))


def feature_jsonb(layer: Layer) -> sql.Composable:
    """The row as a GeoJSON Feature (jsonb, geometry in CRS84 with 7 decimals): what the audit trail keeps."""
    return sql.SQL(
        "jsonb_build_object('type', 'Feature', 'id', {id}, 'geometry', ST_AsGeoJSON(ST_Transform({g}, 4326), 7)::jsonb,"
        " 'properties', ({props})::jsonb)"
    ).format(id=sql.Identifier(layer.config.id), g=layer.geom, props=sql_properties(layer.properties))


def sql_etag(layer: Layer, fid: Any) -> sql.Composable:
    """The ETag of one feature (no row: not found)."""
    return sql.SQL("SELECT {e} FROM {t} AS t WHERE {id} = {fid}").format(
        e=etag(), t=layer.table, id=sql.Identifier(layer.config.id), fid=sql.Literal(fid))


def sql_lock(layer: Layer, fid: Any) -> sql.Composable:
    """(ETag, feature jsonb) of one feature, locked until the transaction ends."""
    return sql.SQL("SELECT {e}, {f} FROM {t} AS t WHERE {id} = {fid} FOR UPDATE").format(
        e=etag(), f=feature_jsonb(layer), t=layer.table, id=sql.Identifier(layer.config.id), fid=sql.Literal(fid))


def sql_geometry_in(layer: Layer, crs: CrsInfo) -> sql.Composable:
    """A GeoJSON geometry (one %s placeholder) given in crs, in that CRS's axis order, as stored in the table."""
    expr = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), {})").format(sql.Placeholder(), sql.Literal(crs.srid))
    if crs.northing_first:
        expr = sql.SQL("ST_FlipCoordinates({})").format(expr)
    if crs.srid != layer.srid:
        expr = sql.SQL("ST_Transform({}, {})").format(expr, sql.Literal(layer.srid))
    if layer.geometry_type.upper().startswith("MULTI"):
        expr = sql.SQL("ST_Multi({})").format(expr)
    return expr


def sql_check_geometry(layer: Layer, crs: CrsInfo, region: tuple[float, float, float, float]) -> sql.Composable:
    """(type, valid, reason, empty, inside the region) of a GeoJSON geometry (one %s) as it would be stored."""
    return sql.SQL(
        "SELECT GeometryType(g), ST_IsValid(g), ST_IsValidReason(g), ST_IsEmpty(g), "
        "ST_CoveredBy(ST_Transform(g, 4326), ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, 4326)) FROM (SELECT {g} AS g) s"
    ).format(g=sql_geometry_in(layer, crs), x0=sql.Literal(region[0]), y0=sql.Literal(region[1]),
             x1=sql.Literal(region[2]), y1=sql.Literal(region[3]))


def check_geometry_shape(geometry: Any) -> str:
    """A GeoJSON geometry object as text for ST_GeomFromGeoJSON; 400 for anything else."""
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        raise InvalidParameterValue(f"geometry must be a GeoJSON geometry object ({', '.join(GEOMETRY_TYPES)})")
    if geometry["type"] == "GeometryCollection":
        if not isinstance(geometry.get("geometries"), list):
            raise InvalidParameterValue("a GeometryCollection needs its geometries array")
        for part in geometry["geometries"]:
            check_geometry_shape(part)
    else:
        depth = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2}.get(
            geometry["type"], 3)
        _check_positions(geometry.get("coordinates"), depth, geometry["type"])
    return json.dumps(geometry)


def _check_positions(value: Any, depth: int, gtype: str) -> None:
    """400 unless value is a GeoJSON coordinates array of `depth` levels around positions of 2 or 3 finite numbers."""
    if not isinstance(value, list):
        raise InvalidParameterValue(f"the coordinates of a {gtype} must be arrays of positions")
    if depth == 0:
        if len(value) not in (2, 3) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise InvalidParameterValue(f"a position of a {gtype} must be 2 or 3 finite numbers, got {value!r:.60}")
        return
    for item in value:
        _check_positions(item, depth - 1, gtype)


def check_geometry_result(layer: Layer, row: tuple[Any, ...]) -> None:
    """400 unless the checked geometry is of the layer's type, valid, not empty and inside the region."""
    gtype, valid, reason, empty, inside = row
    wanted = layer.geometry_type.upper()
    if wanted not in ("GEOMETRY", "GEOMETRYCOLLECTION") and str(gtype).upper() != wanted:
        raise InvalidParameterValue(f"geometry must be a {layer.geometry_type} in {layer.id}, got {gtype}")
    if empty:
        raise InvalidParameterValue("geometry is empty")
    if not valid:
        raise InvalidParameterValue(f"geometry is not valid: {reason}")
    if not inside:
        raise InvalidParameterValue("geometry is outside the deployment's region (data.region); check the "
                                    "coordinates and their order, and the Content-Crs header")


def _typed(col: Column, value: Any) -> Any:
    """A JSON value ready to bind to the column; 400 when it cannot be converted to the column's type."""
    if value is None:
        return None
    typ, fmt = col.json_type
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "object": isinstance(value, dict | list),
        "array": isinstance(value, list),
    }.get(typ, False)
    if typ == "integer" and isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        expected = f"{typ} ({fmt})" if fmt else typ
        raise InvalidParameterValue(f"property {col.name!r} must be {expected} or null, got {value!r:.60}")
    if typ == "integer" and not -(2**63) <= value < 2**63:
        raise InvalidParameterValue(f"property {col.name!r} is out of range")
    return Json(value) if typ == "object" else value


def check_properties(layer: Layer, props: Any) -> dict[str, Any]:
    """Properties of a body (column -> bindable value); 400 for unknown names and unconvertible types."""
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise InvalidParameterValue("properties must be a JSON object")
    known = {c.name: c for c in layer.properties}
    unknown = sorted(set(props) - set(known))
    if unknown:
        raise InvalidParameterValue(f"unknown properties {unknown} for {layer.id}; it has: {', '.join(known)}")
    return {name: _typed(known[name], value) for name, value in props.items()}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def sql_id_has_default(layer: Layer) -> sql.Composable:
    """Whether the id column fills itself (a default or an identity)."""
    return sql.SQL("SELECT a.atthasdef OR a.attidentity <> '' FROM pg_attribute a "
                   "WHERE a.attrelid = to_regclass({t}) AND a.attname = {c}").format(
        t=sql.Literal(layer.config.table), c=sql.Literal(layer.config.id))


def sql_next_id(layer: Layer) -> sql.Composable:
    """The next integer id (run after sql_lock_ids)."""
    return sql.SQL("SELECT coalesce(max({id}), 0) + 1 FROM {t}").format(id=sql.Identifier(layer.config.id),
                                                                        t=layer.table)


def sql_lock_ids(layer: Layer) -> sql.Composable:
    """Serialise id allocation of a table until the transaction ends."""
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
        sql.Literal(f"sejong-edit-ids:{layer.config.table}"))


def sql_exists(layer: Layer, fid: Any) -> sql.Composable:
    """Whether a feature with this id exists."""
    return sql.SQL("SELECT EXISTS (SELECT 1 FROM {t} WHERE {id} = {fid})").format(
        t=layer.table, id=sql.Identifier(layer.config.id), fid=sql.Literal(fid))


@dataclass(frozen=True)
class Write:
    """A statement with its bound values; it returns (ETag, feature jsonb, id) of the written row."""

    query: sql.Composable
    params: tuple[Any, ...]


def _returning(layer: Layer) -> sql.Composable:
    return sql.SQL(" RETURNING {e}, {f}, {id}").format(e=etag(), f=feature_jsonb(layer),
                                                       id=sql.Identifier(layer.config.id))


def sql_insert(layer: Layer, values: dict[str, Any], geometry: str | None, crs: CrsInfo) -> Write:
    """INSERT of one feature: the given columns, and the geometry (GeoJSON in crs) when there is one."""
    cols = [sql.Identifier(c) for c in values]
    vals: list[sql.Composable] = [sql.Placeholder() for _ in values]
    params: list[Any] = list(values.values())
    if geometry is not None:
        cols.append(layer.geom)
        vals.append(sql_geometry_in(layer, crs))
        params.append(geometry)
    query = sql.SQL("INSERT INTO {t} AS t ({c}) VALUES ({v})").format(
        t=layer.table, c=sql.SQL(", ").join(cols), v=sql.SQL(", ").join(vals)) + _returning(layer)
    return Write(query, tuple(params))


def sql_update(layer: Layer, fid: Any, values: dict[str, Any], geometry: str | None, crs: CrsInfo) -> Write:
    """UPDATE of one feature's given columns (and its geometry when given)."""
    sets = [sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in values]
    params: list[Any] = list(values.values())
    if geometry is not None:
        sets.append(sql.SQL("{} = {}").format(layer.geom, sql_geometry_in(layer, crs)))
        params.append(geometry)
    if not sets:  # nothing to change: still a write, so the change is recorded and versioned
        sets.append(sql.SQL("{id} = {id}").format(id=sql.Identifier(layer.config.id)))
    query = sql.SQL("UPDATE {t} AS t SET {s} WHERE {id} = {fid}").format(
        t=layer.table, s=sql.SQL(", ").join(sets), id=sql.Identifier(layer.config.id),
        fid=sql.Literal(fid)) + _returning(layer)
    return Write(query, tuple(params))


def sql_delete(layer: Layer, fid: Any) -> sql.Composable:
    """DELETE of one feature."""
    return sql.SQL("DELETE FROM {t} WHERE {id} = {fid}").format(t=layer.table, id=sql.Identifier(layer.config.id),
                                                                fid=sql.Literal(fid))


def sql_bump_version(layer: Layer) -> sql.Composable:
    """Bump the table's data version in the catalog (a row is made for a table loaded outside the loaders); its
    trigger notifies every server, so tile caches move on at commit. Returns the new version."""
    return sql.SQL(
        "INSERT INTO meta.datasets (table_name, title) VALUES ({t}, {title}) ON CONFLICT (table_name) "
        "DO UPDATE SET data_version = meta.datasets.data_version + 1 RETURNING data_version"
    ).format(t=sql.Literal(layer.config.table), title=sql.Literal(layer.config.title.ko))


def sql_audit(layer: Layer, fid: Any, operation: str, who: dict[str, Any], version: int, before: Any,
              after: Any) -> sql.Composable:
    """The audit row of one change."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    return sql.SQL(
        "INSERT INTO meta.feature_changes (layer_id, table_name, feature_id, operation, subject, subject_name, via, "
        "roles, data_version, before, after) VALUES ({}, {}, {}, {}, {}, {}, {}, {}::text[], {}, {}, {}) "
        "RETURNING change_id"
    ).format(*[sql.Literal(v) for v in (
        layer.id, layer.config.table, str(fid), operation, who.get("subject"), who.get("name"), who["via"],
        sorted(who.get("roles", ())), version)], sql.Literal(Json(before) if before is not None else None),
        sql.Literal(Json(after) if after is not None else None))


def sql_changes(layer: Layer, limit: int, offset: int) -> sql.Composable:
    """A page of a layer's audit feed, newest first, as JSON objects."""
    return sql.SQL(
        "SELECT jsonb_build_object({pairs}) FROM meta.feature_changes WHERE layer_id = {l} "
        "ORDER BY change_id DESC LIMIT {n} OFFSET {o}"
    ).format(pairs=sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(c))
                                      for c in _AUDIT_COLUMNS),
             l=sql.Literal(layer.id), n=sql.Literal(int(limit)), o=sql.Literal(int(offset)))


def sql_changes_count(layer: Layer) -> sql.Composable:
    """How many audit rows a layer has."""
    return sql.SQL("SELECT count(*) FROM meta.feature_changes WHERE layer_id = {}").format(sql.Literal(layer.id))
