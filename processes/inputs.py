"""Resolution of analysis inputs: layers (+CQL2 filter), inline GeoJSON points, demand units and their samples."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from psycopg2 import sql
from pyproj import Transformer

from core.config import Bilingual, LayerConfig, ProcessesConfig
from core.errors import InvalidParameterValue, NotFound
from layers.model import Layer, resolve
from layers.query import datetime_condition, latest_condition, parse_filter
from processes.errors import InputError

TO_5186 = Transformer.from_crs(4326, 5186, always_xy=True)
TO_4326 = Transformer.from_crs(5186, 4326, always_xy=True)
NAME_COLUMNS = ("name", "adm_nm", "title")
LAYER_TTL_S = 30.0
_RESOLVED: dict[str, tuple[float, Layer]] = {}
_FILTERS: dict[tuple[str, int, str], sql.Composable] = {}
FArray = npt.NDArray[np.float64]
SPREADS = ("grid", "centroid")  # how polygon demand becomes points: cell_m grid samples, or one point per unit


@dataclass
class Points:
    """Facilities: ids, names and EPSG:5186 coordinates."""

    ids: list[str]
    names: list[str | None]
    xy: FArray
    source: str


@dataclass
class Demand:
    """Demand units (geometries in EPSG:5186) and the weighted sample points that represent them."""

    ids: list[str]
    names: list[str | None]
    weight: FArray
    geoms: list[shapely.Geometry]
    kind: str  # polygon | point | cell
    sample_xy: FArray
    sample_unit: npt.NDArray[np.int64]
    sample_weight: FArray
    source: str
    weight_property: str | None = None
    notes: list[str] = field(default_factory=list)


def layer(services: dict[str, Any], layer_id: Any, cfg: ProcessesConfig, what: str) -> Layer:
    """A published layer the caller may read, or an analysis layer from the processes config; 400 when unknown.

    The caller is services["caller"], captured when the job was submitted (absent: anonymous); a protected layer
    is 401 for an anonymous caller and as unknown as a typo for one without its role.
    """
    if not isinstance(layer_id, str) or not layer_id:
        raise InputError(f"{what}.layer must be a layer id (a collection id such as 'facilities')")
    registry, caller = services["registry"], services.get("caller")
    try:
        return registry.get(layer_id, caller)  # type: ignore[no-any-return]
    except NotFound:
        declared = registry.config.layers.get(layer_id)
        if declared is not None and not declared.public:  # not for this caller, not even as an analysis layer
            known = sorted({lyr.id for lyr in registry.visible(caller)} | set(cfg.analysis_layers))
            raise InputError(f"{what}.layer: unknown layer {layer_id!r}; use one of: {', '.join(known)}") from None
    extra = cfg.analysis_layers.get(layer_id)
    cached = _RESOLVED.get(layer_id)
    if extra is not None and cached is not None and time.monotonic() - cached[0] < LAYER_TTL_S:
        return cached[1]
    if extra is not None:
        lc = LayerConfig(title=Bilingual(ko=extra.title or layer_id, en=extra.title or layer_id),
                         description=Bilingual(ko="", en=""), table=extra.table, geometry=extra.geometry, id=extra.id,
                         access=[], tiles=False)
        with services["read_db"].connection() as conn:
            found = resolve(conn, layer_id, lc)
        if found is not None:
            _RESOLVED[layer_id] = (time.monotonic(), found)
            return found
    known = sorted({lyr.id for lyr in registry.visible(caller)} | set(cfg.analysis_layers))
    raise InputError(f"{what}.layer: unknown layer {layer_id!r}; use one of: {', '.join(known)}")


def where(lyr: Layer, spec: dict[str, Any], what: str) -> sql.Composable:
    """The layer's CQL2 filter as SQL (TRUE when none)."""
    text = spec.get("filter")
    if text is None:
        return sql.SQL("TRUE")
    if not isinstance(text, str | dict):
        raise InputError(f"{what}.filter must be CQL2 text (e.g. \"kind = 'library'\") or CQL2 JSON")
    key = (lyr.id, lyr.data_version, json.dumps(text, sort_keys=True, ensure_ascii=False))
    if key in _FILTERS:
        return _FILTERS[key]
    try:
        cond = parse_filter(lyr, {"filter": text, "filter-lang": "cql2-json" if isinstance(text, dict) else None})
    except InvalidParameterValue as err:
        props = ", ".join(c.name for c in lyr.properties)
        raise InputError(f"{what}.{err.description}; properties of {lyr.id}: {props}") from None
    out = cond if cond is not None else sql.SQL("TRUE")
    if len(_FILTERS) > 256:
        _FILTERS.clear()
    _FILTERS[key] = out
    return out


def _name_col(lyr: Layer) -> sql.Composable:
    col = next((c for c in NAME_COLUMNS if lyr.column(c) is not None), None)
    return sql.SQL("{}::text").format(sql.Identifier(col)) if col else sql.SQL("NULL::text")


def _geom5186(lyr: Layer) -> sql.Composable:
    if lyr.srid == 5186:
        return lyr.geom
    return sql.SQL("ST_Transform({}, 5186)").format(lyr.geom)


def facilities_from_layer(services: dict[str, Any], spec: dict[str, Any], cfg: ProcessesConfig) -> Points:
    """Facility points of a layer (polygons become a point on their surface)."""
    lyr = layer(services, spec.get("layer"), cfg, "facilities")
    cond = where(lyr, spec, "facilities")
    q = sql.SQL("SELECT id::text, name, ST_X(p), ST_Y(p) FROM (SELECT {id} AS id, {name_src} AS name, "
                "ST_PointOnSurface({g}) AS p FROM {t} WHERE {graw} IS NOT NULL AND ({cond})) s ORDER BY 1 LIMIT %s"
                ).format(id=sql.Identifier(lyr.config.id), name_src=_name_col(lyr), g=_geom5186(lyr), t=lyr.table,
                         graw=lyr.geom, cond=cond)
    with services["read_db"].connection() as conn, conn.cursor() as cur:
        cur.execute(q, (cfg.max_facilities + 1,))
        rows = cur.fetchall()
    if not rows:
        raise InputError(f"facilities: no features in {lyr.id} match the filter; loosen it")
    if len(rows) > cfg.max_facilities:
        raise InputError(f"facilities: more than {cfg.max_facilities} features; narrow them with a filter")
    return Points([r[0] for r in rows], [r[1] for r in rows], np.array([[r[2], r[3]] for r in rows], dtype=float),
                  lyr.id)


def _features(obj: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(obj, dict) or "type" not in obj:
        raise InputError(f"{what}: give a layer ({{\"layer\": \"id\"}}) or GeoJSON (FeatureCollection of Points)")
    if obj["type"] == "FeatureCollection":
        feats = obj.get("features")
        if not isinstance(feats, list):
            raise InputError(f"{what}: a FeatureCollection needs a 'features' array")
        return feats
    if obj["type"] == "Feature":
        return [obj]
    return [{"type": "Feature", "geometry": obj, "properties": {}}]


def geojson_points(obj: Any, what: str, limit: int) -> tuple[list[str], list[dict[str, Any]], FArray]:
    """Ids, properties and EPSG:5186 coordinates of inline GeoJSON points (lon/lat, CRS84)."""
    feats = _features(obj, what)
    ids: list[str] = []
    props: list[dict[str, Any]] = []
    lonlat: list[tuple[float, float]] = []
    for i, f in enumerate(feats):
        try:
            geom = shapely.geometry.shape(f["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as err:
            raise InputError(f"{what}: feature {i} has no valid GeoJSON geometry ({err})") from None
        pts = [geom] if geom.geom_type == "Point" else list(getattr(geom, "geoms", [])) \
            if geom.geom_type == "MultiPoint" else None
        if pts is None:
            raise InputError(f"{what}: feature {i} is a {geom.geom_type}; only Point/MultiPoint are accepted inline")
        for j, p in enumerate(pts):
            if p.is_empty or not (-180 <= p.x <= 180 and -90 <= p.y <= 90) or not math.isfinite(p.x + p.y):
                raise InputError(f"{what}: feature {i} has coordinates outside lon/lat (CRS84: lon -180..180, "
                                 f"lat -90..90)")
            fid = f.get("id", i) if isinstance(f, dict) else i
            ids.append(f"{fid}" if len(pts) == 1 else f"{fid}.{j}")
            props.append(dict(f.get("properties") or {}))
            lonlat.append((p.x, p.y))
        if len(lonlat) > limit:
            raise InputError(f"{what}: more than {limit} points; send fewer or use a layer")
    if not lonlat:
        raise InputError(f"{what}: no points given")
    arr = np.array(lonlat, dtype=float)
    x, y = TO_5186.transform(arr[:, 0], arr[:, 1])
    return ids, props, np.column_stack([x, y])


def facilities(services: dict[str, Any], spec: Any, cfg: ProcessesConfig) -> Points:
    """Facilities from a layer (+filter) or inline GeoJSON points."""
    if isinstance(spec, dict) and "layer" in spec:
        unknown = set(spec) - {"layer", "filter"}
        if unknown:
            raise InputError(f"facilities: unknown member(s) {', '.join(sorted(unknown))}; use layer and filter")
        return facilities_from_layer(services, spec, cfg)
    ids, props, xy = geojson_points(spec, "facilities", cfg.max_facilities)
    return Points(ids, [p.get("name") for p in props], xy, "inline")


def _samples_sql(cell_m: float) -> sql.Composable:
    """Centroids of cell_m grid cells inside each unit (a point on the surface when none falls inside)."""
    return sql.SQL(
        "SELECT u.k, ST_X(c), ST_Y(c) FROM u CROSS JOIN LATERAL ("
        "  SELECT ST_Centroid(gr.geom) AS c FROM ST_SquareGrid({cell}, u.g) gr WHERE ST_Intersects(u.g, "
        "  ST_Centroid(gr.geom)) UNION ALL SELECT ST_PointOnSurface(u.g) WHERE NOT EXISTS (SELECT 1 FROM "
        "  ST_SquareGrid({cell}, u.g) gr2 WHERE ST_Intersects(u.g, ST_Centroid(gr2.geom)))) s ORDER BY 1"
    ).format(cell=sql.Literal(float(cell_m)))


def _cell(spec: dict[str, Any], default: float, what: str) -> float:
    cell = spec.get("cell_m", default)
    if isinstance(cell, bool) or not isinstance(cell, int | float) or not 20 <= cell <= 5000:
        raise InputError(f"{what}.cell_m must be a number of metres between 20 and 5000, got {cell!r}")
    return float(cell)


def _period(lyr: Layer, spec: dict[str, Any]) -> sql.Composable | None:
    """demand.month of a time-enabled layer (YYYY-MM, a date or an interval, as the datetime parameter); without it
    a layer whose time column is a date (population) gives its latest month, other layers every row."""
    month = spec.get("month")
    if month is None:
        return latest_condition(lyr)
    if not lyr.config.datetime:
        raise InputError(f"demand.month: layer {lyr.id} has no time column; leave month out")
    if not isinstance(month, str):
        raise InputError("demand.month must be a month like \"2023-08\"")
    try:
        return datetime_condition(lyr, month)
    except InvalidParameterValue as err:
        raise InputError(f"demand.month: {err.description}") from None


def demand_from_layer(services: dict[str, Any], spec: dict[str, Any], cfg: ProcessesConfig) -> Demand:
    """Demand units of a layer with an optional weight property (default: its `population` column when it has one);
    polygons are sampled on a grid (spread "grid") or represented by one point on their surface ("centroid")."""
    unknown = set(spec) - {"layer", "filter", "weight", "cell_m", "month", "spread"}
    if unknown:
        raise InputError(f"demand: unknown member(s) {', '.join(sorted(unknown))}; use layer, weight, filter, cell_m, "
                         "month, spread")
    lyr = layer(services, spec.get("layer"), cfg, "demand")
    spread = spec.get("spread", "grid")
    if spread not in SPREADS:
        raise InputError(f"demand.spread: {spread!r}; use one of: {', '.join(SPREADS)}")
    cond = where(lyr, spec, "demand")
    period = _period(lyr, spec)
    if period is not None:
        cond = sql.SQL("({}) AND ({})").format(cond, period)
    wprop = spec.get("weight", "population" if lyr.column("population") is not None else None)
    if wprop is not None:
        col = lyr.column(wprop) if isinstance(wprop, str) else None
        if col is None or col.json_type[0] not in ("integer", "number"):
            nums = [c.name for c in lyr.properties if c.json_type[0] in ("integer", "number")]
            raise InputError(f"demand.weight: {wprop!r} is not a numeric property of {lyr.id}; use one of: "
                             f"{', '.join(nums)}")
        wsql: sql.Composable = sql.SQL("coalesce({}, 0)::float8").format(sql.Identifier(wprop))
    else:
        wsql = sql.SQL("1.0::float8")
    cell = _cell(spec, 100.0, "demand")
    units = sql.SQL("SELECT row_number() OVER (ORDER BY {id}) - 1 AS k, {id}::text AS id, {name} AS name, "
                    "{w} AS w, {g} AS g, {when} AS t FROM {t} WHERE {graw} IS NOT NULL AND ({cond})").format(
        id=sql.Identifier(lyr.config.id), name=_name_col(lyr), w=wsql, g=_geom5186(lyr), t=lyr.table,
        graw=lyr.geom, cond=cond,
        when=sql.Identifier(lyr.config.datetime) if lyr.config.datetime else sql.SQL("NULL::date"))
    with services["read_db"].connection() as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("WITH u AS ({}) SELECT count(*), coalesce(sum(ST_Area(g)), 0), "
                            "coalesce(sum(ST_NPoints(g)), 0) FROM u").format(units))
        row = cur.fetchone()
        n, area, _ = (int(row[0]), float(row[1]), int(row[2])) if row else (0, 0.0, 0)
        if n == 0:
            raise InputError(f"demand: no features in {lyr.id} match the filter{' and month' if period else ''}; "
                             "loosen it")
        if spread == "centroid":
            area = 0.0  # one sample per unit
        if n > cfg.max_points or area / (cell * cell) > cfg.max_points:
            raise InputError(f"demand: about {max(n, int(area / cell / cell)):,} sample points, more than "
                             f"{cfg.max_points:,}; use a larger demand.cell_m or a filter")
        cur.execute(sql.SQL("WITH u AS ({}) SELECT k, id, name, w, ST_AsBinary(g), GeometryType(g) FROM u "
                            "ORDER BY k").format(units))
        rows = cur.fetchall()
        polygonal = any("POLYGON" in str(r[5]).upper() for r in rows)
        when = _months(cur, lyr, units) if lyr.config.datetime else ""
        if polygonal and spread == "grid":
            cur.execute(sql.SQL("WITH u AS ({}) {}").format(units, _samples_sql(cell)))
            samples = np.array(cur.fetchall(), dtype=float).reshape(-1, 3)
        else:
            cur.execute(sql.SQL("WITH u AS ({}) SELECT k, ST_X(ST_PointOnSurface(g)), ST_Y(ST_PointOnSurface(g)) "
                                "FROM u ORDER BY k").format(units))
            samples = np.array(cur.fetchall(), dtype=float).reshape(-1, 3)
    weights = np.array([float(r[3]) for r in rows])
    if np.any(weights < 0):
        raise InputError(f"demand.weight: {wprop} has negative values; choose a non-negative property")
    unit = samples[:, 0].astype(np.int64)
    per_unit = np.bincount(unit, minlength=len(rows)).astype(float)
    notes = [f"polygons sampled on a {cell:g} m grid (weight split equally over the samples)"] \
        if polygonal and spread == "grid" else ["one point on the surface of each unit (spread: centroid)"] \
        if polygonal else []
    if when:
        notes.insert(0, f"demand: {lyr.id} of {when}, weight {wprop or 1}")
    return Demand([r[1] for r in rows], [r[2] for r in rows], weights,
                  [shapely.from_wkb(bytes(r[4])) for r in rows], "polygon" if polygonal else "point",
                  samples[:, 1:3], unit, weights[unit] / per_unit[unit], f"{lyr.id} {when}".strip(), wprop, notes)


def _months(cur: Any, lyr: Layer, units: sql.Composable) -> str:
    """The time steps the demand units come from ('2023-08', or 'first…last' over several)."""
    assert lyr.config.datetime
    cur.execute(sql.SQL("WITH u AS ({}) SELECT min(t)::text, max(t)::text FROM u").format(units))
    lo, hi = cur.fetchone() or (None, None)
    if lo is None or hi is None:
        return ""
    date_col = any(c.name == lyr.config.datetime and c.cql_type == "date" for c in lyr.columns)
    lo, hi = (lo[:7], hi[:7]) if date_col and lo.endswith("-01") and hi.endswith("-01") else (lo, hi)
    return lo if lo == hi else f"{lo}…{hi}"


def _bbox_polygon(bbox: Any) -> shapely.Geometry:
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)):
        raise InputError("demand.grid.area: give a layer id or a bbox [min lon, min lat, max lon, max lat]")
    x1, y1, x2, y2 = (float(v) for v in bbox)
    if not (-180 <= x1 < x2 <= 180 and -90 <= y1 < y2 <= 90):
        raise InputError("demand.grid.area bbox must be [min lon, min lat, max lon, max lat] with min < max")
    xs, ys = TO_5186.transform([x1, x2, x2, x1], [y1, y1, y2, y2])
    return shapely.Polygon(list(zip(xs, ys, strict=True)))


def demand_grid(services: dict[str, Any], spec: dict[str, Any], cfg: ProcessesConfig) -> Demand:
    """A regular grid of cells over an area (layer id, optionally filtered, or a lon/lat bbox); weight 1 per cell."""
    grid = spec["grid"]
    if not isinstance(grid, dict):
        raise InputError('demand.grid must be an object like {"cell_m": 250, "area": "admin_areas"}')
    cell = _cell(grid, 250.0, "demand.grid")
    area = grid.get("area")
    if isinstance(area, str):
        lyr = layer(services, area, cfg, "demand.grid.area")
        cond = where(lyr, grid, "demand.grid")
        with services["read_db"].connection() as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT ST_AsBinary(ST_Union({g})) FROM {t} WHERE ({cond})").format(
                g=_geom5186(lyr), t=lyr.table, cond=cond))
            row = cur.fetchone()
        if not row or row[0] is None:
            raise InputError(f"demand.grid.area: no features of {area} match the filter")
        shape = shapely.from_wkb(bytes(row[0]))
        source = f"grid {cell:g} m over {area}"
    else:
        shape = _bbox_polygon(area)
        source = f"grid {cell:g} m over bbox"
    x1, y1, x2, y2 = shape.bounds
    if (x2 - x1) * (y2 - y1) / (cell * cell) > cfg.max_points * 1.5:
        raise InputError(f"demand.grid: more than {cfg.max_points:,} cells; use a larger cell_m or a smaller area")
    xs = np.arange(math.floor(x1 / cell) * cell, x2, cell)
    ys = np.arange(math.floor(y1 / cell) * cell, y2, cell)
    gx, gy = np.meshgrid(xs, ys)
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + cell, gy.ravel() + cell)
    keep = shapely.intersects_xy(shape, gx.ravel() + cell / 2, gy.ravel() + cell / 2)
    cells = cells[keep]
    if len(cells) == 0:
        raise InputError("demand.grid: no cell centre falls inside the area; use a smaller cell_m")
    if len(cells) > cfg.max_points:
        raise InputError(f"demand.grid: {len(cells):,} cells, more than {cfg.max_points:,}; use a larger cell_m")
    cx, cy = gx.ravel()[keep] + cell / 2, gy.ravel()[keep] + cell / 2
    n = len(cells)
    return Demand([str(i) for i in range(n)], [None] * n, np.ones(n), list(cells), "cell", np.column_stack([cx, cy]),
                  np.arange(n, dtype=np.int64), np.ones(n), source, None, [f"{n} cells of {cell:g} m, weight 1 each"])


DEFAULT_DEMAND = {"layer": "population"}  # Sejong residents of the latest month, when that layer is loaded


def demand(services: dict[str, Any], spec: Any, cfg: ProcessesConfig) -> Demand:
    """Demand from a layer, a generated grid or inline GeoJSON points (property `weight`); none given: the
    population layer's latest month (DEFAULT_DEMAND), when it is published."""
    if spec is None:
        if services["registry"].config.layers.get(DEFAULT_DEMAND["layer"]) is None:
            raise InputError("input 'demand' is required (no population layer is configured as the default)")
        try:
            return demand_from_layer(services, dict(DEFAULT_DEMAND), cfg)
        except InputError as err:
            raise InputError(f"input 'demand' is required: the default demand (population) is not available "
                             f"({err})") from None
    if isinstance(spec, dict) and "layer" in spec:
        return demand_from_layer(services, spec, cfg)
    if isinstance(spec, dict) and "grid" in spec:
        return demand_grid(services, spec, cfg)
    ids, props, xy = geojson_points(spec, "demand", cfg.max_points)
    w = np.array([p.get("weight", 1) for p in props], dtype=object)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in w):
        raise InputError("demand: property 'weight' of inline points must be a non-negative number")
    weights = w.astype(float)
    n = len(ids)
    return Demand(ids, [p.get("name") for p in props], weights, list(shapely.points(xy)), "point", xy,
                  np.arange(n, dtype=np.int64), weights, "inline", "weight")


def to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    """EPSG:5186 -> lon/lat."""
    return shapely.transform(geom, lambda c: np.column_stack(TO_4326.transform(c[:, 0], c[:, 1])))


def preset_and_mode(cfg: ProcessesConfig, inputs: dict[str, Any]) -> tuple[Any, str]:
    """The facility-type preset a request names (or None) and its travel mode (a request's mode wins)."""
    from processes import network as nw

    preset = None
    if "facility_type" in inputs:
        preset = cfg.presets.get(inputs["facility_type"]) if isinstance(inputs["facility_type"], str) else None
        if preset is None:
            raise InputError(f"facility_type: unknown {inputs['facility_type']!r}; use one of: "
                             f"{', '.join(sorted(cfg.presets))}")
    mode = inputs.get("mode", preset.mode if preset else "walk")
    if mode not in nw.MODES:
        raise InputError(f"mode: {mode!r} is not a travel mode; use walk, bike or car")
    return preset, str(mode)
