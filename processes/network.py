"""Road-network engine: CSR graphs per (network, mode) cached per data_version, snapping, one multi-source Dijkstra."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg2.extensions
from psycopg2 import sql
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

MODES = ("walk", "bike", "car")
WALK_MPS = 4.5 / 3.6  # snap distances are walked
MIN_COST = 1e-6
FArray = npt.NDArray[np.float64]
IArray = npt.NDArray[np.int64]


@dataclass
class Graph:
    """A directed graph over a network's nodes for one mode (costs in seconds)."""

    name: str
    mode: str
    version: int
    node_ids: IArray  # graph index -> OSM node id (sorted)
    edge_ids: IArray  # sorted edge ids
    edge_u: IArray  # graph index of source
    edge_v: IArray  # graph index of target
    edge_fwd: FArray  # cost u->v (inf: forbidden)
    edge_rev: FArray  # cost v->u (inf: forbidden)
    to_csr: csr_matrix  # transposed graph: an edge b->a costs c(a->b); Dijkstra on it gives times TO the sources
    in_main: npt.NDArray[np.bool_]  # node in the largest (strongly, for car) connected component

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    def edge_pos(self, ids: IArray) -> IArray:
        """Positions of edge ids in the edge arrays."""
        return np.searchsorted(self.edge_ids, ids).astype(np.int64)

    def node_index(self, osm_ids: IArray) -> IArray:
        """Graph indices of node ids."""
        return np.searchsorted(self.node_ids, osm_ids).astype(np.int64)


def cost_columns(mode: str) -> tuple[str, str]:
    """(forward, reverse) cost columns of a mode."""
    return {"walk": ("walk_s", "walk_s"), "bike": ("bike_s", "bike_s"), "car": ("car_s", "car_reverse_s")}[mode]


def _dedupe_min(rows: IArray, cols: IArray, data: FArray) -> tuple[IArray, IArray, FArray]:
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return rows[keep], cols[keep], data[keep]


def build_graph(name: str, mode: str, version: int, ids: IArray, src: IArray, dst: IArray, fwd: FArray,
                rev: FArray) -> Graph:
    """Graph from edge arrays (NaN or negative cost: forbidden)."""
    fwd = np.where(np.isfinite(fwd) & (fwd >= 0), np.maximum(fwd, MIN_COST), np.inf)
    rev = np.where(np.isfinite(rev) & (rev >= 0), np.maximum(rev, MIN_COST), np.inf)
    order = np.argsort(ids)
    ids, src, dst, fwd, rev = ids[order], src[order], dst[order], fwd[order], rev[order]
    node_ids = np.unique(np.concatenate([src, dst]))
    u, v = np.searchsorted(node_ids, src), np.searchsorted(node_ids, dst)
    n = len(node_ids)
    f_ok, r_ok = np.isfinite(fwd), np.isfinite(rev)
    # transposed: original a->b (cost c) is stored as b->a
    rows = np.concatenate([v[f_ok], u[r_ok]]).astype(np.int64)
    cols = np.concatenate([u[f_ok], v[r_ok]]).astype(np.int64)
    data = np.concatenate([fwd[f_ok], rev[r_ok]])
    rows, cols, data = _dedupe_min(rows, cols, data)
    mat = csr_matrix(coo_matrix((data, (rows, cols)), shape=(n, n)))
    _, labels = connected_components(mat, directed=True, connection="strong" if mode == "car" else "weak")
    main = labels == np.bincount(labels).argmax() if n else np.zeros(0, dtype=bool)
    return Graph(name, mode, version, node_ids, ids.astype(np.int64), u.astype(np.int64), v.astype(np.int64),
                 fwd, rev, mat, main)


def network_version(conn: psycopg2.extensions.connection, name: str) -> int | None:
    """data_version of network.<name>_edges (None: not loaded)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"network.{name}_edges",))
        row = cur.fetchone()
        if not row or row[0] is None:
            return None
        cur.execute("SELECT data_version FROM meta.datasets WHERE table_name = %s", (f"network.{name}_edges",))
        row = cur.fetchone()
        return int(row[0]) if row else 0


def list_networks(conn: psycopg2.extensions.connection) -> list[str]:
    """Names of the loaded networks."""
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'network' "
                    "AND table_name LIKE '%%\\_edges' ORDER BY 1")
        return [r[0][: -len("_edges")] for r in cur.fetchall()]


def load_graph(conn: psycopg2.extensions.connection, name: str, mode: str, version: int) -> Graph:
    """Read the edges of a network and build the mode's graph."""
    fcol, rcol = cost_columns(mode)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT id, source, target, coalesce({f}, 'NaN'), coalesce({r}, 'NaN') FROM {t}").format(
            f=sql.Identifier(fcol), r=sql.Identifier(rcol), t=sql.Identifier("network", f"{name}_edges")))
        rows = cur.fetchall()
    arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return build_graph(name, mode, version, arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64),
                       arr[:, 2].astype(np.int64), arr[:, 3], arr[:, 4])


class GraphCache:
    """Graphs per (network, mode), rebuilt when the network's data_version changes."""

    def __init__(self) -> None:
        self._graphs: dict[tuple[str, str], Graph] = {}
        self._lock = threading.Lock()

    def get(self, conn: psycopg2.extensions.connection, name: str, mode: str) -> Graph:
        """The current graph (built on first use)."""
        version = network_version(conn, name)
        if version is None:
            raise KeyError(name)
        with self._lock:
            g = self._graphs.get((name, mode))
            if g is None or g.version != version:
                g = load_graph(conn, name, mode, version)
                self._graphs[(name, mode)] = g
            return g


CACHE = GraphCache()


def times_to_nodes(g: Graph, sources: IArray, limit: float = np.inf) -> tuple[FArray, IArray]:
    """One multi-source Dijkstra: time from every node to its nearest source node, and that source's index."""
    dist, _, src = dijkstra(g.to_csr, directed=True, indices=sources, min_only=True, return_predecessors=True,
                            limit=limit)
    return dist, src


@dataclass
class Snapped:
    """Points snapped to edges: edge position (-1: unsnapped), fraction along the edge, snap distance (m)."""

    edge: IArray
    frac: FArray
    dist: FArray

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        """Which points were snapped."""
        return self.edge >= 0


def snap(conn: psycopg2.extensions.connection, g: Graph, xy: FArray, max_m: float, k: int = 6) -> Snapped:
    """Snap EPSG:5186 points to the nearest edge the mode may use in the main component (PostGIS KNN)."""
    n = len(xy)
    edge, frac, dist = np.full(n, -1, np.int64), np.zeros(n), np.full(n, np.inf)
    if n == 0:
        return Snapped(edge, frac, dist)
    fcol, rcol = cost_columns(g.mode)
    q = sql.SQL(
        "SELECT q.i, e.id, ST_LineLocatePoint(e.geom, q.g), ST_Distance(e.geom, q.g) "
        "FROM (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 5186) AS g "
        "      FROM unnest(%s::int[], %s::float8[], %s::float8[]) AS u(i, x, y)) q "
        "CROSS JOIN LATERAL (SELECT id, geom FROM {t} e WHERE ({f} IS NOT NULL OR {r} IS NOT NULL) "
        "  AND ST_DWithin(e.geom, q.g, %s) ORDER BY e.geom <-> q.g LIMIT %s) e"
    ).format(t=sql.Identifier("network", f"{g.name}_edges"), f=sql.Identifier(fcol), r=sql.Identifier(rcol))
    with conn.cursor() as cur:
        cur.execute(q, (list(range(n)), xy[:, 0].tolist(), xy[:, 1].tolist(), max_m, k))
        rows = cur.fetchall()
    if not rows:
        return Snapped(edge, frac, dist)
    arr = np.array(rows, dtype=np.float64)
    pos = g.edge_pos(arr[:, 1].astype(np.int64))
    good = g.in_main[g.edge_u[pos]] | g.in_main[g.edge_v[pos]]
    arr, pos = arr[good], pos[good]
    order = np.lexsort((arr[:, 3], arr[:, 0]))
    arr, pos = arr[order], pos[order]
    first = np.ones(len(arr), dtype=bool)
    first[1:] = arr[1:, 0] != arr[:-1, 0]
    idx = arr[first, 0].astype(np.int64)
    edge[idx], frac[idx], dist[idx] = pos[first], arr[first, 2], arr[first, 3]
    return Snapped(edge, frac, dist)


@dataclass
class Reach:
    """Result of one multi-source search: node times and nearest source, plus the facilities' snaps."""

    graph: Graph
    node_time: FArray
    node_src: IArray  # facility index per node (-1: unreachable)
    fac: Snapped


def search(g: Graph, fac: Snapped, limit: float = np.inf) -> Reach:
    """Time from every node to the nearest facility: virtual source nodes on the facilities' edges, one Dijkstra."""
    n = g.n
    ks = np.flatnonzero(fac.ok)
    e = fac.edge[ks]
    walk = fac.dist[ks] / WALK_MPS
    f = fac.frac[ks]
    # facility k on edge (u,v) at f: a node reaches it via u (cost f*c(u->v)) or via v (cost (1-f)*c(v->u))
    rows = np.concatenate([n + ks, n + ks])
    cols = np.concatenate([g.edge_u[e], g.edge_v[e]])
    data = np.concatenate([walk + f * g.edge_fwd[e], walk + (1 - f) * g.edge_rev[e]])
    ok = np.isfinite(data)
    rows, cols, data = rows[ok], cols[ok], np.maximum(data[ok], MIN_COST)
    size = n + len(fac.edge)
    base = g.to_csr.tocoo()
    mat = csr_matrix(coo_matrix((np.concatenate([base.data, data]),
                                 (np.concatenate([base.row, rows]), np.concatenate([base.col, cols]))),
                                shape=(size, size)))
    if len(ks) == 0:
        return Reach(g, np.full(n, np.inf), np.full(n, -1, np.int64), fac)
    dist, _, src = dijkstra(mat, directed=True, indices=n + ks, min_only=True, return_predecessors=True, limit=limit)
    node_src = np.where(src[:n] >= 0, src[:n] - n, -1).astype(np.int64)
    return Reach(g, dist[:n], node_src, fac)


def point_times(r: Reach, pts: Snapped) -> tuple[FArray, IArray]:
    """Time from snapped points to their nearest facility, and which (facility index; -1 none)."""
    g = r.graph
    m = len(pts.edge)
    time, which = np.full(m, np.inf), np.full(m, -1, np.int64)
    idx = np.flatnonzero(pts.ok)
    if len(idx) == 0:
        return time, which
    e, gfrac = pts.edge[idx], pts.frac[idx]
    walk = pts.dist[idx] / WALK_MPS
    via_u = walk + gfrac * g.edge_rev[e] + r.node_time[g.edge_u[e]]  # back along the edge to u
    via_v = walk + (1 - gfrac) * g.edge_fwd[e] + r.node_time[g.edge_v[e]]
    best = np.minimum(via_u, via_v)
    src = np.where(via_u <= via_v, r.node_src[g.edge_u[e]], r.node_src[g.edge_v[e]])
    # a facility on the same edge may be reached directly
    fac_on_edge: dict[int, list[int]] = {}
    for k in np.flatnonzero(r.fac.ok):
        fac_on_edge.setdefault(int(r.fac.edge[k]), []).append(int(k))
    if fac_on_edge:
        for j, (ee, gf, w) in enumerate(zip(e, gfrac, walk, strict=True)):
            for kk in fac_on_edge.get(int(ee), ()):
                ff = r.fac.frac[kk]
                c = (ff - gf) * g.edge_fwd[ee] if ff >= gf else (gf - ff) * g.edge_rev[ee]
                t = w + r.fac.dist[kk] / WALK_MPS + c
                if t < best[j]:
                    best[j], src[j] = t, kk
    time[idx], which[idx] = best, np.where(np.isfinite(best), src, -1)
    return time, which


def reached_parts(r: Reach, limit_s: float) -> tuple[IArray, FArray, FArray]:
    """Edge ids with the reached fraction from their start [0, a] and end [b, 1] within limit_s."""
    g = r.graph
    tu, tv = r.node_time[g.edge_u], r.node_time[g.edge_v]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.clip(np.where(np.isfinite(g.edge_rev), (limit_s - tu) / g.edge_rev, np.where(tu <= limit_s, 0, -1)),
                    -1, 1)
        b = np.clip(np.where(np.isfinite(g.edge_fwd), 1 - (limit_s - tv) / g.edge_fwd,
                             np.where(tv <= limit_s, 1, 2)), 0, 2)
    keep = (a >= 0) | (b <= 1)
    return g.edge_ids[keep], a[keep], b[keep]


def stats_for(g: Graph) -> dict[str, Any]:
    """Size of a graph."""
    return {"nodes": g.n, "edges": len(g.edge_ids), "main_component_nodes": int(g.in_main.sum())}


def loader_report(conn: psycopg2.extensions.connection, name: str) -> dict[str, Any]:
    """What the loader recorded about a network (catalog quality.network: label, one_way, ...; {} for OSM)."""
    with conn.cursor() as cur:
        cur.execute("SELECT quality -> 'network' FROM meta.datasets WHERE table_name = %s", (f"network.{name}_edges",))
        row = cur.fetchone()
    return dict(row[0]) if row and isinstance(row[0], dict) else {}


def describe(conn: psycopg2.extensions.connection, name: str, mode: str) -> tuple[str, list[str]]:
    """How a network's times are made (for summary.method / cost_method) and the notes a result must carry."""
    facts = loader_report(conn, name)
    no_one_way = facts.get("one_way") is False
    source = ", ".join(p for p in (facts.get("label"), "no one-way data" if no_one_way else None) if p)
    notes = []
    if no_one_way and mode == "car":
        notes.append("car times are symmetric: the network has no one-way data, so one-way streets count as "
                     "two-way and drives may come out shorter than they are")
    if facts.get("crossings_unconnected"):
        notes.append(f"{facts['crossings_unconnected']:,} crossings of road lines without a junction in the source "
                     "(overpasses, bridges) are not connected")
    return f"network {name} ({source + '; ' if source else ''}{mode}; snap distance walked at 4.5 km/h)", notes


def straight_reason(inputs: dict[str, Any]) -> str:
    """Why a request runs on straight lines: it asked for network "none", or no loaded network covers it."""
    if inputs.get("network_requested") == "none":
        return 'network "none" requested'
    return "no road network loaded for this area"


_HULLS: dict[tuple[str, int], Any] = {}


def hull(conn: psycopg2.extensions.connection, name: str) -> Any:
    """Convex hull (EPSG:5186, shapely) of a network's nodes, cached per data_version."""
    import shapely

    version = network_version(conn, name)
    if version is None:
        return None
    key = (name, version)
    if key not in _HULLS:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT ST_AsBinary(ST_ConvexHull(ST_Collect(geom))) FROM {}").format(
                sql.Identifier("network", f"{name}_nodes")))
            row = cur.fetchone()
        _HULLS[key] = shapely.from_wkb(bytes(row[0])) if row and row[0] else None
    return _HULLS[key]


def choose_network(services: dict[str, Any], name: Any, xy: npt.NDArray[np.float64]) -> str | None:
    """The network a request names ("none": straight line), or the loaded one holding most of its points."""
    import shapely

    from processes.errors import InputError

    with services["read_db"].connection() as conn:
        names = list_networks(conn)
        if name == "none":
            return None
        if name is not None:
            if name not in names:
                raise InputError(f"network: {name!r} is not loaded; loaded: {', '.join(names) or 'none'} "
                                 f"(or \"none\" for straight-line distance)")
            return str(name)
        for candidate in names:
            outline = hull(conn, candidate)
            if outline is not None and shapely.contains_xy(outline, xy[:, 0], xy[:, 1]).mean() >= 0.5:
                return candidate
    return None
