"""Inputs and cost matrices of `soc-siting`: candidate grids, network travel-time matrices, straight-line costs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg2.extensions
import shapely
from psycopg2 import sql
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial.distance import cdist

from core.config import ProcessesConfig
from processes import inputs as inp
from processes import network as nw
from processes.errors import InputError

FArray = npt.NDArray[np.float64]
BATCH = 128  # candidates per Dijkstra call (a dense batch x nodes distance block)


def candidate_grid(services: dict[str, Any], spec: dict[str, Any], cfg: ProcessesConfig, what: str) -> inp.Points:
    """Cell centres of a regular grid over an area (layer id + optional filter, or a lon/lat bbox)."""
    grid = spec["grid"]
    if not isinstance(grid, dict):
        raise InputError(f'{what}.grid must be an object like {{"cell_m": 300, "area": "admin_areas"}}')
    unknown = set(grid) - {"cell_m", "area", "filter"}
    if unknown:
        raise InputError(f"{what}.grid: unknown member(s) {', '.join(sorted(unknown))}; use cell_m, area, filter")
    cell = inp._cell(grid, 300.0, f"{what}.grid")
    area = grid.get("area")
    if isinstance(area, str):
        lyr = inp.layer(services, area, cfg, f"{what}.grid.area")
        cond = inp.where(lyr, grid, f"{what}.grid")
        with services["read_db"].connection() as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT ST_AsBinary(ST_Union({g})) FROM {t} WHERE ({cond})").format(
                g=inp._geom5186(lyr), t=lyr.table, cond=cond))
            row = cur.fetchone()
        if not row or row[0] is None:
            raise InputError(f"{what}.grid.area: no features of {area} match the filter; loosen it")
        shape = shapely.from_wkb(bytes(row[0]))
        source = f"grid {cell:g} m over {area}"
    else:
        shape = inp._bbox_polygon(area)
        source = f"grid {cell:g} m over bbox"
    x1, y1, x2, y2 = shape.bounds
    if (x2 - x1) * (y2 - y1) / (cell * cell) > cfg.max_facilities * 4:
        raise InputError(f"{what}.grid: far more than {cfg.max_facilities:,} cells; use a larger cell_m or a "
                         "smaller area (filter)")
    xs = np.arange(math.floor(x1 / cell) * cell, x2, cell) + cell / 2
    ys = np.arange(math.floor(y1 / cell) * cell, y2, cell) + cell / 2
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    keep = shapely.intersects_xy(shape, gx, gy)
    xy = np.column_stack([gx[keep], gy[keep]])
    if len(xy) == 0:
        raise InputError(f"{what}.grid: no cell centre falls inside the area; use a smaller cell_m")
    if len(xy) > cfg.max_facilities:
        raise InputError(f"{what}.grid: {len(xy):,} cells, more than {cfg.max_facilities:,}; use a larger cell_m")
    return inp.Points([f"g{i}" for i in range(len(xy))], [None] * len(xy), xy, source)


def sites(services: dict[str, Any], spec: Any, cfg: ProcessesConfig, what: str) -> inp.Points:
    """Candidate or existing sites: a layer (+filter), a grid over an area, or inline GeoJSON points."""
    if isinstance(spec, dict) and "grid" in spec:
        return candidate_grid(services, spec, cfg, what)
    try:
        return inp.facilities(services, spec, cfg)
    except InputError as err:
        msg = str(err.description)
        raise InputError(msg.replace("facilities", what, 1) if msg.startswith("facilities") else msg) from None


def straight_costs(dem_xy: FArray, site_xy: FArray, detour: float, speed_kmh: float) -> FArray:
    """Minutes from every demand point to every site: straight-line distance x detour at the mode's speed."""
    return cdist(dem_xy, site_xy) * detour / (speed_kmh / 3.6) / 60.0


def _augmented(g: nw.Graph, fac: nw.Snapped) -> tuple[csr_matrix, npt.NDArray[np.int64]]:
    """The transposed graph plus one virtual node per snapped site (as in processes.network.search)."""
    n = g.n
    ks = np.flatnonzero(fac.ok)
    e = fac.edge[ks]
    walk = fac.dist[ks] / nw.WALK_MPS
    f = fac.frac[ks]
    rows = np.concatenate([n + ks, n + ks])
    cols = np.concatenate([g.edge_u[e], g.edge_v[e]])
    data = np.concatenate([walk + f * g.edge_fwd[e], walk + (1 - f) * g.edge_rev[e]])
    ok = np.isfinite(data)
    rows, cols, data = rows[ok], cols[ok], np.maximum(data[ok], nw.MIN_COST)
    size = n + len(fac.edge)
    base = g.to_csr.tocoo()
    mat = csr_matrix(coo_matrix((np.concatenate([base.data, data]),
                                 (np.concatenate([base.row, rows]), np.concatenate([base.col, cols]))),
                                shape=(size, size)))
    return mat, ks


def network_costs(g: nw.Graph, sites_snap: nw.Snapped, dem_snap: nw.Snapped, limit_s: float,
                  tick: Callable[[float], None] | None = None) -> FArray:
    """Minutes from every demand point to every site over the network (inf beyond limit_s or unsnapped).

    One Dijkstra call per batch of sites on the transposed graph (times TO the site), limited to ``limit_s``;
    demand points join through their snapped edge exactly as :func:`processes.network.point_times` does.
    """
    m, npts = len(sites_snap.edge), len(dem_snap.edge)
    out = np.full((npts, m), np.inf)
    mat, ks = _augmented(g, sites_snap)
    idx = np.flatnonzero(dem_snap.ok)
    if len(ks) == 0 or len(idx) == 0:
        return out / 60.0
    n = g.n
    e, gfrac = dem_snap.edge[idx], dem_snap.frac[idx]
    walk = dem_snap.dist[idx] / nw.WALK_MPS
    cu, cv = walk + gfrac * g.edge_rev[e], walk + (1 - gfrac) * g.edge_fwd[e]
    nu, nv = g.edge_u[e], g.edge_v[e]
    for start in range(0, len(ks), BATCH):
        part = ks[start:start + BATCH]
        dist = dijkstra(mat, directed=True, indices=n + part, limit=limit_s)[:, :n]
        block = np.minimum(cu[None, :] + dist[:, nu], cv[None, :] + dist[:, nv])
        out[np.ix_(idx, part)] = block.T
        if tick is not None:
            tick(min(1.0, (start + len(part)) / len(ks)))
    # a site on the same edge as a demand point is reached along the edge directly
    by_edge: dict[int, list[int]] = {}
    for k in ks:
        by_edge.setdefault(int(sites_snap.edge[k]), []).append(int(k))
    for j, (ee, gf, w) in enumerate(zip(e, gfrac, walk, strict=True)):
        for kk in by_edge.get(int(ee), ()):
            ff = sites_snap.frac[kk]
            c = (ff - gf) * g.edge_fwd[ee] if ff >= gf else (gf - ff) * g.edge_rev[ee]
            t = w + sites_snap.dist[kk] / nw.WALK_MPS + c
            if t < out[idx[j], kk]:
                out[idx[j], kk] = t
    out[out > limit_s] = np.inf
    out /= 60.0  # in place: the matrix is the largest array of a request
    return out


def snap_all(conn: psycopg2.extensions.connection, g: nw.Graph, site_xy: FArray, dem_xy: FArray,
             max_m: float) -> tuple[nw.Snapped, nw.Snapped]:
    """Snap sites and demand samples to the mode's graph."""
    return nw.snap(conn, g, site_xy, max_m), nw.snap(conn, g, dem_xy, max_m)
