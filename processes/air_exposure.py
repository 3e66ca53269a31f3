"""The `air-exposure` process: per area, days at or above an air-quality grade, the population-weighted mean and
the residents exposed, from the stored air-quality surfaces (zonal statistics with rasterio over the polygons).

Population comes from a population grid layer (each cell's residents placed at its centroid, in the surface cell
holding it) or, without one, from a population column of the area layer spread evenly over the area's cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import rasterio
import shapely
from psycopg2 import sql
from rasterio.features import rasterize

from core.air_grades import BANDS, GRADES, grade_index
from layers.model import Layer
from processes.base import Context, Processor
from processes.errors import InputError
from processes.inputs import layer, where

KST = ZoneInfo("Asia/Seoul")
MAX_DAYS = 400
GRADE_NAMES = {name: i for i, pair in enumerate(GRADES) for name in pair}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "air-exposure",
    "title": "Air-quality exposure per area (대기질 노출)",
    "description": "For a surface collection (e.g. pm10_seoul), a period and a grade: per area the number of days "
                   "whose population-weighted mean reached the grade, the population-weighted mean concentration "
                   "over the period and the residents living in cells that reached it on at least one day. "
                   "Surfaces are estimates (see each collection's cross-validated error).",
    "keywords": ["air quality", "PM10", "PM2.5", "exposure", "zonal statistics", "대기질"],
    "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
    "outputTransmission": ["value"],
    "inputs": {
        "collection": {"title": "Surface collection", "schema": {"type": "string"}, "minOccurs": 1,
                       "description": "an air-quality surface collection, e.g. pm10_seoul or pm25_seoul"},
        "period": {"title": "Period", "minOccurs": 0,
                   "description": "{start, end} days (YYYY-MM-DD, inclusive); default: every stored day",
                   "schema": {"type": "object", "properties": {"start": {"type": "string", "format": "date"},
                                                               "end": {"type": "string", "format": "date"}}}},
        "grade": {"title": "Threshold grade", "minOccurs": 0,
                  "description": "보통, 나쁨 or 매우나쁨 (moderate, bad, very bad): at or above it counts",
                  "schema": {"type": "string", "default": "나쁨"}},
        "areas": {"title": "Areas", "minOccurs": 1,
                  "description": "{layer, filter (CQL2), population (a column of the layer, used when no "
                                 "population grid is given)}",
                  "schema": {"type": "object", "required": ["layer"]}},
        "population": {"title": "Population grid", "minOccurs": 0,
                       "description": "{layer, column, filter}: a population grid layer (polygons)",
                       "schema": {"type": "object", "required": ["layer", "column"]}},
    },
    "outputs": {
        "summary": {"title": "Summary", "schema": {"type": "object"}},
        "areas": {"title": "Per area", "schema": {"type": "array", "items": {"type": "object"}}},
    },
    "example": {"inputs": {"collection": "pm10_seoul", "grade": "보통",
                           "areas": {"layer": "seoul_emd", "filter": "code LIKE '11210%' OR code LIKE '11250%'"},
                           "population": {"layer": "seoul_pop_grid", "column": "population"}}},
    "links": [],
}


@dataclass(frozen=True)
class Stack:
    """The surfaces of the period: values (days, rows, cols) with NaN for nodata, their grid and days."""

    values: np.ndarray
    transform: Any
    days: list[date]


def zonal(stack: np.ndarray, zones: np.ndarray, weights: np.ndarray, n_zones: int, grade: int,
          pollutant: str) -> list[dict[str, Any]]:
    """Per zone 1..n_zones: days at/above the grade, population-weighted mean, residents and residents exposed."""
    hits = np.where(np.isfinite(stack), grade_index(np.nan_to_num(stack), pollutant) >= grade, False)
    out = []
    for k in range(1, n_zones + 1):
        cells = zones == k
        v = stack[:, cells]  # (days, cells)
        w = weights[cells]
        ok = np.isfinite(v)
        use_w = w.sum() > 0
        ww = np.where(ok, w if use_w else 1.0, 0.0)
        daily_w = ww.sum(axis=1)
        daily = np.divide((np.nan_to_num(v) * ww).sum(axis=1), daily_w, out=np.full(v.shape[0], np.nan),
                          where=daily_w > 0)
        with_data = np.isfinite(daily)
        exposed_cells = hits[:, cells].any(axis=0)
        total_w = daily_w.sum()
        out.append({
            "cells": int(cells.sum()),
            "days_with_data": int(with_data.sum()),
            "days_at_or_above": int((grade_index(daily[with_data], pollutant) >= grade).sum()),
            "mean": None if total_w == 0 else round(float((np.nan_to_num(v) * ww).sum() / total_w), 2),
            "weighted_by": "population" if use_w else "area",
            "residents": round(float(w.sum()), 1),
            "residents_exposed": round(float(w[exposed_cells].sum()), 1),
            "person_days": round(float((w[None, :] * hits[:, cells]).sum()), 1),
        })
    return out


class AirExposureProcessor(Processor):
    """Exposure of each area's residents to air at or above a grade, from the stored surfaces."""

    PROCESS_METADATA = PROCESS_METADATA

    def validate(self, inputs: dict[str, Any], services: dict[str, Any]) -> dict[str, Any]:
        """Check the inputs' shapes (the layers are resolved when the job runs, with the caller's roles)."""
        inputs = super().validate(inputs, services)
        coll = inputs.get("collection")
        if not isinstance(coll, str) or "_" not in coll or coll.split("_", 1)[0] not in BANDS:
            raise InputError(f"collection must be a surface collection such as 'pm10_seoul', got {coll!r}")
        grade = inputs.get("grade", "나쁨")
        if grade not in GRADE_NAMES or GRADE_NAMES[grade] == 0:
            raise InputError(f"grade must be one of 보통, 나쁨, 매우나쁨 (moderate, bad, very bad), got {grade!r}")
        period = inputs.get("period") or {}
        if not isinstance(period, dict):
            raise InputError("period must be an object {start, end} of days (YYYY-MM-DD)")
        try:
            start = date.fromisoformat(period["start"]) if period.get("start") else None
            end = date.fromisoformat(period["end"]) if period.get("end") else None
        except (TypeError, ValueError):
            raise InputError(f"period start/end must be days (YYYY-MM-DD), got {period!r}") from None
        if start and end and start > end:
            raise InputError("period.start is after period.end")
        areas = inputs.get("areas")
        if not isinstance(areas, dict) or not isinstance(areas.get("layer"), str):
            raise InputError("areas must be an object with a layer id, e.g. {\"layer\": \"seoul_emd\"}")
        pop = inputs.get("population")
        if pop is not None and (not isinstance(pop, dict) or not isinstance(pop.get("layer"), str)
                                or not isinstance(pop.get("column"), str)):
            raise InputError("population must be {\"layer\": …, \"column\": …} (a population grid layer)")
        if pop is None and areas.get("population") is not None and not isinstance(areas["population"], str):
            raise InputError("areas.population must be a column name of the area layer")
        return {"collection": coll, "grade": grade, "start": start, "end": end, "areas": areas, "population": pop}

    def run(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Read the surfaces, rasterize the areas, place the residents, and sum per area."""
        pollutant = inputs["collection"].split("_", 1)[0]
        grade = GRADE_NAMES[inputs["grade"]]
        ctx.progress(5, "reading surfaces")
        stack = self._stack(ctx, inputs)
        rows, cols = stack.values.shape[1:]
        ctx.progress(40, "rasterizing areas")
        areas_lyr = layer(ctx.services, inputs["areas"]["layer"], self.config, "areas")
        ids, names, geoms, area_pop = self._areas(ctx, areas_lyr, inputs, stack.transform, (rows, cols))
        zones = rasterize(((g, k) for k, g in enumerate(geoms, start=1)), out_shape=(rows, cols),
                          transform=stack.transform, fill=0, dtype="int32")
        weights = np.zeros((rows, cols))
        source = "none (area-weighted)"
        outside = 0.0
        if inputs["population"] is not None:
            outside = self._grid_population(ctx, inputs["population"], stack.transform, weights)
            source = f"{inputs['population']['layer']}.{inputs['population']['column']}"
        elif area_pop is not None:
            counts = np.bincount(zones.ravel(), minlength=len(ids) + 1)
            per_cell = np.array([0.0, *[(p or 0) / c if c else 0.0 for p, c in zip(area_pop, counts[1:],
                                                                                   strict=True)]])
            weights = per_cell[zones]
            source = f"{areas_lyr.id}.{inputs['areas']['population']}"
        ctx.progress(70, "zonal statistics")
        stats = zonal(stack.values, zones, weights, len(ids), grade, pollutant)
        per_area = [{"id": i, "name": n, **s} for i, n, s in zip(ids, names, stats, strict=True) if s["cells"]]
        ctx.progress(99, "done")
        low = (0.0, *(b for b in BANDS[pollutant]))[grade]
        return {"summary": {
            "collection": inputs["collection"], "pollutant": pollutant, "grade": GRADES[grade][0],
            "threshold": f"> {low:g} µg/m³", "days": [d.isoformat() for d in stack.days],
            "population": source, "residents_outside_surface": round(outside, 1),
            "areas": len(per_area), "areas_without_cells": len(ids) - len(per_area),
            "residents": round(sum(a["residents"] for a in per_area), 1),
            "residents_exposed": round(sum(a["residents_exposed"] for a in per_area), 1),
            "note": "surface values are interpolated estimates; see the collection's cross-validated error"},
            "areas": per_area}

    def _stack(self, ctx: Context, inputs: dict[str, Any]) -> Stack:
        with ctx.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT valid_at, path FROM meta.surfaces WHERE collection_id = %s ORDER BY valid_at",
                        (inputs["collection"],))
            found = cur.fetchall()
        if not found:
            raise InputError(f"no surfaces stored for collection {inputs['collection']!r}")
        start, end = inputs["start"], inputs["end"]
        picked = [(t.astimezone(KST).date(), p) for t, p in found
                  if (start is None or t.astimezone(KST).date() >= start)
                  and (end is None or t.astimezone(KST).date() <= end)]
        if not picked:
            days = [t.astimezone(KST).date() for t, _ in found]
            raise InputError(f"no {inputs['collection']} surfaces in the period; surfaces exist from {days[0]} to "
                             f"{days[-1]} ({len(days)} days)")
        if len(picked) > MAX_DAYS:
            raise InputError(f"the period has {len(picked)} days of surfaces; at most {MAX_DAYS} at once")
        arrays = []
        transform = None
        for _, path in picked:
            with rasterio.open(path) as ds:
                arrays.append(np.ma.filled(ds.read(1, masked=True).astype(float), np.nan))
                if transform is not None and ds.transform != transform:
                    raise InputError("the period's surfaces have different grids; rebuild them (load surfaces)")
                transform = ds.transform
        return Stack(np.stack(arrays), transform, [d for d, _ in picked])

    def _areas(self, ctx: Context, lyr: Layer, inputs: dict[str, Any], transform: Any,
               shape: tuple[int, int]) -> tuple[list[str], list[str | None], list[Any], list[float | None] | None]:
        spec = inputs["areas"]
        pop_col = spec.get("population") if inputs["population"] is None else None
        if pop_col is not None and lyr.column(pop_col) is None:
            raise InputError(f"areas.population: {lyr.id} has no column {pop_col!r}")
        name_col = next((c for c in ("name", "adm_nm", "title") if lyr.column(c) is not None), None)
        left, top = transform.c, transform.f
        right, bottom = left + shape[1] * transform.a, top + shape[0] * transform.e
        q = sql.SQL("SELECT {id}::text, {name}, ST_AsBinary(ST_Transform({g}, 5186)), {pop} FROM {t} "
                    "WHERE ({cond}) AND ST_Transform({g}, 5186) && ST_MakeEnvelope({box}, 5186) "
                    "ORDER BY 1").format(
            id=sql.Identifier(lyr.config.id), name=sql.Identifier(name_col) if name_col else sql.SQL("NULL"),
            g=lyr.geom, pop=sql.SQL("{}::float8").format(sql.Identifier(pop_col)) if pop_col else sql.SQL("NULL"),
            t=lyr.table, cond=where(lyr, spec, "areas"),
            box=sql.SQL(", ").join(sql.Literal(float(v)) for v in (left, bottom, right, top)))
        with ctx.services["read_db"].connection() as conn, conn.cursor() as cur:
            cur.execute(q)  # no parameters: a CQL2 LIKE pattern's % stays literal
            rows = cur.fetchall()
        if not rows:
            raise InputError(f"areas: no features of {lyr.id} (with the filter) overlap the surfaces")
        return ([r[0] for r in rows], [r[1] for r in rows], [shapely.from_wkb(bytes(r[2])) for r in rows],
                [r[3] for r in rows] if pop_col else None)

    def _grid_population(self, ctx: Context, spec: dict[str, Any], transform: Any, weights: np.ndarray) -> float:
        """Add each grid cell's residents to the surface cell holding its centroid; residents outside returned."""
        lyr = layer(ctx.services, spec["layer"], self.config, "population")
        if lyr.column(spec["column"]) is None:
            raise InputError(f"population: {lyr.id} has no column {spec['column']!r}")
        q = sql.SQL("SELECT ST_X(c), ST_Y(c), v FROM (SELECT ST_Transform(ST_Centroid({g}), 5186) AS c, "
                    "{col}::float8 AS v FROM {t} WHERE {col} IS NOT NULL AND ({cond})) s").format(
            g=lyr.geom, col=sql.Identifier(spec["column"]), t=lyr.table, cond=where(lyr, spec, "population"))
        with ctx.services["read_db"].connection() as conn, conn.cursor() as cur:
            cur.execute(q)
            rows = cur.fetchall()
        if not rows:
            raise InputError(f"population: no cells with a {spec['column']} in {lyr.id}")
        xy = np.array([(r[0], r[1]) for r in rows], dtype=float)
        pop = np.array([r[2] for r in rows], dtype=float)
        c = np.floor((xy[:, 0] - transform.c) / transform.a).astype(int)
        r = np.floor((xy[:, 1] - transform.f) / transform.e).astype(int)
        inside = (r >= 0) & (r < weights.shape[0]) & (c >= 0) & (c < weights.shape[1])
        np.add.at(weights, (r[inside], c[inside]), pop[inside])
        return float(pop[~inside].sum())
