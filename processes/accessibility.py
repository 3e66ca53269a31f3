"""Process `accessibility`: who reaches which facility within N minutes (network, or straight line x detour)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree

from processes import inputs as inp
from processes import isochrones as iso
from processes import network as nw
from processes import results
from processes.access_meta import PROCESS_METADATA
from processes.base import Context, Processor
from processes.errors import InputError
from processes.report import build_outputs

OUTPUTS = ("summary", "by_area", "demand", "isochrones", "gaps")
DEFAULT_OUTPUTS = ["summary", "by_area", "demand", "isochrones", "gaps"]


def _minutes(value: Any, cap: float) -> list[float]:
    vals = value if isinstance(value, list) else [value]
    if not vals or len(vals) > 6:
        raise InputError("minutes: give one number or a list of 1-6 numbers, e.g. [5, 10, 15]")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not 0 < v <= cap:
            raise InputError(f"minutes: {v!r} is not a travel time; use numbers above 0 and at most {cap:g}")
        out.append(float(v))
    return sorted(set(out))


class AccessibilityProcessor(Processor):
    """Travel time from every demand unit to its nearest facility, coverage shares, isochrones and gaps."""

    PROCESS_METADATA = PROCESS_METADATA

    def validate(self, inputs: dict[str, Any], services: dict[str, Any]) -> dict[str, Any]:
        """Resolve presets, layers, filters, demand samples and the network; 400 with what to fix."""
        inputs = super().validate(inputs, services)
        cfg = self.config
        preset, mode = inp.preset_and_mode(cfg, inputs)
        minutes = _minutes(inputs.get("minutes", preset.minutes if preset else [10]), cfg.max_minutes)
        wanted = inputs.get("_outputs") or inputs.get("outputs") or DEFAULT_OUTPUTS
        if not isinstance(wanted, list) or not all(o in OUTPUTS for o in wanted):
            raise InputError(f"outputs: give a list of: {', '.join(OUTPUTS)}")
        store = inputs.get("store", False)
        if not isinstance(store, bool):
            raise InputError("store must be true or false")
        per_fac = inputs.get("isochrones_per_facility", False)
        if not isinstance(per_fac, bool):
            raise InputError("isochrones_per_facility must be true or false")
        facilities = inp.facilities(services, inputs["facilities"], cfg)
        demand = inp.demand(services, inputs.get("demand"), cfg)
        areas = None
        if inputs.get("areas") is not None:
            areas = inp.layer(services, inputs["areas"], cfg, "areas")
        network = nw.choose_network(services, inputs.get("network"), demand.sample_xy)
        return {"mode": mode, "minutes": minutes, "outputs": list(dict.fromkeys(wanted)), "store": store,
                "per_facility": per_fac, "facilities": facilities, "demand": demand, "areas": areas,
                "network": network, "network_requested": inputs.get("network"), "preset": inputs.get("facility_type"),
                "preset_source": preset.source if preset else None}

    def run(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """One multi-source search, then coverage, per-area shares, isochrones and gaps."""
        cfg = ctx.config
        fac: inp.Points = inputs["facilities"]
        dem: inp.Demand = inputs["demand"]
        mode, minutes = inputs["mode"], inputs["minutes"]
        ctx.progress(5, f"{len(fac.ids)} facilities, {len(dem.sample_xy)} demand samples")
        polys: dict[float, dict[int, shapely.Geometry]] = {}
        want_iso = inputs["store"] or bool({"isochrones", "gaps"} & set(inputs["outputs"]))  # stored: all layers
        info: dict[str, Any]
        if inputs["network"]:
            with ctx.db.transaction() as conn:
                g = nw.CACHE.get(conn, inputs["network"], mode)
                ctx.progress(20, "graph ready; snapping")
                fsnap = nw.snap(conn, g, fac.xy, cfg.max_snap_m)
                dsnap = nw.snap(conn, g, dem.sample_xy, cfg.max_snap_m)
                if not fsnap.ok.any():
                    raise InputError(f"facilities: none lies within {cfg.max_snap_m:g} m of network "
                                     f"{inputs['network']}; choose facilities inside it or network \"none\"")
                ctx.progress(40, "searching (one multi-source Dijkstra)")
                reach = nw.search(g, fsnap)
                times, which = nw.point_times(reach, dsnap)
                ctx.progress(60, "isochrones" if want_iso else "aggregating")
                if want_iso:
                    buf = {"walk": 25.0, "bike": 40.0, "car": 60.0}[mode]
                    for m in minutes:
                        polys[m] = iso.network_polygons(conn, reach, m * 60, buf, inputs["per_facility"])
            method, notes = nw.describe(conn, inputs["network"], mode)
            info = {"method": method, "network_notes": notes,
                    "network": inputs["network"], "graph": nw.stats_for(g),
                    "unsnapped_facilities": [fac.ids[i] for i in np.flatnonzero(~fsnap.ok)],
                    "unsnapped_samples": int((~dsnap.ok).sum()),
                    "unsnapped_weight": float(dem.sample_weight[~dsnap.ok].sum()),
                    "isochrone_note": "isochrones: reached street segments buffered by "
                                      "25 (walk), 40 (bike) or 60 (car) m"}
        else:
            speed = cfg.speeds_kmh[mode] / 3.6
            dist, which = cKDTree(fac.xy).query(dem.sample_xy)
            times = np.asarray(dist) * cfg.detour_factor / speed
            which = np.asarray(which, dtype=np.int64)
            for m in minutes:
                polys[m] = iso.circles(fac.xy, m * 60 * speed / cfg.detour_factor, inputs["per_facility"])
            info = {"method": f"straight-line × {cfg.detour_factor:g} ({nw.straight_reason(inputs)})",
                    "network": None, "speed_kmh": cfg.speeds_kmh[mode], "detour_factor": cfg.detour_factor,
                    "unsnapped_facilities": [], "unsnapped_samples": 0, "unsnapped_weight": 0.0}
        ctx.progress(80, "aggregating")
        outputs, layers = build_outputs(inputs, ctx, times, which, polys, info)
        if inputs["store"]:
            with ctx.db.transaction() as conn:
                stored = [results.store_layer(conn, ctx.job_id, name, rows, gtype, titles, cfg.result_ttl_hours)
                          for name, (rows, gtype, titles) in layers.items() if rows]
            base = ctx.services.get("base_url", "")
            if "summary" in outputs:
                outputs["summary"]["layers"] = [{"id": lid, "href": f"{base}/collections/{lid}"} for lid in stored]
        ctx.progress(99, "done")
        return {k: v for k, v in outputs.items() if k in inputs["outputs"]}
