"""Query parameters of every route, declared once: the views validate with `accepted()`, /api documents `ROUTES`.

A route is keyed by its OpenAPI path template and method.  Items parameter names come from layers.query (the
items query builder validates them there); this module gives every name its OpenAPI description and schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.config import AppConfig
from core.tms import TILE_MATRIX_SETS
from layers.query import ITEM_PARAMS, ITEMS_PARAMS


@dataclass(frozen=True)
class DocContext:
    """What parameter schemas depend on: the configuration and the public layers."""

    cfg: AppConfig
    collection_ids: tuple[str, ...]
    crs_uris: tuple[str, ...]


Schema = dict[str, Any] | Callable[[DocContext], dict[str, Any]]


@dataclass(frozen=True, eq=False)
class Param:
    """One parameter: its name, a description and its JSON Schema (fixed, or built from the context)."""

    name: str
    description: str
    schema: Schema
    location: str = "query"

    def openapi(self, ctx: DocContext) -> dict[str, Any]:
        """The OpenAPI 3.0 parameter object."""
        schema = self.schema(ctx) if callable(self.schema) else self.schema
        out: dict[str, Any] = {"name": self.name, "in": self.location, "required": self.location == "path",
                               "description": self.description, "schema": schema}
        if self.location == "query":
            out.update(style="form", explode=False)
        return out


@dataclass(frozen=True)
class Route:
    """Query parameters of one operation; `files` routes serve files and ignore the query (cache busting)."""

    query: tuple[Param, ...] = ()
    files: bool = False
    queryables: bool = False  # the collection's scalar queryables are accepted too, as name=value filters

    @property
    def accepted(self) -> frozenset[str]:
        """Names of the query parameters the operation accepts (queryables aside)."""
        return frozenset(p.name for p in self.query)


def _crs_enum(ctx: DocContext) -> dict[str, Any]:
    return {"type": "string", "format": "uri", "enum": list(ctx.crs_uris)}


F_PAGE = Param("f", "response format (default: by Accept)", {"type": "string", "enum": ["json", "html"]})
F_JSON = Param("f", "response format", {"type": "string", "enum": ["json"]})
F_MVT = Param("f", "response format (always a Mapbox vector tile)", {"type": "string", "enum": ["mvt"]})
F_CSV = Param("f", "ignored: the answer is always CSV", {"type": "string"})
LANG = Param("lang", "language (ko or en)", {"type": "string", "enum": ["ko", "en"], "default": "ko"})

_ITEMS_CATALOGUE = {p.name: p for p in (
    Param("limit", "page size (larger values are clamped)", lambda ctx: {
        "type": "integer", "minimum": 1, "maximum": ctx.cfg.server.limit_max,
        "default": ctx.cfg.server.limit_default}),
    Param("offset", "features to skip (prefer the next link)",
          {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0}),
    Param("cursor", "opaque paging cursor from a next link", {"type": "string"}),
    Param("bbox", "bounding box (minx,miny,maxx,maxy) in bbox-crs (default CRS84)",
          {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
    Param("bbox-crs", "CRS of bbox", _crs_enum),
    Param("datetime", "instant or interval (RFC 3339, '..' for open ends); extension: a month YYYY-MM is that whole "
          "month (2023-08 = 2023-08-01/2023-08-31), as a date YYYY-MM-DD is that whole day", {"type": "string"}),
    Param("crs", "CRS of the response geometries (Part 2)", _crs_enum),
    Param("properties", "properties to return", {"type": "array", "items": {"type": "string"}}),
    Param("sortby", "sort keys (see sortables), e.g. -docks,name", {"type": "array", "items": {"type": "string"}}),
    Param("filter", "CQL2 filter (Part 3)", {"type": "string"}),
    Param("filter-lang", "filter language",
          {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"}),
    Param("filter-crs", "CRS of geometry literals in filter", _crs_enum),
    Param("skipGeometry", "omit geometries", {"type": "boolean", "default": False}),
    F_PAGE, LANG,
)}


def _items_params(names: set[str] | frozenset[str]) -> tuple[Param, ...]:
    """Definitions of the items parameters named (in catalogue order); a name without one is a KeyError."""
    missing = set(names) - set(_ITEMS_CATALOGUE)
    if missing:
        raise KeyError(f"items parameters without an OpenAPI definition: {sorted(missing)}")
    return tuple(p for name, p in _ITEMS_CATALOGUE.items() if name in names)


ITEMS = _items_params(ITEMS_PARAMS)
ITEM = _items_params(ITEM_PARAMS)
FILTER = tuple(_ITEMS_CATALOGUE[n] for n in ("filter", "filter-lang", "filter-crs"))
TILE_DATETIME = Param("datetime", "time-enabled layers: the features of this instant, day, month (YYYY-MM) or "
                      "interval, as for items; without it a layer whose time column is a date (e.g. population) "
                      "shows its latest month, others every feature", {"type": "string"})
PAGE = Route((F_PAGE, LANG))
DOC = Route((F_JSON, LANG))
TILE_SET = Route((F_JSON, LANG))
PAGING = (Param("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
          Param("offset", "entries to skip", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0}))
FILES = Route(files=True)
NONE = Route()

ROUTES: dict[str, dict[str, Route]] = {
    "/": {"get": PAGE},
    "/conformance": {"get": PAGE},
    "/api": {"get": PAGE},
    "/health": {"get": NONE},
    "/metrics": {"get": NONE},
    "/collections": {"get": PAGE},
    "/quality": {"get": PAGE},
    "/collections/{collectionId}": {"get": PAGE},
    "/collections/{collectionId}/queryables": {"get": PAGE},
    "/collections/{collectionId}/sortables": {"get": PAGE},
    "/collections/{collectionId}/items": {"get": Route(ITEMS, queryables=True), "post": NONE},
    "/collections/{collectionId}/items/{featureId}": {"get": Route(ITEM), "put": NONE, "patch": NONE,
                                                      "delete": NONE},
    "/collections/{collectionId}/changes": {"get": Route((F_JSON, *PAGING))},
    "/tileMatrixSets": {"get": Route((F_JSON,))},
    "/tileMatrixSets/{tileMatrixSetId}": {"get": Route((F_JSON,))},
    "/tiles": {"get": TILE_SET},
    "/tiles/{tileMatrixSetId}": {"get": TILE_SET},
    "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": {"get": Route((F_MVT, Param(
        "collections", "collections to include (default: all)", lambda ctx: {
            "type": "array", "items": {"type": "string", "enum": list(ctx.collection_ids)}})))},
    "/tiles/{collectionId}/{tileMatrix}/{x}/{y}.mvt": {"get": Route((F_MVT, *FILTER, TILE_DATETIME))},
    "/tilejson.json": {"get": TILE_SET},
    "/collections/{collectionId}/tiles": {"get": TILE_SET},
    "/collections/{collectionId}/tiles/{tileMatrixSetId}": {"get": TILE_SET},
    "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": {
        "get": Route((F_MVT, *FILTER, TILE_DATETIME))},
    "/collections/{collectionId}/tilejson.json": {"get": TILE_SET},
    "/styles": {"get": PAGE},
    "/styles/{styleId}": {"get": Route((Param("f", "style encoding: MapLibre (json, default), map preview (html), "
                                              "SLD 1.1 / SE 1.1 for QGIS and ArcGIS (sld11)",
                                              {"type": "string", "enum": ["json", "mapbox", "html", "sld11"]}), LANG))},
    "/fonts/{fontstack}/{glyphRange}.pbf": {"get": NONE},
    "/map": {"get": Route((LANG, *(Param(n, f"sign-in answer of the OpenID provider ({n})", {"type": "string"})
                                   for n in ("code", "state", "iss", "session_state", "error", "error_description"))))},
    "/citizen": {"get": Route((LANG,))},
    "/map/layers.json": {"get": DOC},
    "/map/download/{collectionId}.csv": {
        "get": Route(tuple(F_CSV if p is F_PAGE else p for p in ITEMS), queryables=True)},
    "/assets/maplibre/{filename}": {"get": FILES},
    "/map/static/{filename}": {"get": FILES},
    "/static/{filename}": {"get": FILES},
    "/processes": {"get": Route((F_JSON, LANG, *PAGING))},
    "/processes/{processID}": {"get": DOC},
    "/processes/{processID}/execution": {"post": NONE},
    "/jobs": {"get": Route((F_JSON, LANG, *PAGING,
                            Param("processID", "only jobs of this process", {"type": "string"}),
                            Param("status", "only jobs in these states", {"type": "array", "items": {
                                "type": "string",
                                "enum": ["accepted", "running", "successful", "failed", "dismissed"]}}),
                            Param("type", "job type", {"type": "string", "enum": ["process"]})))},
    "/jobs/{jobId}": {"get": DOC, "delete": DOC},
    "/jobs/{jobId}/results": {"get": DOC},
    # air-quality surfaces (server/coverages.py): OGC API - Coverages and PNG map tiles
    "/collections/{collectionId}/coverage": {"get": Route((
        Param("f", "GeoTIFF values or grade-coloured PNG (default: by Accept, else GeoTIFF)",
              {"type": "string", "enum": ["tif", "png"]}),
        Param("subset", "E(low:high), N(low:high) in EPSG:5186 metres and/or time(\"YYYY-MM-DD\")",
              {"type": "array", "items": {"type": "string"}}),
        _ITEMS_CATALOGUE["bbox"], _ITEMS_CATALOGUE["bbox-crs"],
        Param("datetime", "the day (YYYY-MM-DD, or an instant read in KST); default: the newest",
              {"type": "string"})))},
    "/collections/{collectionId}/coverage/domainset": {"get": Route((F_JSON,))},
    "/collections/{collectionId}/coverage/rangetype": {"get": Route((F_JSON,))},
    "/collections/{collectionId}/map/tiles": {"get": Route((F_JSON,))},
    "/collections/{collectionId}/position": {"get": Route((
        Param("coords", "a lon/lat WKT point, e.g. POINT(126.978 37.566)", {"type": "string"}),
        Param("datetime", "the day (YYYY-MM-DD); default: the newest", {"type": "string"})))},
    "/collections/{collectionId}/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": {"get": Route((
        Param("datetime", "the day (YYYY-MM-DD); default: the newest", {"type": "string"}),))},
}

PATH_PARAMS = {p.name: p for p in (
    Param("collectionId", "collection id", lambda ctx: {"type": "string", "enum": list(ctx.collection_ids)},
          "path"),
    Param("featureId", "feature id", {"type": "string"}, "path"),
    Param("tileMatrixSetId", "tile matrix set", {"type": "string", "enum": list(TILE_MATRIX_SETS)}, "path"),
    *(Param(n, n, {"type": "integer", "minimum": 0}, "path") for n in ("tileMatrix", "tileRow", "tileCol", "x", "y")),
    Param("styleId", "style id", {"type": "string"}, "path"),
    Param("fontstack", "font stack (any name gets the bundled font)", {"type": "string"}, "path"),
    Param("glyphRange", "256-glyph range, e.g. 0-255", {"type": "string", "pattern": r"^\d+-\d+$"}, "path"),
    Param("filename", "file path", {"type": "string"}, "path"),
    Param("processID", "process id", {"type": "string"}, "path"),
    Param("jobId", "job id", {"type": "string"}, "path"),
)}

# Flask view argument -> OpenAPI path parameter
FLASK_ARGS = {"collection_id": "collectionId", "layer_id": "collectionId", "feature_id": "featureId",
              "tms_id": "tileMatrixSetId", "z": "tileMatrix", "row": "tileRow", "col": "tileCol", "x": "x", "y": "y",
              "style_id": "styleId", "fontstack": "fontstack", "glyph_range": "glyphRange", "filename": "filename",
              "process_id": "processID", "job_id": "jobId"}
_TEMPLATE_VAR = re.compile(r"\{([^}]+)\}")
_FLASK_VAR = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def accepted(path: str, method: str = "get") -> frozenset[str]:
    """Names of the query parameters the operation at an OpenAPI path accepts."""
    return ROUTES[path][method].accepted


def path_parameters(path: str, ctx: DocContext) -> list[dict[str, Any]]:
    """OpenAPI objects of the path parameters in a path template."""
    return [PATH_PARAMS[name].openapi(ctx) for name in _TEMPLATE_VAR.findall(path)]


def openapi_path(rule: str) -> str:
    """The OpenAPI path template of a Flask rule (e.g. /collections/<collection_id> -> /collections/{collectionId})."""
    return _FLASK_VAR.sub(lambda m: "{" + FLASK_ARGS[m.group(1)] + "}", rule)
