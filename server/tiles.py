"""OGC API - Tiles (vector tiles, Mapbox Vector Tile) over the declared layers, cached and versioned."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
from functools import lru_cache
from typing import Any

import psycopg2
from flask import Blueprint, Response, request
from psycopg2 import sql

from core.crs import area_of_use
from core.errors import InvalidParameterValue, NotFound
from core.tms import TILE_MATRIX_SETS, TileMatrixSet
from layers.model import Layer
from layers.query import datetime_condition, latest_condition, parse_filter, reject_unknown
from layers.tiles_sql import bind_values, has_labels, label_layer_id, sql_tile, tile_properties
from server import access, auth, services
from server.limits import hold as data_slot
from server.negotiate import JSON, href, language, link
from server.params_spec import accepted
from server.tilecache import TileCache

BP = Blueprint("tiles", __name__)

LOGGER = logging.getLogger(__name__)
MVT = "application/vnd.mapbox-vector-tile"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"


def _registry() -> Any:
    return services.current().registry


def _cache() -> TileCache:
    return services.current().tile_cache


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), status=status, mimetype=JSON)


def _tms(tms_id: str) -> TileMatrixSet:
    tms = TILE_MATRIX_SETS.get(tms_id)
    if tms is None:
        raise NotFound(f"tile matrix set {tms_id!r} not found; available: {', '.join(TILE_MATRIX_SETS)}")
    return tms


def zoom_range(layer: Layer) -> tuple[int, int]:
    """Min and max zoom of a layer's tiles."""
    tiles = layer.config.tiles
    if isinstance(tiles, bool):
        return (0, 18)
    return (tiles.minzoom, tiles.maxzoom)


def tile_layers() -> list[Layer]:
    """The layers the caller may read that are served as tiles."""
    return [layer for layer in access.layers() if layer.tiles_enabled]


def _tile_layer(collection_id: str) -> Layer:
    layer = access.layer(collection_id)
    if not layer.tiles_enabled:
        raise NotFound(f"collection {collection_id!r} has no tiles")
    return layer


def _union_extent(layers: list[Layer]) -> tuple[float, float, float, float]:
    boxes = [layer.extent for layer in layers if layer.extent]
    if not boxes:
        return (124.0, 33.0, 132.0, 39.5)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


@lru_cache(maxsize=2048)
def limits(tms: TileMatrixSet, extent: tuple[float, float, float, float], zmin: int, zmax: int) -> list[dict[str, Any]]:
    """tileMatrixSetLimits covering an extent between two zooms."""
    out = []
    box = tms.lonlat_to_crs(extent)
    for z in range(zmin, min(zmax, tms.max_zoom) + 1):
        rng = tms.tile_range(z, box)
        if rng is None:
            continue
        out.append({"tileMatrix": str(z), "minTileRow": rng[0], "maxTileRow": rng[1], "minTileCol": rng[2],
                    "maxTileCol": rng[3]})
    return out


def _within(lims: list[dict[str, Any]], z: int, row: int, col: int) -> bool:
    for lim in lims:
        if lim["tileMatrix"] == str(z):
            return lim["minTileRow"] <= row <= lim["maxTileRow"] and lim["minTileCol"] <= col <= lim["maxTileCol"]
    return False


def _tileset_doc(path: str, title: str, tms: TileMatrixSet, lims: list[dict[str, Any]], layers: list[Layer],
                 lang: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": title,
        "tileMatrixSetId": tms.id,
        "dataType": "vector",
        "crs": tms.crs,
        "tileMatrixSetLimits": lims,
        "layers": [{
            "id": layer.id, "title": layer.config.title.get(lang), "dataType": "vector",
            "geometryDimension": 0 if "Point" in layer.geometry_type else (1 if "Line" in layer.geometry_type else 2),
            "minTileMatrix": str(zoom_range(layer)[0]), "maxTileMatrix": str(zoom_range(layer)[1]),
            "propertiesSchema": {"type": "object", "properties": {
                c.name: {"type": c.json_type[0]} for c in layer.properties if c.json_type[0] != "object"}},
        } for layer in layers],
        "links": [
            link("self", JSON, f"{path}/{tms.id}", "this tileset"),
            link(REL_TILING_SCHEME, JSON, f"/tileMatrixSets/{tms.id}", f"tile matrix set {tms.id}"),
            {"rel": "item", "type": MVT, "templated": True, "title": "Mapbox vector tiles",
             "href": href(f"{path}/{tms.id}") + "/{tileMatrix}/{tileRow}/{tileCol}"},
        ],
    }
    if tms.uri:
        doc["tileMatrixSetURI"] = tms.uri
    return doc


# ---- tile matrix sets -------------------------------------------------------------------------------


@BP.route("/tileMatrixSets")
def tile_matrix_sets() -> Response:
    """The tile matrix sets offered."""
    reject_unknown(request.args, accepted("/tileMatrixSets"))
    return _json({"tileMatrixSets": [
        {"id": t.id, "title": t.title, **({"uri": t.uri} if t.uri else {}), "crs": t.crs,
         "links": [link("self", JSON, f"/tileMatrixSets/{t.id}", t.title)]} for t in TILE_MATRIX_SETS.values()]})


@BP.route("/tileMatrixSets/<tms_id>")
def tile_matrix_set(tms_id: str) -> Response:
    """One tile matrix set definition (TMS 2.0 JSON)."""
    reject_unknown(request.args, accepted("/tileMatrixSets/{tileMatrixSetId}"))
    return _json(_tms(tms_id).document())


# ---- metadata ---------------------------------------------------------------------------------------


def _tilesets_list(path: str, title: str, layers: list[Layer], zmin: int, zmax: int) -> Response:
    extent = _union_extent(layers)
    entries = []
    for tms in TILE_MATRIX_SETS.values():
        lims = limits(tms, extent, zmin, zmax)
        entry: dict[str, Any] = {
            "title": f"{title} ({tms.id})", "tileMatrixSetId": tms.id, "dataType": "vector", "crs": tms.crs,
            "tileMatrixSetLimits": lims,
            "links": [
                link("self", JSON, f"{path}/{tms.id}", f"tileset {tms.id}"),
                link(REL_TILING_SCHEME, JSON, f"/tileMatrixSets/{tms.id}", tms.id),
                {"rel": "item", "type": MVT, "templated": True,
                 "href": href(f"{path}/{tms.id}") + "/{tileMatrix}/{tileRow}/{tileCol}"},
            ],
        }
        if tms.uri:
            entry["tileMatrixSetURI"] = tms.uri
        entries.append(entry)
    return _json({"tilesets": entries, "links": [link("self", JSON, path, "tilesets")]})


@BP.route("/tiles")
def dataset_tilesets() -> Response:
    """Tilesets of the whole dataset (every layer the caller may read in one tile)."""
    reject_unknown(request.args, accepted("/tiles"))
    layers = tile_layers()
    zmin = min((zoom_range(layer)[0] for layer in layers), default=0)
    zmax = max((zoom_range(layer)[1] for layer in layers), default=18)
    return _tilesets_list("/tiles", "all layers", layers, zmin, zmax)


@BP.route("/tiles/<tms_id>")
def dataset_tileset(tms_id: str) -> Response:
    """Dataset tileset metadata."""
    reject_unknown(request.args, accepted("/tiles/{tileMatrixSetId}"))
    tms = _tms(tms_id)
    layers = tile_layers()
    zmin = min((zoom_range(layer)[0] for layer in layers), default=0)
    zmax = max((zoom_range(layer)[1] for layer in layers), default=18)
    lims = limits(tms, _union_extent(layers), zmin, zmax)
    return _json(_tileset_doc("/tiles", "all layers", tms, lims, layers, language()))


@BP.route("/collections/<collection_id>/tiles")
def collection_tilesets(collection_id: str) -> Response:
    """Tilesets of one collection."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/tiles"))
    layer = _tile_layer(collection_id)
    zmin, zmax = zoom_range(layer)
    return _tilesets_list(f"/collections/{layer.id}/tiles", layer.config.title.get(language()), [layer], zmin, zmax)


@BP.route("/collections/<collection_id>/tiles/<tms_id>")
def collection_tileset(collection_id: str, tms_id: str) -> Response:
    """Tileset metadata of one collection."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/tiles/{tileMatrixSetId}"))
    layer = _tile_layer(collection_id)
    tms = _tms(tms_id)
    zmin, zmax = zoom_range(layer)
    lims = limits(tms, layer.extent or _union_extent([]), zmin, zmax)
    lang = language()
    return _json(_tileset_doc(f"/collections/{layer.id}/tiles", layer.config.title.get(lang), tms, lims, [layer],
                              lang))


def _tilejson(layers: list[Layer], tiles_url: str) -> dict[str, Any]:
    lang = language()
    extent = _union_extent(layers)
    attributions = []
    for layer in layers:
        for p in layer.provenance:
            if p.get("attribution") and p["attribution"] not in attributions:
                attributions.append(p["attribution"])
    zmin = min((zoom_range(layer)[0] for layer in layers), default=0)
    zmax = max((zoom_range(layer)[1] for layer in layers), default=18)
    return {
        "tilejson": "3.0.0", "name": services.current().config.metadata.title.get(lang),
        "tiles": [tiles_url], "minzoom": zmin, "maxzoom": zmax, "bounds": list(extent),
        "center": [(extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2, max(zmin, 11)],
        "attribution": "; ".join(attributions), "scheme": "xyz",
        "vector_layers": [{
            "id": layer.id, "description": layer.config.title.get(lang), "minzoom": zoom_range(layer)[0],
            "maxzoom": zoom_range(layer)[1],
            "fields": {c.name: c.json_type[0].title() for c in layer.properties if c.json_type[0] != "object"},
        } for layer in layers] + [{
            "id": label_layer_id(layer.id), "description": f"{layer.config.title.get(lang)} (labels)",
            "minzoom": zoom_range(layer)[0], "maxzoom": zoom_range(layer)[1],
            "fields": {c.name: c.json_type[0].title() for c in layer.properties if c.json_type[0] != "object"},
        } for layer in layers if has_labels(layer)],
    }


@BP.route("/tilejson.json")
def dataset_tilejson() -> Response:
    """TileJSON 3.0 of the dataset tiles."""
    reject_unknown(request.args, accepted("/tilejson.json"))
    return _json(_tilejson(tile_layers(), href("/tiles/WebMercatorQuad") + "/{z}/{y}/{x}"))


@BP.route("/collections/<collection_id>/tilejson.json")
def collection_tilejson(collection_id: str) -> Response:
    """TileJSON 3.0 of one collection."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/tilejson.json"))
    layer = _tile_layer(collection_id)
    return _json(_tilejson([layer], href(f"/collections/{layer.id}/tiles/WebMercatorQuad") + "/{z}/{y}/{x}"))


# ---- tiles ------------------------------------------------------------------------------------------


def _versions(conn: Any, layers: list[Layer]) -> dict[str, int]:
    """Current data version per layer, read in the tile's own snapshot."""
    tables = sorted({t for layer in layers for t in layer.catalog_tables})
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, data_version FROM meta.datasets WHERE table_name = ANY(%s)", (tables,))
        by_table = dict(cur.fetchall())
    return {layer.id: sum(int(by_table.get(t, 0)) for t in layer.catalog_tables) for layer in layers}


def _known_versions(layers: list[Layer]) -> dict[str, int] | None:
    """Versions from the in-memory watcher (no database round trip), or None when it cannot vouch for them."""
    watcher = services.current().versions
    current = watcher.current() if watcher is not None else None
    if current is None:
        return None
    return {layer.id: sum(int(current.get(t, 0)) for t in layer.catalog_tables) for layer in layers}


@lru_cache(maxsize=512)
def _compiled(layer: Layer, tms_id: str, cols: tuple[str, ...]) -> sql.Composed:
    """The layer's tile SQL for a tile matrix set and property set, composed once per resolved layer."""
    return sql_tile(layer, TILE_MATRIX_SETS[tms_id], cols, latest_condition(layer))


@lru_cache(maxsize=64)
def _valid_area(srid: int, tms_id: str) -> tuple[float, float, float, float]:
    """Where the storage CRS is valid, in the tile matrix set's CRS."""
    return TILE_MATRIX_SETS[tms_id].lonlat_to_crs(area_of_use(srid))


def _render(conn: Any, layer: Layer, tms: TileMatrixSet, z: int, row: int, col: int,
            cql: sql.Composable | None) -> bytes:
    """One layer's MVT bytes (empty when nothing is there)."""
    x1, y1, x2, y2 = tms.tile_bounds(z, row, col)
    margin = (x2 - x1) * 64 / 4096
    ext = _valid_area(layer.srid, tms.id)  # data is checked to lie there at load time
    q1, q2 = max(x1 - margin, ext[0]), max(y1 - margin, ext[1])
    q3, q4 = min(x2 + margin, ext[2]), min(y2 + margin, ext[3])
    if q1 > q3 or q2 > q4:
        return b""
    maxzoom = zoom_range(layer)[1]
    tol = 0.0 if z >= maxzoom else tms.cell_size(z) * tms.metres_per_unit / 16 * 0.8
    params: dict[str, Any] = {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "q1": q1, "q2": q2, "q3": q3, "q4": q4,
                              "tol": tol}
    if cql is None:
        query: sql.Composable = _compiled(layer, tms.id, tile_properties(layer, z))
    else:
        bound, values = bind_values(cql)
        query = sql_tile(layer, tms, tile_properties(layer, z), bound)
        params.update(values)
    with conn.cursor() as cur:
        cur.execute(query, params)
        row_ = cur.fetchone()
    return bytes(row_[0]) if row_ and row_[0] else b""


def _render_present(conn: Any, layer: Layer, tms: TileMatrixSet, z: int, row: int, col: int,
                    cql: sql.Composable | None) -> bytes | None:
    """A layer's MVT bytes, or None when its table was dropped since the registry resolved it (a result layer
    dismissed or expired): the registry re-reads the catalog, and the other layers of the tile still render."""
    in_transaction = not conn.autocommit
    try:
        if in_transaction:
            with conn.cursor() as cur:
                cur.execute("SAVEPOINT tile_layer")
        return _render(conn, layer, tms, z, row, col, cql)
    except psycopg2.errors.UndefinedTable:
        if in_transaction:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK TO SAVEPOINT tile_layer")
        LOGGER.warning("layer %s: table %s is gone; re-reading the catalog", layer.id, layer.config.table)
        _registry().mark_stale()
        return None


def _refreshed(layers: list[Layer]) -> list[Layer]:
    """The same layers re-resolved (they were reloaded: new extent, columns and version)."""
    registry = _registry()
    registry.refresh()
    return [registry.get(layer.id, auth.current()) for layer in layers]


def _key_and_etag(tms: TileMatrixSet, z: int, row: int, col: int, filter_key: str, layers: list[Layer],
                  versions: dict[str, int]) -> tuple[str, str]:
    """Cache key (tile, filter, every layer's data version and, with a protected layer, the caller's roles) and the
    ETag derived from it: a tile with internal data is never served from the cache to a caller with other roles."""
    parts = [tms.id, f"{z}/{row}/{col}", filter_key, ",".join(f"{layer.id}@{versions[layer.id]}" for layer in layers)]
    permission = access.key(layers)
    if permission:  # public tiles keep the key (and ETag) they always had
        parts.append(permission)
    key = "|".join(parts)
    return key, hashlib.sha1(key.encode()).hexdigest()[:24]


def _not_modified(etag: str) -> bool:
    """Whether the client already holds this tile."""
    return bool(request.if_none_match and request.if_none_match.contains(etag))


def _tile_response(layers: list[Layer], tms: TileMatrixSet, z: int, row: int, col: int,
                   cql: sql.Composable | None, filter_key: str) -> Response:
    cache = _cache()
    cfg = services.current().config.tiles
    # When the watcher vouches for the versions, a 304 or a cache hit costs no database round trip and a miss
    # renders in autocommit (what it reads is at least as new as the versions in its key); otherwise versions
    # and tiles come from one repeatable-read snapshot.
    known = _known_versions(layers)
    with contextlib.ExitStack() as stack:
        if known is None:
            stack.enter_context(data_slot())
        conn = None if known is not None else stack.enter_context(services.current().db.connection(snapshot=True))
        versions = known if known is not None else _versions(conn, layers)
        if any(versions[layer.id] != layer.data_version for layer in layers):
            layers = _refreshed(layers)
        key, etag = _key_and_etag(tms, z, row, col, filter_key, layers, versions)
        if _not_modified(etag):
            return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": cfg.cache_control})
        data = cache.get(key)
        if data is None:
            if conn is None:
                stack.enter_context(data_slot())
                conn = stack.enter_context(services.current().db.connection())
            parts = [_render_present(conn, layer, tms, z, row, col, cql) for layer in layers]
            vanished = [layer.id for layer, part in zip(layers, parts, strict=True) if part is None]
            if vanished and len(layers) == 1:
                raise NotFound(f"collection {vanished[0]!r} no longer exists; see /collections")
            data = b"".join(part for part in parts if part)
            if not vanished:  # a tile missing a vanished layer is right now, but not worth keeping
                cache.put(key, data)
    headers = {"ETag": f'"{etag}"', "Cache-Control": cfg.cache_control}
    if data and "gzip" in request.headers.get("Accept-Encoding", ""):
        gz_key = key + "|gz"
        packed = cache.get(gz_key)
        if packed is None:
            packed = gzip.compress(data, compresslevel=5)
            cache.put(gz_key, packed)
        headers["Content-Encoding"] = "gzip"
        data = packed
    return Response(data, status=200, mimetype=MVT, headers=headers)


def _check_tile(tms: TileMatrixSet, z: int, row: int, col: int) -> None:
    if z > tms.max_zoom:
        raise NotFound(f"tile matrix {z} does not exist in {tms.id} (0-{tms.max_zoom})")
    cols, rows = tms.matrix_size(z)
    if row >= rows or col >= cols:
        raise NotFound(f"tile {z}/{row}/{col} is outside the {tms.id} matrix ({rows} rows x {cols} columns)")


@BP.route("/collections/<collection_id>/tiles/<tms_id>/<int:z>/<int:row>/<int:col>")
def collection_tile(collection_id: str, tms_id: str, z: int, row: int, col: int) -> Response:
    """One vector tile of one collection; outside the tileset limits 404, empty tile 200 with no body."""
    reject_unknown(request.args,
                   accepted("/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"))
    layer = _tile_layer(collection_id)
    tms = _tms(tms_id)
    _check_tile(tms, z, row, col)
    zmin, zmax = zoom_range(layer)
    lims = limits(tms, layer.extent or _union_extent([]), zmin, zmax)
    if not _within(lims, z, row, col):
        raise NotFound(f"tile {z}/{row}/{col} is outside the tileMatrixSetLimits of {layer.id} in {tms.id}")
    cql = _with_time(layer, parse_filter(layer, request.args), request.args.get("datetime"))
    filter_key = json.dumps([request.args.get(k) for k in ("filter", "filter-lang", "filter-crs", "datetime")])
    return _tile_response([layer], tms, z, row, col, cql, filter_key)


def _with_time(layer: Layer, cql: sql.Composable | None, when: str | None) -> sql.Composable | None:
    """The filter and the `datetime` of a time-enabled layer (as for items). Without datetime, a layer whose time
    column is a date (monthly snapshots such as population) shows its latest time step, others every feature."""
    tcond = datetime_condition(layer, when) if when is not None else latest_condition(layer)
    if tcond is None or cql is None:
        return tcond if cql is None else cql
    return sql.SQL("({}) AND ({})").format(tcond, cql)


@BP.route("/tiles/<tms_id>/<int:z>/<int:row>/<int:col>")
def dataset_tile(tms_id: str, z: int, row: int, col: int) -> Response:
    """One vector tile with every layer the caller may read visible at that zoom (one request per tile)."""
    reject_unknown(request.args, accepted("/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"))
    tms = _tms(tms_id)
    _check_tile(tms, z, row, col)
    layers = tile_layers()
    if "collections" in request.args:
        wanted = [c.strip() for c in request.args["collections"].split(",") if c.strip()]
        known = {layer.id for layer in layers}
        unknown = [c for c in wanted if c not in known]
        for c in unknown:  # a protected layer: 401 for an anonymous caller; otherwise as unknown as a typo
            with contextlib.suppress(NotFound):
                access.layer(c)
        if unknown:
            raise InvalidParameterValue(f"collections: unknown {', '.join(unknown)}; available: {', '.join(known)}")
        layers = [layer for layer in layers if layer.id in wanted]
    zmin = min((zoom_range(layer)[0] for layer in layers), default=0)
    zmax = max((zoom_range(layer)[1] for layer in layers), default=18)
    if not _within(limits(tms, _union_extent(layers), zmin, zmax), z, row, col):
        raise NotFound(f"tile {z}/{row}/{col} is outside the dataset's tileMatrixSetLimits in {tms.id}")
    visible = [layer for layer in layers if zoom_range(layer)[0] <= z <= zoom_range(layer)[1]]
    return _tile_response(visible, tms, z, row, col, None, "")


@BP.route("/tiles/<layer_id>/<int:z>/<int:x>/<int:y>.mvt")
def xyz_tile(layer_id: str, z: int, x: int, y: int) -> Response:
    """Plain XYZ alias in WebMercatorQuad for clients that want one (z/x/y order)."""
    reject_unknown(request.args, accepted("/tiles/{collectionId}/{tileMatrix}/{x}/{y}.mvt"))
    return collection_tile(layer_id, "WebMercatorQuad", z, y, x)
