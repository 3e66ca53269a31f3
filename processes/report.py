"""Turn per-sample travel times into the accessibility outputs (summary, by_area, demand, isochrones, gaps)."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from psycopg2 import sql

from processes import inputs as inp
from processes.base import Context

LayerRows = tuple[list[dict[str, Any]], str, tuple[str, str]]


def _num(v: float, nd: int = 2) -> float | None:
    return round(float(v), nd) if np.isfinite(v) else None


def _multi(geom: shapely.Geometry, kind: str) -> shapely.Geometry:
    """Promote to a Multi* of the wanted kind (polygon or point), dropping other parts."""
    parts = shapely.get_parts(geom)
    if kind == "polygon":
        polys = [p for q in parts for p in shapely.get_parts(q) if p.geom_type == "Polygon"]
        return shapely.MultiPolygon(polys)
    return shapely.MultiPoint([p for p in parts if p.geom_type == "Point"])


def _feature(geom: shapely.Geometry, props: dict[str, Any]) -> dict[str, Any]:
    out = inp.to_lonlat(shapely.set_precision(geom, 0.01)) if not geom.is_empty else geom
    return {"type": "Feature", "geometry": shapely.geometry.mapping(out) if not out.is_empty else None,
            "properties": props}


def _fc(feats: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": feats}


def _areas(ctx: Context, inputs: dict[str, Any], dem: inp.Demand) -> tuple[list[str], list[str | None], np.ndarray]:
    """Area ids, names and the area index of every sample (-1: outside every area)."""
    lyr = inputs["areas"]
    if lyr is None:
        return dem.ids, dem.names, dem.sample_unit
    name = next((c for c in inp.NAME_COLUMNS if lyr.column(c) is not None), None)
    q = sql.SQL("SELECT {id}::text, {name}, ST_AsBinary({g}) FROM {t} WHERE {graw} IS NOT NULL ORDER BY 1").format(
        id=sql.Identifier(lyr.config.id), name=sql.Identifier(name) if name else sql.SQL("NULL"),
        g=inp._geom5186(lyr), t=lyr.table, graw=lyr.geom)
    with ctx.db.transaction() as conn, conn.cursor() as cur:
        cur.execute(q)
        rows = cur.fetchall()
    polys = [shapely.from_wkb(bytes(r[2])) for r in rows]
    tree = shapely.STRtree(polys)
    pts = shapely.points(dem.sample_xy)
    idx = np.full(len(pts), -1, np.int64)
    pi, ai = tree.query(pts, predicate="within")
    idx[pi] = ai
    return [r[0] for r in rows], [r[1] for r in rows], idx


def build_outputs(inputs: dict[str, Any], ctx: Context, times: np.ndarray, which: np.ndarray,
                  polys: dict[float, dict[int, shapely.Geometry]], info: dict[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, LayerRows]]:
    """All outputs, plus rows for result layers."""
    fac: inp.Points = inputs["facilities"]
    dem: inp.Demand = inputs["demand"]
    minutes: list[float] = inputs["minutes"]
    w = dem.sample_weight
    total = float(w.sum())
    covered = {m: times <= m * 60 + 1e-9 for m in minutes}
    key = {m: f"{m:g}" for m in minutes}
    reach = np.isfinite(times)
    mean_all = float((times[reach] * w[reach]).sum() / w[reach].sum() / 60) if w[reach].sum() > 0 else float("nan")
    summary: dict[str, Any] = {
        "method": info["method"], "mode": inputs["mode"], "minutes": minutes,
        "facility_type": inputs["preset"], "standard_source": inputs["preset_source"],
        "facilities": {"source": fac.source, "count": len(fac.ids), "unsnapped": info["unsnapped_facilities"]},
        "demand": {"source": dem.source, "kind": dem.kind, "units": len(dem.ids), "samples": len(w),
                   "weight_property": dem.weight_property, "total_weight": round(total, 3), "notes": dem.notes},
        "unsnapped_samples": info["unsnapped_samples"], "unsnapped_weight": round(info["unsnapped_weight"], 3),
        "mean_time_min": _num(mean_all),
        "thresholds": [{"minutes": m, "covered_weight": round(float(w[covered[m]].sum()), 3),
                        "share": round(float(w[covered[m]].sum()) / total, 4) if total else None,
                        "share_of_network_reachable": round(float(w[covered[m]].sum()) /
                                                            (total - info["unsnapped_weight"]), 4)
                        if total - info["unsnapped_weight"] > 0 else None} for m in minutes],
        **{k: v for k, v in info.items() if k not in ("method", "unsnapped_facilities", "unsnapped_samples",
                                                       "unsnapped_weight")},
    }
    out: dict[str, Any] = {"summary": summary}
    layers: dict[str, LayerRows] = {}
    want = set(inputs["outputs"]) | ({"demand", "isochrones", "gaps"} if inputs["store"] else set())
    if "by_area" in want:
        out["by_area"] = _by_area(ctx, inputs, dem, times, w, covered, key)
    if "demand" in want:
        out["demand"], layers["demand"] = _demand(fac, dem, times, which, covered, key)
    merged = {m: shapely.union_all(list(p.values())) if p else shapely.MultiPolygon() for m, p in polys.items()}
    if "isochrones" in want:
        feats, rows = [], []
        for m, parts in polys.items():
            for f, geom in sorted(parts.items()):
                props = {"minutes": m, "facility_id": fac.ids[f] if f >= 0 else None,
                         "facility_name": fac.names[f] if f >= 0 else None, "area_km2": round(geom.area / 1e6, 4)}
                feats.append(_feature(geom, props))
                rows.append({**props, "geom_wkb": shapely.to_wkb(_multi(geom, "polygon"))})
        out["isochrones"] = _fc(feats)
        layers["isochrones"] = (rows, "MultiPolygon", ("접근 가능 범위", "Isochrones"))
    if "gaps" in want:
        out["gaps"], layers["gaps"] = _gaps(dem, covered, merged, w)
    return out, layers


def _by_area(ctx: Context, inputs: dict[str, Any], dem: inp.Demand, times: np.ndarray, w: np.ndarray,
             covered: dict[float, np.ndarray], key: dict[float, str]) -> list[dict[str, Any]] | None:
    if inputs["areas"] is None and dem.kind != "polygon":
        return None
    ids, names, idx = _areas(ctx, inputs, dem)
    n = len(ids)
    ok = idx >= 0
    tot = np.bincount(idx[ok], weights=w[ok], minlength=n)
    reach = ok & np.isfinite(times)
    tsum = np.bincount(idx[reach], weights=(times * w)[reach], minlength=n)
    wsum = np.bincount(idx[reach], weights=w[reach], minlength=n)
    cov = {m: np.bincount(idx[ok & c], weights=w[ok & c], minlength=n) for m, c in covered.items()}
    return [{"id": ids[i], "name": names[i], "total_weight": round(float(tot[i]), 3),
             "mean_time_min": _num(tsum[i] / wsum[i] / 60) if wsum[i] > 0 else None,
             "covered_weight": {key[m]: round(float(cov[m][i]), 3) for m in cov},
             "share": {key[m]: round(float(cov[m][i] / tot[i]), 4) if tot[i] > 0 else None for m in cov}}
            for i in range(n)]


def _demand(fac: inp.Points, dem: inp.Demand, times: np.ndarray, which: np.ndarray,
            covered: dict[float, np.ndarray], key: dict[float, str]) -> tuple[dict[str, Any], LayerRows]:
    n = len(dem.ids)
    u, w = dem.sample_unit, dem.sample_weight
    tot = np.bincount(u, weights=w, minlength=n)
    reach = np.isfinite(times)
    wsum = np.bincount(u[reach], weights=w[reach], minlength=n)
    tsum = np.bincount(u[reach], weights=(times * w)[reach], minlength=n)
    tmin = np.full(n, np.inf)
    np.minimum.at(tmin, u, times)
    best = np.full(n, -1, np.int64)
    order = np.argsort(-w)  # the facility nearest to the largest share of the unit's weight
    for j in order[::-1]:
        if which[j] >= 0:
            best[u[j]] = which[j]
    feats, rows = [], []
    for i in range(n):
        f = int(best[i])
        props: dict[str, Any] = {
            "unit_id": dem.ids[i], "name": dem.names[i], "weight": round(float(dem.weight[i]), 3),
            "time_min": _num(tsum[i] / wsum[i] / 60) if wsum[i] > 0 else None,
            "nearest_time_min": _num(tmin[i] / 60), "facility_id": fac.ids[f] if f >= 0 else None,
            "facility_name": fac.names[f] if f >= 0 else None}
        for m, c in covered.items():
            props[f"share_{key[m]}min"] = round(float(np.bincount(u[c], weights=w[c], minlength=n)[i] / tot[i]), 4) \
                if tot[i] > 0 else None
        geom = dem.geoms[i]
        feats.append(_feature(shapely.simplify(geom, 2.0) if dem.kind == "polygon" else geom, props))
        rows.append({**props, "geom_wkb": shapely.to_wkb(_multi(geom, "polygon") if dem.kind != "point" else geom)})
    gtype = "Point" if dem.kind == "point" else "MultiPolygon"
    return _fc(feats), (rows, gtype, ("수요 단위별 접근 시간", "Travel time per demand unit"))


def _gaps(dem: inp.Demand, covered: dict[float, np.ndarray], merged: dict[float, shapely.Geometry],
          w: np.ndarray) -> tuple[dict[str, Any], LayerRows]:
    feats, rows = [], []
    kind = "point" if dem.kind == "point" else "polygon"
    for m, c in covered.items():
        if dem.kind == "polygon":
            geom = shapely.difference(shapely.union_all(dem.geoms), merged.get(m, shapely.MultiPolygon()))
        elif dem.kind == "cell":
            geom = shapely.union_all([dem.geoms[int(k)] for k in np.unique(dem.sample_unit[~c])])
        else:
            geom = shapely.MultiPoint(dem.sample_xy[~c]) if (~c).any() else shapely.MultiPoint()
        geom = _multi(geom, kind)
        props = {"minutes": m, "uncovered_weight": round(float(w[~c].sum()), 3),
                 "area_km2": round(geom.area / 1e6, 4) if kind == "polygon" else None}
        feats.append(_feature(geom, props))
        if not geom.is_empty:
            rows.append({**props, "geom_wkb": shapely.to_wkb(geom)})
    return _fc(feats), (rows, "MultiPolygon" if kind == "polygon" else "MultiPoint",
                        ("접근 사각지대", "Gaps beyond the threshold"))
