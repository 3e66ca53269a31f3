"""OGC API - Coverages (Part 1 draft) and map tiles of the air-quality surfaces (meta.surfaces, COGs).

`/collections/{id}/coverage` (GeoTIFF or grade-coloured PNG; `subset`, `bbox`, `datetime`), its `domainset` and
`rangetype`, and `/collections/{id}/map/tiles/{tms}/{z}/{row}/{col}` (PNG, cached like the vector tiles).
`/collections/{id}` of a surface collection is answered by an app hook, so the features views stay as they are;
`/collections` lists the surfaces after the layers (`listed`) as coverage collections: `dataType` "coverage", no
`itemType` and no items link (OGC API - Common Part 2, Coverages), so feature clients skip them by `itemType`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import numpy as np
from flask import Blueprint, Flask, Response, current_app, render_template, request
from psycopg2 import sql
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from core import crs as crs_mod
from core.air_grades import GRADES, grade_index, legend
from core.errors import InvalidParameterValue, NotFound
from core.tms import TILE_MATRIX_SETS
from layers.query import parse_bbox, reject_unknown
from server import services
from server.negotiate import HTML, JSON, href, language, link, response_format
from server.params_spec import accepted
from server.surface_catalog import SQL as CATALOG_SQL
from server.surface_catalog import SurfaceCatalog, SurfaceCollection, SurfaceRow
from server.surface_raster import GEOTIFF, PNG, Raster, RasterCache, geotiff, png, subset, tile

BP = Blueprint("coverages", __name__)
EXTENSION = "sejong-surfaces"
POLLUTANTS = {"pm10": ("미세먼지 (PM10)", "PM10"), "pm25": ("초미세먼지 (PM2.5)", "PM2.5")}
UOM = "µg/m³"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
_SUBSET = re.compile(r"\s*([A-Za-z]+)\(([^()]*)\)\s*(?:,|$)")
EMPTY_PNG_KEY = "surface|empty"


class Surfaces:
    """Per app: the surface catalog and the rasters read from it."""

    def __init__(self, catalog: SurfaceCatalog) -> None:
        self.catalog = catalog
        self.rasters = RasterCache()

    def raster(self, row: SurfaceRow) -> Raster:
        """A surface's raster; a file gone since the catalog was read (a rebuild) re-reads the catalog once."""
        try:
            return self.rasters.get(row.path)
        except (RasterioIOError, OSError):
            found = self.catalog.refresh().get(row.collection_id)
            fresh = next((r for r in found.surfaces if r.valid_at == row.valid_at), None) if found else None
            if fresh is None:
                raise NotFound(f"the {row.collection_id} surface of {row.label} was rebuilt away; retry") from None
            return self.rasters.get(fresh.path)


def install(app: Flask) -> None:
    """Register the routes and the catalog of surfaces (read through the app's read pool)."""

    def query() -> list[tuple[Any, ...]]:
        with services.of(app).db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('meta.surfaces') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute(CATALOG_SQL)
            return list(cur.fetchall())

    app.extensions[EXTENSION] = Surfaces(SurfaceCatalog(query))
    app.register_blueprint(BP)


def _surfaces() -> Surfaces:
    found: Surfaces = current_app.extensions[EXTENSION]
    return found


def _collection(collection_id: str) -> SurfaceCollection:
    found = _surfaces().catalog.get(collection_id)
    if found is None:
        raise NotFound(f"no coverage collection {collection_id!r}; see /collections")
    return found


def _region_title(region: str, lang: str) -> str:
    cfg = services.current().config.surfaces.regions.get(region)
    return (cfg.title.ko if lang == "ko" else cfg.title.en) if cfg else region


def collection_doc(coll: SurfaceCollection, lang: str) -> dict[str, Any]:
    """The collection JSON of a surface series: extents, CRS, how it was made and its cross-validated errors."""
    newest = coll.surfaces[-1]
    cfg = services.current().config.surfaces
    ko, en = POLLUTANTS[coll.pollutant]
    where = _region_title(coll.region, lang)
    pooled = newest.validation.get("pooled", {})
    method = newest.validation.get("default", newest.method)
    errors = ", ".join(f"{m} RMSE {v['rmse']} / MAE {v['mae']}" for m, v in pooled.items())
    bbox = cfg.regions[coll.region].bbox if coll.region in cfg.regions else None
    base = f"/collections/{coll.id}"
    step_ko, step_en = ("시간별", "Hourly") if coll.hourly else ("일평균", "Daily")
    return {
        "id": coll.id,
        "title": f"{where} {ko} 추정 표면" if lang == "ko" else f"{en} surface, {where}",
        "description": (f"에어코리아 측정소 {step_ko} {ko}를 {cfg.cell_m:.0f} m 격자(EPSG:5186)에 {method}(으)로 "
                        f"보간한 추정값입니다. 측정소 하나씩 빼고 교차검증한 오차({UOM}): {errors}. 모든 측정소에서 "
                        f"{cfg.max_distance_m:.0f} m 넘게 떨어진 칸은 값이 없습니다(nodata). 측정값이 아닙니다."
                        if lang == "ko" else
                        f"{step_en} {en} interpolated from the AirKorea station readings onto {cfg.cell_m:.0f} m cells "
                        f"(EPSG:5186) by {method}; leave-one-station-out errors ({UOM}): {errors}. Cells farther "
                        f"than {cfg.max_distance_m:.0f} m from every station are nodata. An estimate, not a "
                        f"measurement."),
        "dataType": "coverage",
        "extent": {
            "spatial": {"bbox": [list(bbox)] if bbox else [], "crs": crs_mod.CRS84},
            "temporal": {"interval": [[coll.surfaces[0].valid_at.isoformat(), newest.valid_at.isoformat()]],
                         "trs": TRS, "values": [r.label for r in coll.surfaces]},
        },
        "crs": [crs_mod.epsg_uri(crs_mod.STORAGE_SRID)],
        "storageCrs": crs_mod.epsg_uri(crs_mod.STORAGE_SRID),
        "surface": {"pollutant": coll.pollutant, "unit": UOM, "cell_m": cfg.cell_m,
                    "max_distance_m": cfg.max_distance_m, "method": method, "stations": newest.stations,
                    "readings_version": newest.readings_version,
                    "validation": {"scheme": "leave-one-station-out", "pooled": pooled,
                                   "days": len(coll.surfaces)},
                    "legend": legend(coll.pollutant)},
        "links": [
            link("self", JSON, base, "this collection"),
            link("http://www.opengis.net/def/rel/ogc/1.0/coverage", GEOTIFF, f"{base}/coverage", "GeoTIFF", f="tif"),
            link("http://www.opengis.net/def/rel/ogc/1.0/coverage", PNG, f"{base}/coverage", "grade PNG", f="png"),
            link("http://www.opengis.net/def/rel/ogc/1.0/coverage-domainset", JSON, f"{base}/coverage/domainset"),
            link("http://www.opengis.net/def/rel/ogc/1.0/coverage-rangetype", JSON, f"{base}/coverage/rangetype"),
            link("http://www.opengis.net/def/rel/ogc/1.0/tilesets-map", JSON, f"{base}/map/tiles"),
        ],
    }


def listed(lang: str) -> list[dict[str, Any]]:
    """The collection docs of every surface series with at least one day (for /collections)."""
    surfaces: Surfaces | None = current_app.extensions.get(EXTENSION)
    if surfaces is None:
        return []
    found = surfaces.catalog.collections()
    return [collection_doc(found[cid], lang) for cid in sorted(found) if found[cid].surfaces]


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False, default=str), status=status, mimetype=JSON)


@BP.before_app_request
def _surface_collection() -> Response | None:
    """/collections/{id} of a surface collection (the features view knows only layers): JSON, or ?f=html a page
    (title, how it was made, cross-validation table per method, time steps, links)."""
    if request.endpoint != "features.collection" or not request.view_args:
        return None
    coll = _surfaces().catalog.get(str(request.view_args.get("collection_id")))
    if coll is None or not coll.surfaces:
        return None
    reject_unknown(request.args, accepted("/collections/{collectionId}"))
    lang = language()
    doc = collection_doc(coll, lang)
    if response_format([JSON, HTML]) == HTML:
        return Response(render_template("surface_collection.html", doc=doc, lang=lang), mimetype=HTML)
    return _json(doc)


def _subset_bounds(raw: list[str]) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """`subset=E(a:b),N(c:d),time("…")` (repeatable): an EPSG:5186 box and a time step."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    when = None
    for value in raw:
        pos = 0
        while pos < len(value):
            m = _SUBSET.match(value, pos)
            if not m:
                raise InvalidParameterValue(f"subset {value!r}: expected axis(low:high), e.g. E(200000:205000)")
            axis, arg = m.group(1), m.group(2).strip()
            pos = m.end()
            if axis == "time":
                when = arg.strip('"')
                continue
            if axis not in ("E", "N"):
                raise InvalidParameterValue(f"subset axis {axis!r} is not one of E, N, time")
            parts = arg.split(":")
            try:
                a, b = (float(parts[0]), float(parts[-1]))
            except ValueError:
                raise InvalidParameterValue(f"subset {axis}({arg}): the bounds must be numbers") from None
            lo[axis], hi[axis] = min(a, b), max(a, b)
    if not lo:
        return None, when
    inf = float("inf")
    return (lo.get("E", -inf), lo.get("N", -inf), hi.get("E", inf), hi.get("N", inf)), when


def _bbox_5186() -> tuple[float, float, float, float] | None:
    raw = request.args.get("bbox")
    if raw is None:
        return None
    bbox = parse_bbox(raw)
    bcrs = crs_mod.parse_crs(request.args.get("bbox-crs", crs_mod.CRS84), crs_mod.STORAGE_SRID, "bbox-crs")
    if bcrs.srid == crs_mod.STORAGE_SRID:
        a, b, c, d = bbox
        return (b, a, d, c) if bcrs.northing_first else bbox
    lon0, lat0, lon1, lat1 = crs_mod.bbox_to_lonlat(bbox, bcrs)
    t = Transformer.from_crs(4326, crs_mod.STORAGE_SRID, always_xy=True)
    x0, y0, x1, y1 = t.transform_bounds(lon0, lat0, lon1, lat1, densify_pts=21)
    return (x0, y0, x1, y1)


def _format(offered: dict[str, str]) -> str:
    f = request.args.get("f")
    if f is not None:
        if f not in offered:
            raise InvalidParameterValue(f"f={f!r} is not offered; use one of {', '.join(offered)}")
        return offered[f]
    best = request.accept_mimetypes.best_match([offered[k] for k in offered])
    return best or next(iter(offered.values()))


@BP.route("/collections/<collection_id>/coverage")
def coverage(collection_id: str) -> Response:
    """The coverage of one day: GeoTIFF (values) or PNG (grade colours), optionally a subset."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/coverage"))
    coll = _collection(collection_id)
    box, when = _subset_bounds(request.args.getlist("subset"))
    bbox = _bbox_5186()
    if bbox is not None:
        box = bbox if box is None else (max(box[0], bbox[0]), max(box[1], bbox[1]), min(box[2], bbox[2]),
                                        min(box[3], bbox[3]))
    if when is not None and request.args.get("datetime"):
        raise InvalidParameterValue("give the time step once: subset=time(…) or datetime=…")
    row = coll.at(when or request.args.get("datetime"))
    media = _format({"tif": GEOTIFF, "png": PNG})
    raster = _surfaces().raster(row)
    values, transform = subset(raster, box)
    headers = {"Content-Crs": f"<{crs_mod.epsg_uri(crs_mod.STORAGE_SRID)}>", "X-Surface-Date": row.label,
               "Cache-Control": services.current().config.tiles.cache_control}
    if media == PNG:
        return Response(png(values, coll.pollutant), mimetype=PNG, headers=headers)
    tags = {"collection": coll.id, "pollutant": coll.pollutant, "unit": UOM, "valid_at": row.valid_at.isoformat(),
            "method": row.method, "readings_version": str(row.readings_version),
            "validation": json.dumps(row.validation.get("methods", {}))}
    body = geotiff(values, transform, raster.crs, tags)
    headers["Content-Disposition"] = f'inline; filename="{coll.id}_{row.label.replace(':', '')}.tif"'
    return Response(body, mimetype="image/tiff", content_type=GEOTIFF, headers=headers)


@BP.route("/collections/<collection_id>/coverage/domainset")
def domainset(collection_id: str) -> Response:
    """The grid (EPSG:5186 E/N axes, cell size) and the time steps."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/coverage/domainset"))
    coll = _collection(collection_id)
    raster = _surfaces().raster(coll.surfaces[-1])
    minx, miny, maxx, maxy = raster.bounds
    rows, cols = raster.values.shape
    cell = raster.transform.a
    srs = crs_mod.epsg_uri(crs_mod.STORAGE_SRID)
    return _json({"type": "DomainSet", "generalGrid": {
        "type": "GeneralGridCoverage", "srsName": srs, "axisLabels": ["E", "N", "time"],
        "axis": [
            {"type": "RegularAxis", "axisLabel": "E", "lowerBound": minx, "upperBound": maxx, "uomLabel": "m",
             "resolution": cell},
            {"type": "RegularAxis", "axisLabel": "N", "lowerBound": miny, "upperBound": maxy, "uomLabel": "m",
             "resolution": cell},
            {"type": "IrregularAxis", "axisLabel": "time", "uomLabel": "h" if coll.hourly else "d",
             "coordinate": [r.label for r in coll.surfaces]},
        ],
        "gridLimits": {"type": "GridLimits", "srsName": "http://www.opengis.net/def/crs/OGC/0/Index2D",
                       "axisLabels": ["i", "j"],
                       "axis": [{"type": "IndexAxis", "axisLabel": "i", "lowerBound": 0, "upperBound": cols - 1},
                                {"type": "IndexAxis", "axisLabel": "j", "lowerBound": 0, "upperBound": rows - 1}]},
    }})


@BP.route("/collections/<collection_id>/coverage/rangetype")
def rangetype(collection_id: str) -> Response:
    """The one field: the estimated daily mean concentration, with its nodata value and grade bands."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/coverage/rangetype"))
    coll = _collection(collection_id)
    ko, en = POLLUTANTS[coll.pollutant]
    return _json({"type": "DataRecord", "field": [{
        "type": "Quantity", "id": coll.pollutant, "name": f"{ko} / {en}",
        "description": "estimated daily mean concentration (interpolated, not measured)",
        "encodingInfo": {"dataType": "http://www.opengis.net/def/dataType/OGC/0/float32"},
        "uom": {"type": "UnitReference", "code": "ug/m3"},
        "nilValues": [{"value": -9999, "reason": "farther than surfaces.max_distance_m from every station"}],
        "grades": legend(coll.pollutant)}]})


@BP.route("/collections/<collection_id>/map/tiles")
def map_tilesets(collection_id: str) -> Response:
    """The map tilesets of a surface collection (PNG in every tile matrix set)."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/map/tiles"))
    coll = _collection(collection_id)
    sets = []
    for tms_id, tms in TILE_MATRIX_SETS.items():
        template = href(f"/collections/{coll.id}/map/tiles/{tms_id}") + "/{tileMatrix}/{tileRow}/{tileCol}"
        sets.append({"title": f"{coll.id} {tms_id}", "dataType": "map", "crs": tms.crs,
                     "tileMatrixSetURI": tms.uri,
                     "links": [link("http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", JSON,
                                    f"/tileMatrixSets/{tms_id}"),
                               {"rel": "item", "type": PNG, "href": template, "templated": True}]})
    return _json({"links": [link("self", JSON, f"/collections/{coll.id}/map/tiles")], "tilesets": sets})


@BP.route("/collections/<collection_id>/map/tiles/<tms_id>/<int:z>/<int:row>/<int:col>")
def map_tile(collection_id: str, tms_id: str, z: int, row: int, col: int) -> Response:
    """A grade-coloured PNG tile of one day's surface (transparent where nodata), cached by surface version."""
    reject_unknown(request.args, accepted(
        "/collections/{collectionId}/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"))
    tms = TILE_MATRIX_SETS.get(tms_id)
    if tms is None:
        raise NotFound(f"unknown tile matrix set {tms_id!r}; see /tileMatrixSets")
    if z > tms.max_zoom or not (0 <= col < tms.matrix_size(z)[0] and 0 <= row < tms.matrix_size(z)[1]):
        raise NotFound(f"tile {z}/{row}/{col} is outside {tms_id}")
    coll = _collection(collection_id)
    surface = coll.at(request.args.get("datetime"))
    key = f"surface|{coll.id}|{surface.surface_id}|{tms_id}|{z}/{row}/{col}"
    etag = hashlib.sha1(key.encode()).hexdigest()[:24]
    headers = {"ETag": f'"{etag}"', "Cache-Control": services.current().config.tiles.cache_control,
               "X-Surface-Date": surface.label}
    if request.if_none_match and request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    cache = services.current().tile_cache
    data = cache.get(key)
    if data is None:
        values = tile(_surfaces().raster(surface), tms.tile_bounds(z, row, col), CRS.from_epsg(tms.srid),
                      tms.tile_size)
        data = png(values, coll.pollutant) if values is not None else _empty_png(tms.tile_size)
        cache.put(key, data)
    return Response(data, mimetype=PNG, headers=headers)


_POINT = re.compile(r"^\s*POINT\s*\(\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)\s*\)\s*$", re.I)


@BP.route("/collections/<collection_id>/position")
def position(collection_id: str) -> Response:
    """The estimate at a lon/lat point on a day, labelled as an estimate, beside the nearest station's reading."""
    reject_unknown(request.args, accepted("/collections/{collectionId}/position"))
    coll = _collection(collection_id)
    m = _POINT.match(request.args.get("coords", ""))
    if not m:
        raise InvalidParameterValue("coords must be a WKT point in lon/lat, e.g. POINT(126.978 37.566)")
    lon, lat = float(m.group(1)), float(m.group(2))
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameterValue(f"coords ({lon}, {lat}) are not lon/lat degrees")
    row = coll.at(request.args.get("datetime"))
    raster = _surfaces().raster(row)
    x, y = Transformer.from_crs(4326, crs_mod.STORAGE_SRID, always_xy=True).transform(lon, lat)
    col = math.floor((x - raster.transform.c) / raster.transform.a)
    r = math.floor((y - raster.transform.f) / raster.transform.e)
    inside = 0 <= r < raster.values.shape[0] and 0 <= col < raster.values.shape[1]
    value = float(raster.values[r, col]) if inside else float("nan")
    estimate = round(value, 1) if math.isfinite(value) else None
    pooled = row.validation.get("pooled", {}).get(row.method, {})
    return _json({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": {
        "collection": coll.id, "pollutant": coll.pollutant, "date": row.label, "unit": UOM,
        "estimate": estimate, "estimated": True,
        "grade": None if estimate is None else GRADES[int(grade_index(np.array([estimate]), coll.pollutant)[0])][0],
        "reason": None if estimate is not None else ("outside the surface" if not inside else
                                                     "farther than the configured distance from every station"),
        "method": row.method, "cv_rmse": pooled.get("rmse"), "cv_mae": pooled.get("mae"),
        "nearest_station": _nearest_station(coll, row, x, y)}})


def _nearest_station(coll: SurfaceCollection, row: SurfaceRow, x: float, y: float) -> dict[str, Any] | None:
    """The nearest station of the region with a valid reading that day: name, distance and measured value."""
    region = services.current().config.surfaces.regions.get(coll.region)
    if region is None:
        return None
    q = sql.SQL("SELECT s.name, ST_Distance(s.geom, p.g), r.{v}::float8 FROM public.air_quality_stations s "
                "JOIN public.air_quality_readings r ON r.station_name = s.name, "
                "(SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 5186) AS g) p "
                "WHERE s.sido = ANY(%(sido)s) AND r.period = %(period)s AND r.measured_at = %(at)s "
                "AND r.{v} IS NOT NULL AND r.{flag} IS NULL ORDER BY s.geom <-> p.g LIMIT 1").format(
        v=sql.Identifier(coll.pollutant), flag=sql.Identifier(f"{coll.pollutant}_flag"))
    with services.current().db.connection() as conn, conn.cursor() as cur:
        cur.execute(q, {"x": x, "y": y, "sido": region.sido, "at": row.valid_at, "period": row.period})
        found = cur.fetchone()
    if found is None:
        return None
    return {"name": found[0], "distance_m": round(float(found[1])), "value": round(float(found[2]), 1),
            "measured": True,
            "grade": GRADES[int(grade_index(np.array([found[2]]), coll.pollutant)[0])][0]}


def _empty_png(size: int) -> bytes:
    cache = services.current().tile_cache
    key = f"{EMPTY_PNG_KEY}|{size}"
    data = cache.get(key)
    if data is None:
        data = png(np.full((size, size), np.nan, dtype=np.float32), "pm10")
        cache.put(key, data)
    return data
