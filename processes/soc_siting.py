"""Process `soc-siting`: optimal living-SOC sites (LSCP, MCLP, p-median, p-center, capacitated, attendance)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import shapely

from core.config import ProcessesConfig
from processes import inputs as inp
from processes import network as nw
from processes import results, sandbox, siting
from processes import siting_io as sio
from processes import solve_budget as budget
from processes.base import Context, Processor
from processes.errors import InputError
from processes.siting.capacitated import MAX_PAIRS
from processes.siting.minsum import MAX_EXACT_NONZEROS
from processes.soc_meta import MODELS, OUTPUTS, PROCESS_METADATA

MAX_CELLS = 40_000_000  # demand samples x sites of the dense cost matrix
SITES_STYLE = {"type": "circle", "paint": {"circle-radius": 6, "circle-stroke-color": "#ffffff",
                                           "circle-stroke-width": 1.5,
                                           "circle-color": ["case", ["get", "is_new"], "#d7301f", "#2b8cbe"]}}
LINES_STYLE = {"type": "line", "paint": {"line-color": "#636363", "line-width": 0.8, "line-opacity": 0.6}}


def _number(inputs: dict[str, Any], name: str, default: float | None, lo: float, hi: float, hint: str) -> float | None:
    v = inputs.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise InputError(f"{name}: {v!r} is out of range; {hint}")
    return float(v)


def _metrics(c: np.ndarray, w: np.ndarray, cols: np.ndarray, t: float) -> dict[str, Any] | None:
    """Coverage within t and weighted mean / worst time to the nearest of cols (None without cols)."""
    if cols.size == 0:
        return None
    best = c[:, cols].min(axis=1)
    reach = np.isfinite(best) & (w > 0)
    total = float(w.sum())
    cov = float(w[best <= t + 1e-9].sum())
    return {"covered_weight": round(cov, 3), "coverage_share": round(cov / total, 4) if total else None,
            "mean_time_min": round(float((best[reach] * w[reach]).sum() / w[reach].sum()), 3) if reach.any()
            else None,
            "worst_time_min": round(float(best[reach].max()), 3) if reach.any() else None,
            "unreachable_weight": round(float(w[~np.isfinite(best) & (w > 0)].sum()), 3)}


def _lonlat(x: float, y: float) -> list[float]:
    lon, lat = inp.TO_4326.transform(x, y)
    return [round(float(lon), 7), round(float(lat), 7)]


class SocSitingProcessor(Processor):
    """Location-allocation on a demand x site travel-time matrix (network or straight line x detour)."""

    PROCESS_METADATA = PROCESS_METADATA

    def validate(self, inputs: dict[str, Any], services: dict[str, Any]) -> dict[str, Any]:
        """Resolve model, presets, sites, demand and network; 400 with what to change."""
        inputs = super().validate(inputs, services)
        cfg = self.config
        model = str(inputs["model"]).replace("_", "-") if isinstance(inputs["model"], str) else None
        if model not in MODELS:
            raise InputError(f"model: {inputs['model']!r} is unknown; use one of: {', '.join(MODELS)}")
        preset, mode = inp.preset_and_mode(cfg, inputs)
        minutes = _number(inputs, "minutes", preset.minutes[0] if preset else 10.0, 0.1, cfg.max_minutes,
                          f"give the coverage threshold in minutes (above 0, at most {cfg.max_minutes:g})")
        assert minutes is not None
        cutoff = _number(inputs, "cutoff_minutes", min(cfg.max_minutes, max(60.0, 3 * minutes)), minutes,
                         cfg.max_minutes, f"give minutes between `minutes` ({minutes:g}) and {cfg.max_minutes:g}")
        tmax = min(600.0, cfg.job_timeout_s)
        time_limit = _number(inputs, "time_limit", 30.0, 0.1, tmax,
                             f"give the solver seconds between 0.1 and {tmax:g} (send 'Prefer: respond-async' "
                             "for long runs)")
        method = inputs.get("method", "auto")
        if method not in ("auto", "exact", "heuristic"):
            raise InputError(f"method: {method!r}; use auto, exact or heuristic")
        p = inputs.get("p")
        if model == "lscp":
            if p is not None:
                raise InputError("p: lscp finds the fewest sites itself; remove p (or use model mclp for a fixed p)")
        elif isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise InputError(f"p: model {model} needs p, the number of new sites (an integer >= 0), got {p!r}")
        capacity = _number(inputs, "capacity", None, 1e-9, 1e15, "give a positive capacity in demand units")
        if model == "capacitated-p-median" and capacity is None:
            raise InputError("capacity: capacitated-p-median needs a site capacity in demand-weight units "
                             "(e.g. 20000 voters)")
        decay = inputs.get("decay", "linear")
        if decay not in ("linear", "exponential", "step"):
            raise InputError(f"decay: {decay!r}; use linear, exponential or step")
        beta = _number(inputs, "beta", None, 0.0, 100.0, "give a decay rate per minute between 0 and 100")
        if model == "max-attendance" and decay == "exponential" and beta is None:
            raise InputError("beta: decay exponential needs a rate per minute, e.g. 0.1")
        wanted = inputs.get("outputs", list(OUTPUTS))
        if not isinstance(wanted, list) or not wanted or not all(o in OUTPUTS for o in wanted):
            raise InputError(f"outputs: give a list of: {', '.join(OUTPUTS)}")
        store = inputs.get("store", False)
        if not isinstance(store, bool):
            raise InputError("store must be true or false")
        cand = sio.sites(services, inputs["candidates"], cfg, "candidates")
        existing = sio.sites(services, inputs["existing"], cfg, "existing") if "existing" in inputs else None
        demand = inp.demand(services, inputs.get("demand"), cfg)
        if float(demand.sample_weight.sum()) <= 0:
            raise InputError(f"demand: the total weight of {demand.source} is 0 (empty demand); choose another "
                             "weight property or filter")
        n_ex = len(existing.ids) if existing else 0
        if model != "lscp" and p is not None and p > len(cand.ids):
            raise InputError(f"p = {p} is larger than the {len(cand.ids)} candidate sites; lower p or add "
                             "candidates (loosen the filter or use a finer grid)")
        if model != "lscp" and p == 0 and n_ex == 0:
            raise InputError("p = 0 with no existing facilities: open at least one site (p >= 1)")
        cells = len(demand.sample_xy) * (len(cand.ids) + n_ex)
        if cells > MAX_CELLS:
            raise InputError(f"the instance has {len(demand.sample_xy):,} demand points x {len(cand.ids) + n_ex:,} "
                             f"sites = {cells:,} pairs, more than {MAX_CELLS:,}; use a larger demand.cell_m, a "
                             "coarser candidate grid or a candidate filter")
        if method == "exact" and model in ("p-median", "max-attendance") and cells > MAX_EXACT_NONZEROS:
            raise InputError(f"method exact: {cells:,} demand-site pairs is too large for the exact solver "
                             f"(limit {MAX_EXACT_NONZEROS:,}); use method heuristic (it reports a proven gap) "
                             "or method auto")
        if model == "capacitated-p-median" and cells > MAX_PAIRS:
            raise InputError(f"capacitated-p-median: {cells:,} demand-site pairs, more than {MAX_PAIRS:,}; use a "
                             "larger demand.cell_m or fewer candidates")
        low = budget.before_costs(model, method, len(demand.sample_xy), len(cand.ids) + n_ex)
        if low.total > cfg.max_solve_memory_mb * budget.MB:
            raise InputError(_too_big(model, low, cfg.max_solve_memory_mb))
        network = nw.choose_network(services, inputs.get("network"), demand.sample_xy)
        return {"model": model, "mode": mode, "minutes": minutes, "cutoff": cutoff, "time_limit": time_limit,
                "method": method, "p": p, "capacity": capacity, "decay": decay, "beta": beta,
                "outputs": list(dict.fromkeys(wanted)), "store": store, "candidates": cand, "existing": existing,
                "demand": demand, "network": network, "network_requested": inputs.get("network"),
                "preset": inputs.get("facility_type"),
                "preset_source": preset.source if preset else None}

    def costs(self, inputs: dict[str, Any], ctx: Context, xy: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Minutes demand sample -> site (columns: candidates then existing) and how they were computed."""
        cfg = ctx.config
        dem: inp.Demand = inputs["demand"]
        mode = inputs["mode"]
        if not inputs["network"]:
            c = sio.straight_costs(dem.sample_xy, xy, cfg.detour_factor, cfg.speeds_kmh[mode])
            c[c > inputs["cutoff"]] = np.inf
            return c, {"cost_method": f"straight-line × {cfg.detour_factor:g} at {cfg.speeds_kmh[mode]:g} km/h "
                                      f"({nw.straight_reason(inputs)})", "straight_line": True,
                       "network": None, "detour_factor": cfg.detour_factor, "speed_kmh": cfg.speeds_kmh[mode],
                       "unsnapped_sites": [], "unsnapped_samples": 0}
        with ctx.db.transaction() as conn:
            g = nw.CACHE.get(conn, inputs["network"], mode)
            ctx.progress(8, "graph ready; snapping")
            ssnap, dsnap = sio.snap_all(conn, g, xy, dem.sample_xy, cfg.max_snap_m)
            method, notes = nw.describe(conn, inputs["network"], mode)
        if not ssnap.ok.any():
            raise InputError(f"candidates: none lies within {cfg.max_snap_m:g} m of network {inputs['network']}; "
                             "choose sites inside it or network \"none\"")
        ctx.progress(12, f"travel-time matrix: {len(xy)} site searches")
        c = sio.network_costs(g, ssnap, dsnap, inputs["cutoff"] * 60,
                              lambda f: ctx.progress(int(12 + 23 * f), "travel-time matrix", force=False))
        ids = inputs["candidates"].ids + (inputs["existing"].ids if inputs["existing"] else [])
        return c, {"cost_method": method, "network_notes": notes, "straight_line": False,
                   "network": inputs["network"], "graph": nw.stats_for(g),
                   "unsnapped_sites": [ids[i] for i in np.flatnonzero(~ssnap.ok)],
                   "unsnapped_samples": int((~dsnap.ok).sum())}

    def plan(self, inputs: dict[str, Any], cfg: ProcessesConfig, c: np.ndarray, w: np.ndarray,
             existing: np.ndarray) -> tuple[str, budget.Estimate, str | None]:
        """(method, memory estimate, note): refuse (400) what cannot fit max_solve_memory_mb; 'auto' goes
        heuristic when only that fits."""
        model, method = inputs["model"], inputs["method"]
        ests = budget.with_costs(model, method, c, w, existing, inputs["minutes"])
        limit = cfg.max_solve_memory_mb
        fits = [e for e in ests if e.total <= limit * budget.MB]
        if not fits:
            raise InputError(_too_big(model, ests[-1], limit))
        if fits[0] is ests[0]:
            return method, ests[0], None
        return "heuristic", fits[0], (f"method auto: the exact model would need {ests[0].describe()}, more than "
                                      f"max_solve_memory_mb {limit:,} MB; solved by the heuristic (proven gap)")

    def solve(self, inputs: dict[str, Any], ctx: Context, c: np.ndarray, w: np.ndarray, existing: np.ndarray,
              method: str, est: budget.Estimate) -> siting.SitingResult:
        """Run the chosen model (in a memory-limited child process unless configured off); solver input errors
        become 400s."""
        model, t, cfg = inputs["model"], inputs["minutes"], ctx.config

        def progress(pct: float, msg: str) -> None:
            ctx.progress(int(35 + 0.6 * pct), msg, force=pct >= 100)

        kwargs: dict[str, Any] = {"existing": existing, "time_limit": inputs["time_limit"], "T": t}
        if model != "lscp":
            kwargs["p"] = inputs["p"]
        if model in ("mclp", "p-median", "max-attendance"):
            kwargs["method"] = method
        if model == "p-center":
            del kwargs["T"]
        if model == "capacitated-p-median":
            kwargs["cap"] = np.full(c.shape[1], inputs["capacity"])
        if model == "max-attendance":
            kwargs |= {"decay": inputs["decay"], "beta": inputs["beta"]}
        name = model.replace("-", "_")
        try:
            if cfg.solve_in_child:
                return sandbox.solve(name, {"c": c, "w": w}, kwargs, limit_mb=cfg.max_solve_memory_mb,
                                     progress=progress, wall_s=2 * inputs["time_limit"] + 120,
                                     hint=budget.hint(model, est.path))
            return sandbox.MODELS[name](c=c, w=w, progress=progress, **kwargs)
        except siting.SitingInfeasibleError as err:
            raise InputError(self._infeasible(inputs, c, w, err)) from None
        except siting.SitingInputError as err:
            raise InputError(f"{model}: {err}") from None

    def _infeasible(self, inputs: dict[str, Any], c: np.ndarray, w: np.ndarray,
                    err: siting.SitingInfeasibleError) -> str:
        if not err.demand:
            return f"{inputs['model']}: no feasible solution ({err}); raise capacity or p"
        rows = np.asarray(err.demand, dtype=np.int64)
        need = float(np.nanmax(np.where(np.isfinite(c[rows].min(axis=1)), c[rows].min(axis=1), np.nan))) \
            if np.isfinite(c[rows].min(axis=1)).any() else float("inf")
        hint = (f"raise minutes to at least {math.ceil(need * 10) / 10:g}" if math.isfinite(need)
                else f"raise cutoff_minutes or minutes (some reach no site within {inputs['cutoff']:g} min)")
        return (f"{inputs['model']}: no feasible cover: {rows.size} demand points (weight {w[rows].sum():,.0f}) "
                f"cannot be covered within {inputs['minutes']:g} min by any candidate; {hint}, add candidates "
                "there, or use model mclp")

    def run(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Cost matrix, solve, then the summary, the sites and the allocation lines."""
        t0 = time.perf_counter()
        cand: inp.Points = inputs["candidates"]
        ex: inp.Points | None = inputs["existing"]
        dem: inp.Demand = inputs["demand"]
        xy = np.vstack([cand.xy, ex.xy]) if ex else cand.xy
        ids = cand.ids + (ex.ids if ex else [])
        names = cand.names + (ex.names if ex else [])
        m_new = len(cand.ids)
        existing = np.arange(m_new, len(ids), dtype=np.int64)
        ctx.progress(5, f"{m_new} candidates, {len(existing)} existing, {len(dem.sample_xy)} demand points")
        c, info = self.costs(inputs, ctx, xy)
        t_cost = time.perf_counter() - t0
        w_all = dem.sample_weight
        solvable = np.isfinite(c).any(axis=1) & (w_all > 0)
        if not solvable.any():
            raise InputError(f"demand: no demand point reaches any site within {inputs['cutoff']:g} min; check the "
                             "network, raise cutoff_minutes or choose candidates near the demand")
        rows = np.flatnonzero(solvable)
        c_rows = c if rows.size == len(c) else c[rows]
        method, est, note = self.plan(inputs, ctx.config, c_rows, w_all[rows], existing)
        ctx.progress(35, f"solving {inputs['model']} on {rows.size} x {len(ids)} (memory estimate "
                         f"{est.total / budget.MB:,.0f} MB)")
        res = self.solve(inputs, ctx, c_rows, w_all[rows], existing, method, est)
        del c_rows
        t = inputs["minutes"]
        open_cols = res.open_sites.astype(np.int64)
        assign = np.full(len(w_all), -1, np.int64)
        assign[rows] = res.assignment
        tt = np.full(len(w_all), np.inf)
        ok = assign >= 0
        tt[ok] = c[np.flatnonzero(ok), assign[ok]]
        after = _metrics(c, w_all, open_cols, t)
        if after is not None and inputs["model"] == "capacitated-p-median":  # served by capacity, not nearest
            reach = ok & (w_all > 0)
            cov = float(w_all[ok & (tt <= t + 1e-9)].sum())
            after.update({"covered_weight": round(cov, 3), "coverage_share": round(cov / float(w_all.sum()), 4),
                          "mean_time_min": round(float((tt[reach] * w_all[reach]).sum() / w_all[reach].sum()), 3),
                          "worst_time_min": round(float(tt[reach].max()), 3)})
        load = np.bincount(assign[ok], weights=w_all[ok], minlength=len(ids))
        site_rows = []
        for j in open_cols:
            mine = assign == j
            site_rows.append({"site_id": ids[j], "name": names[j], "is_new": bool(j < m_new),
                              "source": cand.source if j < m_new else (ex.source if ex else None),
                              "assigned_weight": round(float(load[j]), 3), "assigned_points": int(mine.sum()),
                              "mean_time_min": round(float((tt[mine] * w_all[mine]).sum() / w_all[mine].sum()), 3)
                              if w_all[mine].sum() > 0 else None,
                              "max_time_min": round(float(tt[mine].max()), 3) if mine.any() else None,
                              "x": float(xy[j, 0]), "y": float(xy[j, 1])})
        summary: dict[str, Any] = {
            "model": inputs["model"], "p": inputs["p"], "mode": inputs["mode"], "minutes": t,
            "cutoff_minutes": inputs["cutoff"], "facility_type": inputs["preset"],
            "standard_source": inputs["preset_source"], **info,
            "candidates": {"source": cand.source, "count": m_new},
            "existing": {"source": ex.source if ex else None, "count": len(existing)},
            "demand": {"source": dem.source, "kind": dem.kind, "units": len(dem.ids), "points": len(w_all),
                       "weight_property": dem.weight_property, "total_weight": round(float(w_all.sum()), 3),
                       "solved_points": int(rows.size), "notes": dem.notes},
            "objective": res.objective, "objective_sense": _SENSE[inputs["model"]], "bound": res.bound,
            "gap": res.gap, "status": res.status, "solver": res.solver,
            "solve_time_s": round(res.runtime_s, 3), "cost_time_s": round(t_cost, 3),
            "new_site_count": int(res.new_sites.size),
            "solve_memory": _memory(est, ctx.config, res, note),
            "before": _metrics(c, w_all, existing, t), "after": after,
            "new_sites": [{k: v for k, v in s.items() if k not in ("x", "y", "is_new", "source")} |
                          {"lonlat": _lonlat(s["x"], s["y"])} for s in site_rows if s["is_new"]],
        }
        outputs: dict[str, Any] = {"summary": summary}
        want = set(inputs["outputs"]) | ({"sites", "allocation"} if inputs["store"] else set())
        layers: dict[str, tuple[list[dict[str, Any]], str, tuple[str, str], dict[str, Any]]] = {}
        if "sites" in want:
            feats, lrows = [], []
            for s in site_rows:
                props = {k: v for k, v in s.items() if k not in ("x", "y")}
                feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": _lonlat(s["x"], s["y"])},
                              "properties": props})
                lrows.append({**props, "geom_wkb": shapely.to_wkb(shapely.Point(s["x"], s["y"]))})
            outputs["sites"] = {"type": "FeatureCollection", "features": feats}
            layers["sites"] = (lrows, "Point", ("최적 입지 (신규·기존)", "Chosen sites (new and existing)"),
                               SITES_STYLE)
        if "allocation" in want:
            outputs["allocation"], layers["allocation"] = self._allocation(dem, xy, ids, assign, tt, t, m_new)
        if inputs["store"]:
            cfg = ctx.config
            with ctx.db.transaction() as conn:
                stored = [results.store_layer(conn, ctx.job_id, name, lr, gtype, titles, cfg.result_ttl_hours, style)
                          for name, (lr, gtype, titles, style) in layers.items() if lr]
            registry = ctx.services.get("registry")
            if registry is not None:
                registry.mark_stale()  # the new collections show in /collections and /map at once
            base = ctx.services.get("base_url", "")
            summary["layers"] = [{"id": lid, "href": f"{base}/collections/{lid}"} for lid in stored]
        summary["run_time_s"] = round(time.perf_counter() - t0, 3)
        ctx.progress(99, "done")
        return {k: v for k, v in outputs.items() if k in inputs["outputs"]}

    def _allocation(self, dem: inp.Demand, xy: np.ndarray, ids: list[str], assign: np.ndarray, tt: np.ndarray,
                    t: float, m_new: int) -> tuple[dict[str, Any], Any]:
        feats, rows = [], []
        for i in np.flatnonzero(assign >= 0):
            j = int(assign[i])
            a, b = dem.sample_xy[i], xy[j]
            u = int(dem.sample_unit[i])
            props = {"unit_id": dem.ids[u], "name": dem.names[u], "weight": round(float(dem.sample_weight[i]), 3),
                     "site_id": ids[j], "new_site": bool(j < m_new), "time_min": round(float(tt[i]), 3),
                     "covered": bool(tt[i] <= t + 1e-9)}
            feats.append({"type": "Feature", "properties": props, "geometry": {
                "type": "LineString", "coordinates": [_lonlat(a[0], a[1]), _lonlat(b[0], b[1])]}})
            rows.append({**props, "geom_wkb": shapely.to_wkb(shapely.LineString([a, b]))})
        return ({"type": "FeatureCollection", "features": feats},
                (rows, "LineString", ("수요 배분", "Allocation demand -> site"), LINES_STYLE))


def _too_big(model: str, est: budget.Estimate, limit_mb: int) -> str:
    return (f"{model}: the solve would need {est.describe()}, more than the limit of {limit_mb:,} MB "
            f"(processes.max_solve_memory_mb); {budget.hint(model, est.path)}")


def _memory(est: budget.Estimate, cfg: ProcessesConfig, res: siting.SitingResult, note: str | None) -> dict[str, Any]:
    """Estimate, limit and (from the child) measured peak of the solve, for the summary."""
    out: dict[str, Any] = {"estimate_mb": round(est.total / budget.MB), "limit_mb": cfg.max_solve_memory_mb,
                           "path": est.path, "in_child": cfg.solve_in_child}
    proc = res.details.get("solve_process")
    if proc:
        out |= {"peak_mb": proc["peak_mb"], "limit_reached": proc["limit_reached"]}
        if proc["limit_reached"] and res.status != "optimal":
            out["note"] = ("the solver reached its memory limit and stopped early; the result is its best solution "
                           "with a proven gap")
    if note:
        out["note"] = note
    return out


_SENSE = {"lscp": "min new sites", "mclp": "max covered weight", "p-median": "min total weighted minutes",
          "p-center": "min worst minutes", "capacitated-p-median": "min total weighted minutes",
          "max-attendance": "max expected attendance"}
