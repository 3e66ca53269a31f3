"""OpenAPI 3.0 document generated from the layer declarations."""

from __future__ import annotations

from typing import Any

from core import crs as crs_mod
from core.config import AppConfig
from layers.model import Layer

_F_PARAM = {"name": "f", "in": "query", "required": False, "style": "form", "explode": False,
            "description": "response format", "schema": {"type": "string", "enum": ["json", "html"]}}
_LANG_PARAM = {"name": "lang", "in": "query", "required": False, "description": "language (ko or en)",
               "schema": {"type": "string", "enum": ["ko", "en"], "default": "ko"}}


def _q(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": False,
            "description": description, "schema": schema, **extra}


def _ok(description: str, media: dict[str, Any]) -> dict[str, Any]:
    return {
        "200": {"description": description, "content": media},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "500": {"$ref": "#/components/responses/ServerError"},
    }


def openapi_document(cfg: AppConfig, layers: list[Layer]) -> dict[str, Any]:
    """The API definition: every path this server answers, with its parameters."""
    ids = [layer.id for layer in layers]
    crs_uris = sorted({c.uri for layer in layers for c in crs_mod.supported(layer.srid)})
    any_json = {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}
    geojson = {"application/geo+json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}
    collection_id = {"name": "collectionId", "in": "path", "required": True, "description": "collection id",
                     "schema": {"type": "string", "enum": ids}}
    feature_id = {"name": "featureId", "in": "path", "required": True, "description": "feature id",
                  "schema": {"type": "string"}}
    crs_param = _q("crs", "CRS of the response geometries (Part 2)", {"type": "string", "format": "uri",
                                                                       "enum": crs_uris})
    items_params = [
        collection_id,
        _q("limit", "page size (larger values are clamped)", {
            "type": "integer", "minimum": 1, "maximum": cfg.server.limit_max, "default": cfg.server.limit_default}),
        _q("bbox", "bounding box (minx,miny,maxx,maxy) in bbox-crs (default CRS84)", {
            "type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
        _q("bbox-crs", "CRS of bbox", {"type": "string", "format": "uri", "enum": crs_uris}),
        _q("datetime", "instant or interval (RFC 3339, '..' for open ends)", {"type": "string"}),
        crs_param,
        _q("properties", "properties to return", {"type": "array", "items": {"type": "string"}}),
        _q("sortby", "sort keys, e.g. -docks,name", {"type": "array", "items": {"type": "string"}}),
        _q("filter", "CQL2 filter (Part 3)", {"type": "string"}),
        _q("filter-lang", "filter language", {"type": "string", "enum": ["cql2-text", "cql2-json"],
                                               "default": "cql2-text"}),
        _q("filter-crs", "CRS of geometry literals in filter", {"type": "string", "format": "uri",
                                                                 "enum": crs_uris}),
        _q("offset", "features to skip (prefer the next link)", {"type": "integer", "minimum": 0}),
        _q("cursor", "opaque paging cursor from a next link", {"type": "string"}),
        _q("skipGeometry", "omit geometries", {"type": "boolean", "default": False}),
        _F_PARAM, _LANG_PARAM,
    ]
    paths: dict[str, Any] = {
        "/": {"get": {"operationId": "getLandingPage", "summary": "landing page", "tags": ["Capabilities"],
                      "parameters": [_F_PARAM, _LANG_PARAM], "responses": _ok("landing page", any_json)}},
        "/conformance": {"get": {"operationId": "getConformanceDeclaration", "summary": "conformance classes",
                                 "tags": ["Capabilities"], "parameters": [_F_PARAM],
                                 "responses": _ok("conformance", any_json)}},
        "/api": {"get": {"operationId": "getApiDefinition", "summary": "this document", "tags": ["Capabilities"],
                         "parameters": [_F_PARAM],
                         "responses": _ok("API definition", {
                             "application/vnd.oai.openapi+json;version=3.0": {"schema": {"type": "object"}},
                             "text/html": {"schema": {"type": "string"}}})}},
        "/collections": {"get": {"operationId": "getCollections", "summary": "feature collections",
                                 "tags": ["Data"], "parameters": [_F_PARAM, _LANG_PARAM],
                                 "responses": _ok("collections", any_json)}},
        "/collections/{collectionId}": {"get": {
            "operationId": "describeCollection", "summary": "a collection", "tags": ["Data"],
            "parameters": [collection_id, _F_PARAM, _LANG_PARAM],
            "responses": {**_ok("collection", any_json), "404": {"$ref": "#/components/responses/NotFound"}}}},
        "/collections/{collectionId}/queryables": {"get": {
            "operationId": "getQueryables", "summary": "queryables (JSON Schema)", "tags": ["Data"],
            "parameters": [collection_id, _F_PARAM, _LANG_PARAM],
            "responses": {**_ok("queryables", {"application/schema+json": {"schema": {"type": "object"}}}),
                          "404": {"$ref": "#/components/responses/NotFound"}}}},
        "/collections/{collectionId}/items": {"get": {
            "operationId": "getFeatures", "summary": "features of a collection", "tags": ["Data"],
            "parameters": items_params,
            "responses": {**_ok("features", geojson), "404": {"$ref": "#/components/responses/NotFound"}}}},
        "/collections/{collectionId}/items/{featureId}": {"get": {
            "operationId": "getFeature", "summary": "one feature", "tags": ["Data"],
            "parameters": [collection_id, feature_id, crs_param,
                           _q("properties", "properties to return", {"type": "array", "items": {"type": "string"}}),
                           _F_PARAM, _LANG_PARAM],
            "responses": {**_ok("feature", geojson), "404": {"$ref": "#/components/responses/NotFound"}}}},
    }
    for layer in layers:
        qparams = [_q(c.name, f"{c.name} equals (queryable)", {"type": c.json_type[0]})
                   for c in layer.properties if c.json_type[0] in ("string", "integer", "number", "boolean")]
        fixed = [p for p in items_params if p is not collection_id]
        paths[f"/collections/{layer.id}/items"] = {"get": {
            "operationId": f"getFeatures_{layer.id}", "summary": f"{layer.config.title.en} ({layer.config.title.ko})",
            "tags": [layer.id], "parameters": fixed + qparams,
            "responses": {**_ok("features", geojson), "404": {"$ref": "#/components/responses/NotFound"}}}}
        paths[f"/collections/{layer.id}/items/{{featureId}}"] = {"get": {
            "operationId": f"getFeature_{layer.id}", "summary": f"one feature of {layer.id}", "tags": [layer.id],
            "parameters": [feature_id, crs_param, _F_PARAM, _LANG_PARAM],
            "responses": {**_ok("feature", geojson), "404": {"$ref": "#/components/responses/NotFound"}}}}
    mvt = {"application/vnd.mapbox-vector-tile": {"schema": {"type": "string", "format": "binary"}}}
    tms_param = {"name": "tileMatrixSetId", "in": "path", "required": True, "description": "tile matrix set",
                 "schema": {"type": "string", "enum": ["WebMercatorQuad", "WorldCRS84Quad", "KoreanUTMK"]}}
    tile_params = [tms_param] + [{"name": n, "in": "path", "required": True, "description": n,
                                  "schema": {"type": "integer", "minimum": 0}}
                                 for n in ("tileMatrix", "tileRow", "tileCol")]
    tile_responses = {"200": {"description": "a Mapbox vector tile (empty body when empty)", "content": mvt},
                      "404": {"$ref": "#/components/responses/NotFound"},
                      "400": {"$ref": "#/components/responses/BadRequest"}}
    json_only = {"application/json": {"schema": {"type": "object"}}}
    paths["/tileMatrixSets"] = {"get": {"operationId": "getTileMatrixSetsList", "summary": "tile matrix sets",
                                        "tags": ["Tiles"], "responses": _ok("tile matrix sets", json_only)}}
    paths["/tileMatrixSets/{tileMatrixSetId}"] = {"get": {
        "operationId": "getTileMatrixSet", "summary": "a tile matrix set", "tags": ["Tiles"],
        "parameters": [tms_param], "responses": _ok("tile matrix set", json_only)}}
    paths["/tiles"] = {"get": {"operationId": "dataset.vector.getTileSetsList", "summary": "dataset tilesets",
                               "tags": ["Tiles"], "responses": _ok("tilesets", json_only)}}
    paths["/tiles/{tileMatrixSetId}"] = {"get": {
        "operationId": "dataset.vector.getTileSet", "summary": "dataset tileset", "tags": ["Tiles"],
        "parameters": [tms_param], "responses": _ok("tileset", json_only)}}
    paths["/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"] = {"get": {
        "operationId": "dataset.vector.getTile", "summary": "a tile of every layer", "tags": ["Tiles"],
        "parameters": [*tile_params, _q("collections", "layers to include", {"type": "array",
                                                                           "items": {"type": "string"}})],
        "responses": tile_responses}}
    paths["/collections/{collectionId}/tiles"] = {"get": {
        "operationId": "collection.vector.getTileSetsList", "summary": "collection tilesets", "tags": ["Tiles"],
        "parameters": [collection_id], "responses": _ok("tilesets", json_only)}}
    paths["/collections/{collectionId}/tiles/{tileMatrixSetId}"] = {"get": {
        "operationId": "collection.vector.getTileSet", "summary": "collection tileset", "tags": ["Tiles"],
        "parameters": [collection_id, tms_param], "responses": _ok("tileset", json_only)}}
    paths["/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"] = {"get": {
        "operationId": "collection.vector.getTile", "summary": "a tile of one collection", "tags": ["Tiles"],
        "parameters": [collection_id, *tile_params, _q("filter", "CQL2 filter", {"type": "string"}),
                       _q("filter-lang", "filter language", {"type": "string", "enum": ["cql2-text", "cql2-json"]})],
        "responses": tile_responses}}
    from server.processes_api import openapi_paths

    paths.update(openapi_paths(layers))
    exception = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": cfg.metadata.title.en, "description": cfg.metadata.description.en, "version": "0.1.0",
                 "license": {"name": cfg.metadata.license.get("name", "see collections"),
                             "url": cfg.metadata.license.get("url", "https://www.kogl.or.kr")}},
        "servers": [{"url": cfg.server.url}],
        "paths": paths,
        "components": {
            "schemas": {"exception": {"type": "object", "required": ["code"], "properties": {
                "code": {"type": "string"}, "description": {"type": "string"}, "type": {"type": "string"},
                "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}}}},
            "responses": {
                "BadRequest": {"description": "invalid request", "content": exception},
                "NotFound": {"description": "not found", "content": exception},
                "ServerError": {"description": "server error", "content": exception},
            },
        },
        "tags": [{"name": "Capabilities"}, {"name": "Data"}, {"name": "Tiles"}, {"name": "Processes"}],
    }
