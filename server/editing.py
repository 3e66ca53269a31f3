"""OGC API - Features Part 4: create (POST), replace (PUT), update (PATCH, JSON merge patch) and delete features of
layers marked `editable:` in config.yml, and each layer's audit feed (/collections/{id}/changes).

Who: anonymous callers get 401, a caller who may read the layer but holds none of its `editable` roles 403, one who
may not read it 404 (as for reads). Bodies are checked against the layer's columns; geometries must be valid, of the
layer's type and inside `data.region`, given in the CRS the Content-Crs header names (default CRS84). Every feature
has an ETag; PUT, PATCH and DELETE need If-Match (428 without, 412 when the feature changed meanwhile). A change is
one transaction on the write role: the row, the table's data version (whose trigger tells every server, so tiles
change at once) and its audit row in meta.feature_changes (who, when, before and after).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg2
import psycopg2.errors
from flask import Blueprint, Flask, Response, current_app, request

from core import crs as crs_mod
from core.db import Database
from core.errors import (
    Conflict,
    Forbidden,
    InvalidParameterValue,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    UnsupportedMediaType,
)
from layers import edit_sql
from layers.model import Layer
from layers.query import parse_int, reject_unknown
from server import access, auth, hygiene, services
from server.negotiate import GEOJSON, JSON, href
from server.params_spec import accepted

BP = Blueprint("editing", __name__)
EXTENSION = "sejong_editing"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
ITEMS = "/collections/{collectionId}/items"
ITEM = "/collections/{collectionId}/items/{featureId}"
CHANGES = "/collections/{collectionId}/changes"
BODY_TYPES = ("application/json", "application/geo+json", "application/merge-patch+json")
VERSION_WAIT_S = 2.0  # how long an edit waits for this server's version watcher to see its new data version


def enabled(app: Flask | None = None) -> bool:
    """Whether any declared layer is editable (Part 4 is declared only then)."""
    cfg = services.of(app or current_app).config
    return any(layer.editable for layer in cfg.layers.values())


def _write_db() -> Database:
    """The write-role pool of edits (small; created on first use)."""
    app = current_app
    ext = app.extensions.setdefault(EXTENSION, {"lock": threading.Lock(), "db": None})
    with ext["lock"]:
        if ext["db"] is None:
            svc = services.current()
            ext["db"] = Database(svc.write_url, 2, svc.config.server.statement_timeout_ms, read_only=False,
                                 application_name="sejong-mapserver-edits")
        db: Database = ext["db"]
    return db


def _editable_layer(collection_id: str) -> Layer:
    """The layer, if the caller may edit it: 401 anonymous, 404 unreadable, 403 readable without an editor role."""
    layer = access.layer(collection_id)
    caller = auth.current()
    if caller.anonymous:
        raise auth.challenge("editing needs a signed-in caller; send a bearer token or an API key", error=None)
    if not auth.has_any_role(layer.config.editable):
        raise Forbidden(f"you may not edit {collection_id}" + (
            f"; it needs one of the roles {', '.join(layer.config.editable)}" if layer.config.editable
            else "; it is not editable"))
    return layer


def _fid(layer: Layer, text: str) -> Any:
    fid = edit_sql.feature_id(layer, text)
    if fid is None:
        raise NotFound(f"feature {text!r} not found in {layer.id}")
    return fid


def _body(kind: str) -> dict[str, Any]:
    """The JSON object of the request (415 when not JSON, 400 when not an object)."""
    mimetype = request.mimetype or ""
    if mimetype and mimetype not in BODY_TYPES:
        raise UnsupportedMediaType(f"send the {kind} as {' or '.join(BODY_TYPES)}, not {mimetype}")
    body = hygiene.load_json_body()
    if not isinstance(body, dict):
        raise InvalidParameterValue(f"the body must be a JSON object ({kind})")
    return body


def _content_crs(layer: Layer) -> crs_mod.CrsInfo:
    """The CRS of the body's geometry: the Content-Crs header (<uri>), CRS84 when absent."""
    value = request.headers.get("Content-Crs", "").strip()
    if not value:
        return crs_mod.crs84()
    return crs_mod.parse_crs(value.strip("<>"), layer.srid, "Content-Crs")


def _feature_body(layer: Layer, body: dict[str, Any], fid: Any | None) -> tuple[dict[str, Any], str]:
    """(column values, geometry GeoJSON) of a whole Feature (create and replace)."""
    if body.get("type") != "Feature":
        raise InvalidParameterValue('the body must be a GeoJSON Feature ({"type": "Feature", ...})')
    unknown = sorted(set(body) - {"type", "id", "geometry", "properties", "links", "bbox"})
    if unknown:
        raise InvalidParameterValue(f"unknown members {unknown} in the feature")
    values = edit_sql.check_properties(layer, body.get("properties"))
    body_id = body.get("id", values.get(layer.config.id))
    if body_id is not None:
        typed = edit_sql.feature_id(layer, str(body_id))
        if typed is None:
            raise InvalidParameterValue(f"the id {body_id!r} is not a valid id of {layer.id}")
        if fid is not None and typed != fid:
            raise InvalidParameterValue(f"the feature's id {body_id!r} is not the id in the URL; ids do not change")
        if layer.config.id in values and values[layer.config.id] != typed:
            raise InvalidParameterValue("id and properties." + layer.config.id + " differ")
        values[layer.config.id] = typed
    if body.get("geometry") is None:
        raise InvalidParameterValue("the feature needs a geometry")
    return values, edit_sql.check_geometry_shape(body["geometry"])


def _check_geometry(cur: Any, layer: Layer, geometry: str, crs: crs_mod.CrsInfo) -> None:
    region = services.current().config.data.region
    try:
        cur.execute("SAVEPOINT geometry_check")
        cur.execute(edit_sql.sql_check_geometry(layer, crs, region), (geometry,))
        row = cur.fetchone()
        cur.execute("RELEASE SAVEPOINT geometry_check")
    except psycopg2.Error as err:
        raise InvalidParameterValue(f"geometry is not valid GeoJSON, or cannot be placed in the region from {crs.uri} "
                                    f"(check the Content-Crs header): {str(err).splitlines()[0]}") from None
    edit_sql.check_geometry_result(layer, row)


def _who() -> dict[str, Any]:
    caller = auth.current()
    return {"subject": caller.subject, "name": caller.name, "via": caller.via, "roles": caller.roles}


def _if_match(current: str) -> None:
    """428 without If-Match, 412 when it does not name the feature's current ETag."""
    if "If-Match" not in request.headers:
        raise PreconditionRequired("send If-Match with the feature's ETag (from GET of the feature)")
    if not request.if_match.contains(current):
        raise PreconditionFailed("the feature changed since that ETag was read; GET it again and retry")


def _finish(cur: Any, layer: Layer, fid: Any, operation: str, before: Any, after: Any) -> int:
    """Bump the data version and write the audit row; the new data version."""
    cur.execute(edit_sql.sql_bump_version(layer))
    version = int(cur.fetchone()[0])
    cur.execute(edit_sql.sql_audit(layer, fid, operation, _who(), version, before, after))
    return version


def _await_version(layer: Layer, version: int) -> None:
    """Wait (briefly) until this server's version watcher has seen the edit, so the next tile from it is new."""
    watcher = services.current().versions
    deadline = time.monotonic() + VERSION_WAIT_S
    while watcher is not None and time.monotonic() < deadline:
        seen = watcher.current()
        if seen is None or seen.get(layer.config.table, 0) >= version:
            break
        time.sleep(0.005)
    services.current().registry.mark_stale()


def _run(layer: Layer, work: Any) -> Any:
    """Run work(cur) in one write transaction; database refusals of values become 400/409."""
    try:
        with _write_db().transaction() as conn, conn.cursor() as cur:
            return work(cur)
    except psycopg2.errors.UniqueViolation:
        raise Conflict(f"a feature with that id exists in {layer.id}") from None
    except (psycopg2.errors.DataError, psycopg2.errors.IntegrityError) as err:
        raise InvalidParameterValue(f"the database refused the values: {str(err).splitlines()[0]}") from None


def _feature_response(layer: Layer, etag: str, feature: dict[str, Any], status: int = 200,
                      headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(feature, ensure_ascii=False), status=status, mimetype=GEOJSON, headers=headers)
    resp.headers["Content-Crs"] = f"<{crs_mod.CRS84}>"
    resp.set_etag(etag)
    return resp


@BP.route("/collections/<collection_id>/items", methods=["POST"])
def create(collection_id: str) -> Response:
    """Create a feature: 201 with Location and ETag."""
    reject_unknown(request.args, accepted(ITEMS, "post"))
    layer = _editable_layer(collection_id)
    values, geometry = _feature_body(layer, _body("feature"), None)
    crs = _content_crs(layer)

    def work(cur: Any) -> tuple[str, dict[str, Any], Any, int]:
        _check_geometry(cur, layer, geometry, crs)
        fid = values.get(layer.config.id)
        if fid is None:
            cur.execute(edit_sql.sql_id_has_default(layer))
            if not cur.fetchone()[0]:
                if layer.id_column.json_type[0] != "integer":
                    raise InvalidParameterValue(f"give the feature an id: {layer.id} does not make them")
                cur.execute(edit_sql.sql_lock_ids(layer))
                cur.execute(edit_sql.sql_next_id(layer))
                values[layer.config.id] = int(cur.fetchone()[0])
        else:
            cur.execute(edit_sql.sql_exists(layer, fid))
            if cur.fetchone()[0]:
                raise Conflict(f"feature {fid!r} exists in {layer.id}; replace it with PUT")
        write = edit_sql.sql_insert(layer, values, geometry, crs)
        cur.execute(write.query, write.params)
        etag, after, new_id = cur.fetchone()
        version = _finish(cur, layer, new_id, "create", None, after)
        return etag, after, new_id, version

    etag, after, new_id, version = _run(layer, work)
    _await_version(layer, version)
    location = href(f"/collections/{layer.id}/items/{new_id}")
    return _feature_response(layer, etag, after, 201, {"Location": location})


def _change(collection_id: str, feature_id: str, operation: str) -> Response:
    """Replace (PUT), update (PATCH) or delete (DELETE) one feature under If-Match."""
    layer = _editable_layer(collection_id)
    fid = _fid(layer, feature_id)
    if "If-Match" not in request.headers:
        raise PreconditionRequired("send If-Match with the feature's ETag (from GET of the feature)")
    values: dict[str, Any] = {}
    geometry: str | None = None
    patch: dict[str, Any] = {}
    if operation == "replace":
        values, geometry = _feature_body(layer, _body("feature"), fid)
        values.pop(layer.config.id, None)
        for col in layer.properties:  # a replaced feature has exactly the given properties
            if col.name != layer.config.id:
                values.setdefault(col.name, None)
    elif operation == "update":
        patch = _body("JSON merge patch of the feature")
        unknown = sorted(set(patch) - {"type", "id", "geometry", "properties"})
        if unknown:
            raise InvalidParameterValue(f"unknown members {unknown} in the patch; use properties and geometry")
        if patch.get("id") is not None and edit_sql.feature_id(layer, str(patch["id"])) != fid:
            raise InvalidParameterValue("the id of a feature cannot be changed")
        if "geometry" in patch:
            if patch["geometry"] is None:
                raise InvalidParameterValue("the geometry cannot be removed; send a new one")
            geometry = edit_sql.check_geometry_shape(patch["geometry"])
        if patch.get("properties") is not None and not isinstance(patch["properties"], dict):
            raise InvalidParameterValue("properties must be a JSON object")
        edit_sql.check_properties(layer, patch.get("properties"))  # names and types, before any lock
    crs = _content_crs(layer)

    def work(cur: Any) -> tuple[str | None, Any, int]:
        cur.execute(edit_sql.sql_lock(layer, fid))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"feature {feature_id!r} not found in {layer.id}")
        current, before = row
        _if_match(current)
        if operation == "delete":
            cur.execute(edit_sql.sql_delete(layer, fid))
            return None, None, _finish(cur, layer, fid, operation, before, None)
        if geometry is not None:
            _check_geometry(cur, layer, geometry, crs)
        changes = values
        if operation == "update":
            props = patch.get("properties") or {}
            merged = edit_sql.merge_patch(before["properties"], props)
            changed = {name: merged.get(name) for name in props}
            if layer.config.id in changed and changed[layer.config.id] != before["properties"].get(layer.config.id):
                raise InvalidParameterValue("the id of a feature cannot be changed")
            changed.pop(layer.config.id, None)
            changes = edit_sql.check_properties(layer, changed)
        write = edit_sql.sql_update(layer, fid, changes, geometry, crs)
        cur.execute(write.query, write.params)
        etag, after, _ = cur.fetchone()
        return etag, after, _finish(cur, layer, fid, operation, before, after)

    etag, after, version = _run(layer, work)
    _await_version(layer, version)
    if etag is None:
        return Response(status=204)
    return _feature_response(layer, etag, after)


@BP.route("/collections/<collection_id>/items/<feature_id>", methods=["PUT"])
def replace(collection_id: str, feature_id: str) -> Response:
    """Replace a feature (If-Match required)."""
    reject_unknown(request.args, accepted(ITEM, "put"))
    return _change(collection_id, feature_id, "replace")


@BP.route("/collections/<collection_id>/items/<feature_id>", methods=["PATCH"])
def update(collection_id: str, feature_id: str) -> Response:
    """Update a feature with a JSON merge patch of its properties and/or geometry (If-Match required)."""
    reject_unknown(request.args, accepted(ITEM, "patch"))
    return _change(collection_id, feature_id, "update")


@BP.route("/collections/<collection_id>/items/<feature_id>", methods=["DELETE"])
def delete(collection_id: str, feature_id: str) -> Response:
    """Delete a feature (If-Match required): 204."""
    reject_unknown(request.args, accepted(ITEM, "delete"))
    return _change(collection_id, feature_id, "delete")


@BP.route("/collections/<collection_id>/changes")
def changes(collection_id: str) -> Response:
    """The layer's audit feed for its editors: newest first, limit/offset."""
    reject_unknown(request.args, accepted(CHANGES))
    layer = _editable_layer(collection_id)
    limit = min(parse_int(request.args.get("limit", "100"), "limit", 1), 1000)
    offset = parse_int(request.args.get("offset", "0"), "offset", 0)
    with services.current().db.connection(snapshot=True) as conn, conn.cursor() as cur:
        cur.execute(edit_sql.sql_changes(layer, limit, offset))
        entries = [r[0] for r in cur.fetchall()]
        cur.execute(edit_sql.sql_changes_count(layer))
        matched = int(cur.fetchone()[0])
    path = f"/collections/{layer.id}/changes"
    links = [{"rel": "self", "type": JSON, "href": href(path, limit=limit, offset=offset)},
             {"rel": "collection", "type": JSON, "href": href(f"/collections/{layer.id}")}]
    if offset + len(entries) < matched:
        links.append({"rel": "next", "type": JSON, "href": href(path, limit=limit, offset=offset + limit)})
    doc = {"collection": layer.id, "numberMatched": matched, "numberReturned": len(entries), "changes": entries,
           "links": links}
    resp = Response(json.dumps(doc, ensure_ascii=False, default=str), mimetype=JSON)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.0 operations of the edit routes (parameters are filled in from server.params_spec)."""
    exc = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    feature = {"application/geo+json": {"schema": {"type": "object"}}}
    etag = {"ETag": {"schema": {"type": "string"}}}

    def op(op_id: str, summary: str, ok: str, body: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
        responses: dict[str, Any] = {
            ok: {"description": summary, **({"content": feature, "headers": etag} if ok != "204" else {})},
            "400": {"description": "invalid body, geometry or parameter", "content": exc},
            "401": {"description": "credentials needed", "content": exc},
            "403": {"description": "the caller may not edit this collection", "content": exc},
            "404": {"description": "not found", "content": exc},
            **more,
        }
        out: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": ["Data"], "responses": responses}
        if body is not None:
            out["requestBody"] = {"required": True, "content": body}
        return out

    crs_header = {"name": "Content-Crs", "in": "header", "required": False, "schema": {"type": "string"},
                  "description": "CRS of the body's geometry, <uri> (default CRS84)"}
    if_match = {"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"},
                "description": "the feature's ETag"}
    conflict = {"412": {"description": "the feature changed since the ETag", "content": exc},
                "428": {"description": "If-Match is missing", "content": exc}}
    create_op = op("createFeature", "create a feature (Part 4)", "201", feature,
                   **{"409": {"description": "the id exists", "content": exc}})
    create_op["responses"]["201"]["headers"] = {**etag, "Location": {"schema": {"type": "string"}}}
    patch_body = {"application/merge-patch+json": {"schema": {"type": "object"}}}
    changes_op = op("getChanges", "the collection's edit history, newest first (editors)", "200", None)
    changes_op["responses"]["200"] = {"description": "audit entries: who, when, operation, before and after",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        ITEMS: {"post": {**create_op, "parameters": [crs_header]}},
        ITEM: {"put": {**op("replaceFeature", "replace a feature (Part 4)", "200", feature, **conflict),
                       "parameters": [crs_header, if_match]},
               "patch": {**op("updateFeature", "update a feature: JSON merge patch (Part 4)", "200", patch_body,
                              **conflict), "parameters": [crs_header, if_match]},
               "delete": {**op("deleteFeature", "delete a feature (Part 4)", "204", None, **conflict),
                          "parameters": [if_match]}},
        CHANGES: {"get": changes_op},
    }
