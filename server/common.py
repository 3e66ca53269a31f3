"""Landing page, conformance and the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, render_template, request

from core.errors import ServiceUnavailable
from layers.query import reject_unknown
from server import access, editing, services
from server.editing import CONFORMANCE as EDITING_CONFORMANCE
from server.negotiate import HTML, JSON, OPENAPI_JSON, language, link, response_format, self_and_alternates
from server.openapi import openapi_document
from server.params_spec import accepted
from server.processes_api import CONFORMANCE as PROCESSES_CONFORMANCE

BP = Blueprint("common", __name__)

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/sortables",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/collections-selection",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    *PROCESSES_CONFORMANCE,
]


def _json(doc: Any, media: str = JSON) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), mimetype=media)


@BP.route("/")
def landing() -> Response:
    """Landing page with links to the API definition, conformance and data."""
    reject_unknown(request.args, accepted("/"))
    fmt = response_format([JSON, HTML])
    lang = language()
    meta = services.current().config.metadata
    doc = {
        "title": meta.title.get(lang),
        "description": meta.description.get(lang),
        "links": [
            *self_and_alternates("/", fmt, [JSON, HTML]),
            link("service-desc", OPENAPI_JSON, "/api", "the API definition (OpenAPI 3.0, JSON)", f="json"),
            link("service-doc", HTML, "/api", "the API documentation", f="html"),
            link("conformance", JSON, "/conformance", "conformance classes", f="json"),
            link("http://www.opengis.net/def/rel/ogc/1.0/conformance", JSON, "/conformance",
                 "conformance classes", f="json"),
            link("data", JSON, "/collections", "collections", f="json"),
            link("http://www.opengis.net/def/rel/ogc/1.0/data", JSON, "/collections", "collections", f="json"),
            link("http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", JSON, "/tiles",
                 "vector tiles of all layers"),
            link("http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", JSON, "/tileMatrixSets",
                 "tile matrix sets"),
            link("http://www.opengis.net/def/rel/ogc/1.0/processes", JSON, "/processes", "processes"),
            link("http://www.opengis.net/def/rel/ogc/1.0/job-list", JSON, "/jobs", "jobs"),
        ],
    }
    if fmt == HTML:
        layers = access.layers()
        return Response(render_template("landing.html", doc=doc, layers=layers, lang=lang), mimetype=HTML)
    return _json(doc)


@BP.route("/conformance")
def conformance() -> Response:
    """The conformance classes this server implements."""
    reject_unknown(request.args, accepted("/conformance"))
    fmt = response_format([JSON, HTML])
    classes = CONFORMANCE + (EDITING_CONFORMANCE if editing.enabled() else [])  # Part 4 only with an editable layer
    doc = {"links": self_and_alternates("/conformance", fmt, [JSON, HTML]), "conformsTo": classes}
    if fmt == HTML:
        return Response(render_template("conformance.html", doc=doc, lang=language()), mimetype=HTML)
    return _json(doc)


@BP.route("/api")
def api() -> Response:
    """OpenAPI 3.0 document (JSON) or its HTML rendering."""
    reject_unknown(request.args, accepted("/api"))
    fmt = response_format([OPENAPI_JSON, HTML])
    doc = openapi_document(services.current().config, access.layers())  # the caller's collections only
    if fmt == HTML:
        return Response(render_template("api.html", doc=doc, lang=language()), mimetype=HTML)
    return _json(doc, OPENAPI_JSON)


@BP.route("/health")
def health() -> Response:
    """Liveness and database reachability."""
    reject_unknown(request.args, accepted("/health"))
    try:  # its own one-connection pool: answers whatever the request pool is busy with
        with services.current().health_db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    except Exception as err:  # reported, not raised: this is the health endpoint
        raise ServiceUnavailable("database unreachable", headers={"Retry-After": "5"}) from err
    return _json({"status": "ok"})
