"""OGC API - Features (Parts 1, 2, 3) routes over the declared layers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg2.extensions
from flask import Blueprint, Response, render_template, request

from core import crs as crs_mod
from core.errors import NotFound
from layers.edit_sql import sql_etag
from layers.model import Layer
from layers.query import build_items_query, encode_cursor, reject_unknown, scalar_properties
from layers.sql import ItemsQuery, sql_count, sql_item, sql_items
from server import access, coverages, services
from server.negotiate import (
    GEOJSON,
    HTML,
    JSON,
    SCHEMA_JSON,
    href,
    language,
    link,
    link_header,
    response_format,
    self_and_alternates,
)
from server.params_spec import accepted
from server.styles_api import style_links

BP = Blueprint("features", __name__)
BP.after_app_request(access.private)  # every answer carrying a protected layer is Cache-Control: private

EXACT_COUNT_MAX_ROWS = 100_000  # numberMatched is exact below this many rows, omitted above
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SORTABLES = "http://www.opengis.net/def/rel/ogc/1.0/sortables"


def _db() -> Any:
    return services.current().db


def _json(doc: Any, media: str = JSON, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), status=status, mimetype=media, headers=headers)


def attribution(layer: Layer) -> str:
    """Attribution text of every source behind a layer."""
    texts = []
    for p in layer.provenance:
        if p.get("attribution") and p["attribution"] not in texts:
            texts.append(p["attribution"])
    return "; ".join(texts)


def collection_doc(layer: Layer, lang: str, current: str = JSON) -> dict[str, Any]:
    """The collection description (identical in /collections and /collections/{id})."""
    cfg = layer.config
    path = f"/collections/{layer.id}"
    bbox = list(layer.extent) if layer.extent else list(crs_mod.area_of_use(layer.srid))
    extent: dict[str, Any] = {"spatial": {"bbox": [bbox], "crs": crs_mod.CRS84}}
    if layer.temporal:
        extent["temporal"] = {"interval": [list(layer.temporal)], "trs": TRS}
    links = [
        *self_and_alternates(path, current, [JSON, HTML]),
        link("items", GEOJSON, f"{path}/items", "features as GeoJSON"),  # no query: clients append /{featureId}
        link("items", HTML, f"{path}/items", "features as HTML", f="html"),
        link(QUERYABLES, SCHEMA_JSON, f"{path}/queryables", "queryables"),
        link(SORTABLES, SCHEMA_JSON, f"{path}/sortables", "sortables"),
    ]
    if layer.tiles_enabled:
        links.append(link("http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", JSON, f"{path}/tiles",
                          "vector tiles"))
        links.extend(style_links(layer.id))
    licences = {str(p["licence"]) for p in layer.provenance if p.get("licence")}
    for lic in sorted(licences):
        links.append({"rel": "license", "type": HTML, "title": lic,
                      "href": "https://opendatacommons.org/licenses/odbl/1-0/" if "ODbL" in lic
                      else "https://www.kogl.or.kr/info/licenseType1.do"})
    doc: dict[str, Any] = {
        "id": layer.id,
        "title": cfg.title.get(lang),
        "description": cfg.description.get(lang) if cfg.description else "",
        "keywords": cfg.keywords,
        "itemType": "feature",
        "extent": extent,
        "crs": [c.uri for c in crs_mod.supported(layer.srid)],
        "storageCrs": crs_mod.epsg_uri(layer.srid),
        "links": links,
    }
    attr = attribution(layer)
    if attr:
        doc["attribution"] = attr
    if layer.provenance:
        doc["provenance"] = [{k: v for k, v in p.items() if k != "quality"} for p in layer.provenance]
    quality = layer.quality
    if quality:
        doc["quality"] = quality
        links.append(link("describedby", HTML, "/quality", "data quality of every layer", f="html"))
    return doc


@BP.route("/collections")
def collections() -> Response:
    """The collections the caller may read."""
    reject_unknown(request.args, accepted("/collections"))
    fmt = response_format([JSON, HTML])
    lang = language()
    layers = access.layers()
    doc = {
        "links": self_and_alternates("/collections", fmt, [JSON, HTML]),
        "collections": [*(collection_doc(layer, lang) for layer in layers), *coverages.listed(lang)],
    }
    if fmt == HTML:
        return Response(render_template("collections.html", doc=doc, lang=lang), mimetype=HTML)
    return _json(doc)


@BP.route("/collections/<collection_id>")
def collection(collection_id: str) -> Response:
    """One collection."""
    reject_unknown(request.args, accepted("/collections/{collectionId}"))
    layer = access.layer(collection_id)
    fmt = response_format([JSON, HTML])
    lang = language()
    doc = collection_doc(layer, lang, fmt)
    headers = {"Link": link_header(doc["links"])}
    if fmt == HTML:
        return Response(render_template("collection.html", doc=doc, layer=layer, lang=lang), mimetype=HTML,
                        headers=headers)
    return _json(doc, headers=headers)


@BP.route("/collections/<collection_id>/queryables")
def queryables(collection_id: str) -> Response:
    """JSON Schema of the properties a filter may use (Part 3)."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/queryables"))
    layer = access.layer(collection_id)
    fmt = response_format([SCHEMA_JSON, HTML])
    lang = language()
    gtype = layer.geometry_type.lower()
    props: dict[str, Any] = {
        "geometry": {"title": "geometry", "format": f"geometry-{_geom_format(gtype)}",
                     "x-ogc-role": "primary-geometry"},
    }
    for col in layer.properties:
        typ, fmt_ = col.json_type
        entry: dict[str, Any] = {"title": layer.title_of(col.name, lang), "type": typ}
        if fmt_:
            entry["format"] = fmt_
        if col.name == layer.config.id:
            entry["x-ogc-role"] = "id"
        if col.name == layer.config.datetime:
            entry["x-ogc-role"] = "primary-instant"
        props[col.name] = entry
    return _schema_response(layer, "queryables", props, fmt, lang)


@BP.route("/collections/<collection_id>/sortables")
def sortables(collection_id: str) -> Response:
    """JSON Schema of the properties sortby accepts (Features Part 5)."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/sortables"))
    layer = access.layer(collection_id)
    fmt = response_format([SCHEMA_JSON, HTML])
    lang = language()
    props: dict[str, Any] = {}
    for col in scalar_properties(layer):
        typ, fmt_ = col.json_type
        props[col.name] = {"title": layer.title_of(col.name, lang), "type": typ, **({"format": fmt_} if fmt_ else {})}
    return _schema_response(layer, "sortables", props, fmt, lang)


def _schema_response(layer: Layer, kind: str, props: dict[str, Any], fmt: str, lang: str) -> Response:
    """A queryables or sortables JSON Schema document (or its HTML table)."""
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": href(f"/collections/{layer.id}/{kind}"),
        "type": "object",
        "title": layer.config.title.get(lang),
        "properties": props,
        "additionalProperties": False,
    }
    if fmt == HTML:
        return Response(render_template("queryables.html", doc=doc, layer=layer, lang=lang, kind=kind),
                        mimetype=HTML)
    return _json(doc, SCHEMA_JSON)


def _geom_format(gtype: str) -> str:
    mapping = {"point": "point", "multipoint": "multipoint", "linestring": "linestring",
               "multilinestring": "multilinestring", "polygon": "polygon", "multipolygon": "multipolygon"}
    return mapping.get(gtype, "any")


def _fetch_page(layer: Layer, q: ItemsQuery) -> tuple[bytes, int, Any, int | None]:
    """(features as UTF-8 bytes, numberReturned, last id, numberMatched or None) in one read-only transaction."""
    with _db().connection() as conn, conn.cursor() as cur:
        psycopg2.extensions.register_type(psycopg2.extensions.BYTES, cur)  # the page stays bytes end to end
        cur.execute(sql_items(layer, q))
        text, returned, last = cur.fetchone()
        if isinstance(last, bytes):
            last = last.decode()
        matched: int | None = None
        if q.after is None and q.offset == 0 and returned < q.limit:
            matched = returned  # the whole answer is on this page
        elif layer.estimated_rows <= EXACT_COUNT_MAX_ROWS:
            version_key = _version_key(layer) if not q.where else None  # read before counting, never after
            matched = _COUNTS.get(version_key) if version_key else None
            if matched is None:
                cur.execute(sql_count(layer, q))
                matched = int(cur.fetchone()[0])
                if version_key:
                    _COUNTS[version_key] = matched
    return text, int(returned), last, matched


_COUNTS: dict[tuple[str, int], int] = {}


def _version_key(layer: Layer) -> tuple[str, int] | None:
    """(layer, data version) from the in-memory watcher, None when it cannot vouch for the version."""
    watcher = services.current().versions
    current = watcher.current() if watcher is not None else None
    if current is None or not all(t in current for t in layer.catalog_tables):
        return None
    return (layer.id, sum(current[t] for t in layer.catalog_tables))


def _page_links(layer: Layer, q: ItemsQuery, fmt: str, returned: int, last: Any,
                matched: int | None) -> list[dict[str, Any]]:
    path = f"/collections/{layer.id}/items"
    base = {k: v for k, v in request.args.items() if k not in ("f", "cursor", "offset")}
    links = self_and_alternates(path, fmt, [GEOJSON, HTML], **{**base, **_paging_args(q)})
    has_more = returned >= q.limit and (matched is None or q.offset + returned < matched)
    if has_more:
        nxt: dict[str, Any] = dict(base)
        nxt["limit"] = q.limit
        if q.order:
            nxt["offset"] = q.offset + returned
        else:
            nxt["cursor"] = encode_cursor(q.offset + returned, last)
        links.append(link("next", fmt, path, "next page", **nxt, f="json" if fmt != HTML else "html"))
    if q.offset > 0:
        prev: dict[str, Any] = dict(base)
        prev["limit"] = q.limit
        prev["offset"] = max(q.offset - q.limit, 0)
        links.append(link("prev", fmt, path, "previous page", **prev, f="json" if fmt != HTML else "html"))
    links.append(link("collection", JSON, f"/collections/{layer.id}", "the collection", f="json"))
    links.append(link(QUERYABLES, SCHEMA_JSON, f"/collections/{layer.id}/queryables", "queryables"))
    return links


def _paging_args(q: ItemsQuery) -> dict[str, Any]:
    if q.after is not None:
        return {"cursor": request.args.get("cursor")}
    if q.offset:
        return {"offset": q.offset}
    return {}


def _headers(q: ItemsQuery, links: list[dict[str, Any]]) -> dict[str, str]:
    """Content-Crs plus an RFC 8288 Link header carrying self, alternate and paging links."""
    wanted = [lk for lk in links if lk["rel"] in ("self", "alternate", "next", "prev", "collection", QUERYABLES)]
    return {"Content-Crs": f"<{q.out_crs.uri}>", "Link": link_header(wanted)}


@BP.route("/collections/<collection_id>/items")
def items(collection_id: str) -> Response:
    """A page of features, built and serialised in PostGIS."""
    layer = access.layer(collection_id)
    fmt = response_format([GEOJSON, HTML])
    q, _ = build_items_query(layer, request.args, services.current().config.server)
    text, returned, last, matched = _fetch_page(layer, q)
    links = _page_links(layer, q, fmt, returned, last, matched)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == HTML:
        feats = json.loads(b"[" + text + b"]")
        return Response(render_template("items.html", layer=layer, features=feats, links=links,
                                        matched=matched, lang=language(), attribution=attribution(layer)),
                        mimetype=HTML)
    head: dict[str, Any] = {"type": "FeatureCollection", "timeStamp": stamp, "numberReturned": returned}
    if matched is not None:
        head["numberMatched"] = matched
    head["links"] = links
    prefix = (json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[').encode()
    return Response(b"".join((prefix, text, b"]}")), mimetype=GEOJSON, headers=_headers(q, links))


@BP.route("/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str) -> Response:
    """One feature."""
    layer = access.layer(collection_id)
    reject_unknown(request.args, accepted("/collections/{collectionId}/items/{featureId}"))
    fmt = response_format([GEOJSON, HTML])
    q, _ = build_items_query(layer, {k: v for k, v in request.args.items() if k != "lang"},
                             services.current().config.server)
    fid: Any = feature_id
    if layer.id_column.json_type[0] == "integer":
        if not feature_id.isascii() or not feature_id.lstrip("-").isdigit():  # int() would take "１" as 1
            raise NotFound(f"feature {feature_id!r} not found in {layer.id}")
        fid = int(feature_id)
        if not -(2**63) <= fid < 2**63:
            raise NotFound(f"feature {feature_id!r} not found in {layer.id}")
    with _db().connection(snapshot=True) as conn, conn.cursor() as cur:  # the feature and its ETag, one snapshot
        cur.execute(sql_item(layer, q, fid))
        row = cur.fetchone()
        if row is not None:
            cur.execute(sql_etag(layer, fid))
            etag = str(cur.fetchone()[0])
    if row is None:
        raise NotFound(f"feature {feature_id!r} not found in {layer.id}")
    feature = json.loads(row[0])
    path = f"/collections/{layer.id}/items/{feature_id}"
    extra = {k: v for k, v in request.args.items() if k != "f"}
    feature["links"] = [
        *self_and_alternates(path, fmt, [GEOJSON, HTML], **extra),
        link("collection", JSON, f"/collections/{layer.id}", "the collection", f="json"),
    ]
    if fmt == HTML:
        return Response(render_template("item.html", layer=layer, feature=feature, lang=language(),
                                        attribution=attribution(layer)), mimetype=HTML)
    resp = _json(feature, GEOJSON, headers=_headers(q, feature["links"]))
    resp.set_etag(etag)  # the row's ETag: If-Match of replace, update and delete (server.editing)
    return resp

