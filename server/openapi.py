"""OpenAPI 3.0 document generated from the layer declarations."""

from __future__ import annotations

from typing import Any

from core import crs as crs_mod
from core.config import AppConfig
from layers.model import Layer
from layers.query import scalar_properties
from server import params_spec as spec

_ANY_JSON = {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}
_GEOJSON = {"application/geo+json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}
_SCHEMA = {"application/schema+json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}
_JSON = {"application/json": {"schema": {"type": "object"}}}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_MVT = {"application/vnd.mapbox-vector-tile": {"schema": {"type": "string", "format": "binary"}}}
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}

# path -> method -> (operationId, summary, tag, 200 content); query and path parameters come from params_spec
_OPERATIONS: dict[str, dict[str, tuple[str, str, str, dict[str, Any]]]] = {
    "/": {"get": ("getLandingPage", "landing page", "Capabilities", _ANY_JSON)},
    "/conformance": {"get": ("getConformanceDeclaration", "conformance classes", "Capabilities", _ANY_JSON)},
    "/api": {"get": ("getApiDefinition", "this document", "Capabilities", {
        "application/vnd.oai.openapi+json;version=3.0": {"schema": {"type": "object"}}, **_HTML})},
    "/health": {"get": ("getHealth", "liveness and database reachability", "Capabilities", _JSON)},
    "/metrics": {"get": ("getMetrics", "Prometheus metrics of this server process", "Capabilities",
                         {"text/plain": {"schema": {"type": "string"}}})},
    "/collections": {"get": ("getCollections", "feature collections", "Data", _ANY_JSON)},
    "/quality": {"get": ("getDataQuality", "every layer's last load and data-quality report", "Data", _ANY_JSON)},
    "/collections/{collectionId}": {"get": ("describeCollection", "a collection", "Data", _ANY_JSON)},
    "/collections/{collectionId}/queryables": {"get": ("getQueryables", "queryables (JSON Schema)", "Data",
                                                       _SCHEMA)},
    "/collections/{collectionId}/sortables": {"get": ("getSortables", "sortables (JSON Schema, Part 5)", "Data",
                                                      _SCHEMA)},
    "/collections/{collectionId}/items": {"get": ("getFeatures", "features of a collection", "Data", _GEOJSON)},
    "/collections/{collectionId}/items/{featureId}": {"get": ("getFeature", "one feature", "Data", _GEOJSON)},
    "/tileMatrixSets": {"get": ("getTileMatrixSetsList", "tile matrix sets", "Tiles", _JSON)},
    "/tileMatrixSets/{tileMatrixSetId}": {"get": ("getTileMatrixSet", "a tile matrix set", "Tiles", _JSON)},
    "/tiles": {"get": ("dataset.vector.getTileSetsList", "dataset tilesets", "Tiles", _JSON)},
    "/tiles/{tileMatrixSetId}": {"get": ("dataset.vector.getTileSet", "dataset tileset", "Tiles", _JSON)},
    "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": {
        "get": ("dataset.vector.getTile", "a tile of every layer", "Tiles", _MVT)},
    "/tiles/{collectionId}/{tileMatrix}/{x}/{y}.mvt": {
        "get": ("getXyzTile", "a WebMercatorQuad tile of one collection (z/x/y order)", "Tiles", _MVT)},
    "/tilejson.json": {"get": ("getTileJson", "TileJSON 3.0 of the dataset tiles", "Tiles", _JSON)},
    "/collections/{collectionId}/tiles": {
        "get": ("collection.vector.getTileSetsList", "collection tilesets", "Tiles", _JSON)},
    "/collections/{collectionId}/tiles/{tileMatrixSetId}": {
        "get": ("collection.vector.getTileSet", "collection tileset", "Tiles", _JSON)},
    "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": {
        "get": ("collection.vector.getTile", "a tile of one collection", "Tiles", _MVT)},
    "/collections/{collectionId}/tilejson.json": {
        "get": ("getCollectionTileJson", "TileJSON 3.0 of one collection", "Tiles", _JSON)},
    "/styles": {"get": ("getStyles", "MapLibre styles", "Maps", _ANY_JSON)},
    "/styles/{styleId}": {"get": ("getStyle", "a MapLibre style (or its preview map)", "Maps", {
        "application/vnd.mapbox.style+json": {"schema": {"type": "object"}}, **_HTML})},
    "/fonts/{fontstack}/{glyphRange}.pbf": {"get": ("getGlyphs", "glyphs of a style", "Maps", {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}})},
    "/map": {"get": ("getMapViewer", "department map viewer", "Maps", _HTML)},
    "/citizen": {"get": ("getCitizenPage", "citizen map page", "Maps", _HTML)},
    "/map/layers.json": {"get": ("getMapLayers", "layers of the map pages", "Maps", _JSON)},
    "/map/download/{collectionId}.csv": {"get": ("downloadCsv", "features as CSV (items parameters)", "Maps", {
        "text/csv": {"schema": {"type": "string"}}})},
    "/assets/maplibre/{filename}": {"get": ("getMapLibreFile", "vendored MapLibre GL JS file", "Maps", _BINARY)},
    "/map/static/{filename}": {"get": ("getMapStaticFile", "map page script or style", "Maps", _BINARY)},
    "/static/{filename}": {"get": ("getStaticFile", "static file", "Maps", _BINARY)},
    # air-quality surfaces (server/coverages.py)
    "/collections/{collectionId}/coverage": {"get": ("collection.getCoverage", "a surface: GeoTIFF or grade PNG",
                                                     "Coverages", {"image/tiff; application=geotiff": {
                                                         "schema": {"type": "string", "format": "binary"}},
                                                         "image/png": {"schema": {"type": "string",
                                                                                  "format": "binary"}}})},
    "/collections/{collectionId}/coverage/domainset": {
        "get": ("collection.getCoverageDomainSet", "grid and time steps of a surface", "Coverages", _JSON)},
    "/collections/{collectionId}/coverage/rangetype": {
        "get": ("collection.getCoverageRangeType", "the field of a surface", "Coverages", _JSON)},
    "/collections/{collectionId}/position": {
        "get": ("collection.getSurfaceAtPoint", "the estimate at a point beside the nearest station", "Coverages",
                _JSON)},
    "/collections/{collectionId}/map/tiles": {
        "get": ("collection.map.getTileSetsList", "map tilesets of a surface", "Coverages", _JSON)},
    "/collections/{collectionId}/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": {
        "get": ("collection.map.getTile", "a grade-coloured PNG tile of a surface", "Coverages", {
            "image/png": {"schema": {"type": "string", "format": "binary"}}})},
}


def _ok(description: str, media: dict[str, Any], not_found: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {"description": description, "content": media},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "500": {"$ref": "#/components/responses/ServerError"},
    }
    if not_found:
        out["404"] = {"$ref": "#/components/responses/NotFound"}
    return out


def _queryable_params(layer: Layer) -> list[dict[str, Any]]:
    """name=value equality parameters of a collection's scalar queryables."""
    out = []
    for col in scalar_properties(layer):
        typ, fmt = col.json_type
        schema: dict[str, Any] = {"type": typ, **({"format": fmt} if fmt else {})}
        out.append({"name": col.name, "in": "query", "required": False, "style": "form", "explode": False,
                    "description": f"{col.name} equals (queryable)", "schema": schema})
    return out


def _with_parameters(path: str, method: str, op: dict[str, Any], ctx: spec.DocContext,
                     layer: Layer | None = None) -> dict[str, Any]:
    """An operation with its path and query parameters from the declaration (a concrete layer: no collectionId)."""
    route = spec.ROUTES[path][method]
    params = [p for p in spec.path_parameters(path, ctx) if not (layer and p["name"] == "collectionId")]
    params += [p.openapi(ctx) for p in route.query]
    params += [p for p in op.get("parameters", []) if p["in"] == "header"]  # request headers (Part 4 edits)
    if layer is not None and route.queryables:
        params += _queryable_params(layer)
    return {**op, "parameters": params}


def openapi_document(cfg: AppConfig, layers: list[Layer]) -> dict[str, Any]:
    """The API definition: every path this server answers, with its parameters, over the given (the caller's)
    layers."""
    ctx = spec.DocContext(cfg=cfg, collection_ids=tuple(layer.id for layer in layers),
                          crs_uris=tuple(sorted({c.uri for layer in layers for c in crs_mod.supported(layer.srid)})))
    paths: dict[str, Any] = {}
    for path, methods in _OPERATIONS.items():
        paths[path] = {method: {"operationId": op_id, "summary": summary, "tags": [tag],
                                "responses": _ok(summary, media, "{" in path)}
                       for method, (op_id, summary, tag, media) in methods.items()}
    from server.processes_api import openapi_paths

    paths.update(openapi_paths(layers))
    from server.editing import openapi_paths as editing_paths

    for path, methods in editing_paths().items():  # Features Part 4 and the audit feed
        paths.setdefault(path, {}).update(methods)
    declared = {(p, m) for p, ms in spec.ROUTES.items() for m in ms}
    documented = {(p, m) for p, ms in paths.items() for m in ms}
    if declared != documented:
        raise KeyError(f"operations and server.params_spec differ: {sorted(declared ^ documented)}")
    for path, methods in paths.items():
        for method, op in methods.items():
            methods[method] = _with_parameters(path, method, op, ctx)
    for layer in layers:  # per collection: its queryables as query parameters
        for template in ("/collections/{collectionId}/items", "/collections/{collectionId}/items/{featureId}",
                         "/map/download/{collectionId}.csv"):
            path = template.replace("{collectionId}", layer.id)
            op_id, summary, _, media = _OPERATIONS[template]["get"]
            op = {"operationId": f"{op_id}_{layer.id}",
                  "summary": f"{summary}: {layer.config.title.en} ({layer.config.title.ko})", "tags": [layer.id],
                  "responses": _ok(summary, media, True)}
            if not layer.config.public:  # only listed to callers with its role: say how they prove it
                op["security"] = [{"bearer": []}, {"apiKey": []}]
                op["responses"]["401"] = {"$ref": "#/components/responses/Unauthorized"}
            paths[path] = {"get": _with_parameters(template, "get", op, ctx, layer)}
            for method, edit in paths[template].items():  # Part 4 operations on the collection's own path
                if method != "get":
                    paths[path][method] = _with_parameters(template, method, {
                        **edit, "operationId": f"{edit['operationId']}_{layer.id}", "tags": [layer.id]}, ctx, layer)
    exception = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    components: dict[str, Any] = {
        "schemas": {"exception": {"type": "object", "required": ["code"], "properties": {
            "code": {"type": "string"}, "description": {"type": "string"}, "type": {"type": "string"},
            "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}}}},
        "responses": {
            "BadRequest": {"description": "invalid request", "content": exception},
            "NotFound": {"description": "not found", "content": exception},
            "ServerError": {"description": "server error", "content": exception},
        },
    }
    if any(not layer.config.public for layer in layers):
        components["responses"]["Unauthorized"] = {"description": "credentials needed (WWW-Authenticate)",
                                                   "content": exception}
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (OpenID Connect) or API key"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": cfg.metadata.title.en, "description": cfg.metadata.description.en, "version": "0.1.0",
                 "license": {"name": cfg.metadata.license.get("name", "see collections"),
                             "url": cfg.metadata.license.get("url", "https://www.kogl.or.kr")}},
        "servers": [{"url": cfg.server.url}],
        "paths": paths,
        "components": components,
        "tags": [{"name": t} for t in ("Capabilities", "Data", "Tiles", "Maps", "Processes")],
    }
