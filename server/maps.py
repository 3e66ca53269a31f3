"""Map pages that work with no internet (망분리): the department viewer /map and the citizen page /citizen.

MapLibre GL JS is vendored from npm at setup (server/assets.py) and served from /assets/maplibre/; our own
scripts and CSS come from server/static/.  The layer list of /map comes from /collections, so collections added
later (e.g. process results) appear without a change here.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import shapely.geometry
from flask import Blueprint, Response, render_template, request, send_from_directory

from core.errors import NotFound
from layers.model import Layer
from layers.query import build_items_query, reject_unknown
from layers.sql import sql_items
from server import access, assets, services
from server.negotiate import HTML, JSON, language
from server.params_spec import accepted

BP = Blueprint("maps", __name__, static_folder="static", static_url_path="/map/static")

_MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".css": "text/css", ".map": JSON}


def _base() -> str:
    return str(services.current().config.server.url)


def _assets_root() -> Path:
    return services.current().assets_root


def _page(template: str) -> Response:
    lang = language()
    return Response(render_template(template, base=_base(), lang=lang,
                                    title=services.current().config.metadata.title.get(lang)), mimetype=HTML)


@BP.route("/map")
def map_page() -> Response:
    """Department viewer: layers, legend, attributes, download, attribution."""
    reject_unknown(request.args, accepted("/map"))
    return _page("map.html")


@BP.route("/citizen")
def citizen_page() -> Response:
    """Citizen page: what is near a point (bike stations, air quality, facilities)."""
    reject_unknown(request.args, accepted("/citizen"))
    return _page("citizen.html")


@BP.route("/assets/maplibre/<path:filename>")
def maplibre_file(filename: str) -> Response:
    """MapLibre GL JS files vendored from npm at setup."""
    folder = assets.maplibre_dist(_assets_root())
    if not (folder / "maplibre-gl.mjs").is_file():
        raise NotFound("MapLibre GL JS is not installed: run ./run serve (it vendors it into var/assets/)")
    suffix = Path(filename).suffix
    resp = send_from_directory(folder, filename, mimetype=_MIME.get(suffix), max_age=3600)
    return resp


def layer_info(layer: Layer) -> dict[str, Any]:
    """What the map pages need to know about a collection: titles, property titles, zooms."""
    props = []
    for col in layer.properties:
        ko, en = layer.titles.get(col.name, (col.name, col.name))
        props.append({"name": col.name, "ko": ko, "en": en, "type": col.json_type[0]})
    tiles = layer.config.tiles
    zooms = {"minzoom": getattr(tiles, "minzoom", None), "maxzoom": getattr(tiles, "maxzoom", None)}
    return {
        "id": layer.id,
        "title": {"ko": layer.config.title.get("ko"), "en": layer.config.title.get("en")},
        "geometryType": layer.geometry_type,
        "tiles": layer.tiles_enabled,
        **zooms,
        "idProperty": layer.config.id,
        "properties": props,
        "extent": list(layer.extent) if layer.extent else None,
        "attribution": "; ".join(dict.fromkeys(str(p["attribution"]) for p in layer.provenance
                                               if p.get("attribution"))),
    }


@BP.route("/map/layers.json")
def layers_json() -> Response:
    """Every collection the caller may read with its Korean/English titles and property titles."""
    reject_unknown(request.args, accepted("/map/layers.json"))
    layers = access.layers()
    auth = services.current().config.auth
    sign_in = {"issuer": auth.issuer, "clientId": auth.client_id} if auth.enabled and auth.issuer and auth.client_id \
        else None  # /map signs users in with the provider (authorization code + PKCE, public client)
    doc = {"layers": [layer_info(layer) for layer in layers], "signIn": sign_in}
    return Response(json.dumps(doc, ensure_ascii=False), mimetype=JSON)


def _wkt(geom: Any) -> str:
    if not geom:
        return ""
    return str(shapely.geometry.shape(geom).wkt)


@BP.route("/map/download/<collection_id>.csv")
def download_csv(collection_id: str) -> Response:
    """Features as CSV (UTF-8 with BOM for Excel; geometry as WKT in CRS84), same parameters as /items."""
    layer: Layer = access.layer(collection_id)
    args = {k: v for k, v in request.args.items() if k not in ("f", "lang")}
    args.setdefault("limit", str(services.current().config.server.limit_max))
    q, _ = build_items_query(layer, args, services.current().config.server)
    with services.current().db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql_items(layer, q))
        text = cur.fetchone()[0]
    features = json.loads(f"[{text}]")
    names = [c.name for c in layer.properties]
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([*names, "wkt"])
    for feat in features:
        props = feat.get("properties") or {}
        if layer.config.id in names and layer.config.id not in props:
            props = {**props, layer.config.id: feat.get("id")}
        row = [_cell(props.get(n)) for n in names]
        writer.writerow([*row, _wkt(feat.get("geometry"))])
    filename = f"{layer.id}.csv"
    return Response(buf.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
