"""Benchmark: time to the nearest facility for every node of the Paju network, ours vs pgRouting vs networkx;
on the Sejong KAIS network, our times against pgr_dijkstraCost on the same graph (many-to-one, many-to-many).

Run: ``var/venv/bin/python -m bench.network [paju|sejong]`` (DATABASE_URL must point at a database with the bundled
data). Also measures the async job overhead: submit -> results available, minus the job's own compute time.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import psycopg2

from processes import network as nw

REPEAT = 3


def _best(fn: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_mode(conn: Any, mode: str, roots: np.ndarray) -> dict[str, float]:
    """Seconds for ours (cached graph), ours incl. graph build, pgRouting and networkx; returns timings."""
    import networkx as nx

    t0 = time.perf_counter()
    g = nw.load_graph(conn, "paju", mode, -1)
    build = time.perf_counter() - t0
    src = roots[g.in_main[roots]]
    ours, (dist, _) = _best(lambda: nw.times_to_nodes(g, src))
    f, r = nw.cost_columns(mode)
    edges_sql = (f"SELECT id, source, target, coalesce({f}, -1) AS cost, coalesce({r}, -1) AS reverse_cost "
                 f"FROM network.paju_edges")
    ids = [int(g.node_ids[s]) for s in src]
    with conn.cursor() as cur:
        def pgr() -> list[Any]:
            cur.execute("SELECT node, agg_cost FROM pgr_drivingDistance(%s, %s::bigint[], 1e9, true, true)",
                        (edges_sql, ids))
            return cur.fetchall()
        pg, rows = _best(pgr)
    graph = nx.DiGraph()
    coo = g.to_csr.tocoo()
    graph.add_weighted_edges_from(zip(coo.col.tolist(), coo.row.tolist(), coo.data.tolist(), strict=True))
    # networkx on the original direction from sources gives time FROM facilities; reverse for time TO them
    rev = graph.reverse(copy=False)
    nxt, nxd = _best(lambda: nx.multi_source_dijkstra_path_length(rev, set(src.tolist())))
    reached = int(np.isfinite(dist).sum())
    agree = max(abs(nxd[i] - dist[i]) for i in list(nxd)[:2000])
    print(f"{mode:5s} nodes {g.n:6d} reached {reached:6d} facilities {len(src):3d} | ours {ours * 1000:7.1f} ms "
          f"(graph build {build * 1000:6.1f} ms) | pgr_drivingDistance {pg * 1000:8.1f} ms ({len(rows)} rows, "
          f"x{pg / ours:6.0f}) | networkx {nxt * 1000:7.1f} ms (x{nxt / ours:5.0f}) | max |ours-nx| {agree:.2e} s")
    return {"ours": ours, "pgr": pg, "nx": nxt}


def job_overhead(dsn: str, n: int = 10) -> None:
    """Submit async accessibility jobs through the Flask app and time submit -> results minus compute."""
    from server.app import create_app
    from server.processes_api import register

    app = create_app(dsn=dsn)
    rt = register(app)
    client = app.test_client()
    body = {"inputs": {"facilities": {"layer": "facilities_paju", "filter": "kind = 'library'"}, "mode": "walk",
                       "minutes": 10, "demand": {"layer": "paju_emd", "weight": "voters",
                                                 "filter": "name IN ('운정1동', '운정2동', '운정3동')"},
                       "network": "paju", "outputs": ["summary", "by_area"]}}
    for label, req in (("echo", {"inputs": {"echoInput": "teststring"}}), ("accessibility", body)):
        _overhead(client, rt, label, req, n)
    rt.shutdown()


def _overhead(client: Any, rt: Any, label: str, body: dict[str, Any], n: int) -> None:
    """Median submit -> results time minus the job's compute time."""
    over = []
    for _ in range(n):
        t0 = time.perf_counter()
        job = client.post(f"/processes/{label}/execution", json=body,
                          headers={"Prefer": "respond-async"}).get_json()
        while client.get(f"/jobs/{job['jobID']}/results").status_code == 404:
            time.sleep(0.002)
        total = time.perf_counter() - t0
        compute = rt.store.get(job["jobID"]).compute_s or 0.0  # type: ignore[union-attr]
        over.append((total - compute) * 1000)
    print(f"async job overhead {label:13s} (submit -> results available, minus compute): median "
          f"{np.median(over):.1f} ms, max {max(over):.1f} ms over {n} jobs (incl. input validation and reading "
          f"the demand in the request; 2 ms polling)")


def _at_nodes(g: nw.Graph, nodes: np.ndarray) -> nw.Snapped:
    """Facilities placed exactly on graph nodes (the start of an edge leaving each), for processes.network.search."""
    first = np.full(g.n, -1, np.int64)
    first[g.edge_u[::-1]] = np.arange(len(g.edge_u))[::-1]
    return nw.Snapped(first[nodes], np.zeros(len(nodes)), np.zeros(len(nodes)))


def bench_sejong(conn: Any, mode: str, rng: np.random.Generator, n_many: int = 30) -> dict[str, float]:
    """Our search vs pgr_dijkstraCost on network.sejong_edges: one facility and every node, then n x n pairs."""
    g = nw.load_graph(conn, "sejong", mode, -1)
    main = np.flatnonzero(g.in_main & (np.bincount(g.edge_u, minlength=g.n) > 0))
    f, r = nw.cost_columns(mode)
    edges_sql = (f"SELECT id, source, target, coalesce({f}, -1) AS cost, coalesce({r}, -1) AS reverse_cost "
                 f"FROM network.sejong_edges")
    target = rng.choice(main, 1)
    ours1, reach = _best(lambda: nw.search(g, _at_nodes(g, target)))
    starts = np.setdiff1d(np.flatnonzero(g.in_main), target)
    with conn.cursor() as cur:
        def pgr1() -> list[Any]:
            # one-to-many from the facility: one Dijkstra in pgRouting too; KAIS costs are symmetric in every mode
            # (no one-way data), so times from the facility equal ours to it
            cur.execute("SELECT end_vid, agg_cost FROM pgr_dijkstraCost(%s, %s::bigint, %s::bigint[], true)",
                        (edges_sql, int(g.node_ids[target[0]]), g.node_ids[starts].tolist()))
            return cur.fetchall()
        pg1, rows = _best(pgr1)
    theirs = dict(rows)
    diff1 = max(abs(reach.node_time[s] - theirs[int(g.node_ids[s])]) for s in starts)
    srcs, dsts = rng.choice(main, n_many, replace=False), rng.choice(main, n_many, replace=False)

    def ours_many() -> np.ndarray:
        return np.stack([nw.search(g, _at_nodes(g, np.array([d]))).node_time[srcs] for d in dsts], axis=1)

    oursn, mat = _best(ours_many)
    with conn.cursor() as cur:
        def pgrn() -> list[Any]:
            cur.execute("SELECT start_vid, end_vid, agg_cost FROM pgr_dijkstraCost(%s, %s::bigint[], %s::bigint[], "
                        "true)", (edges_sql, g.node_ids[srcs].tolist(), g.node_ids[dsts].tolist()))
            return cur.fetchall()
        pgn, rows = _best(pgrn)
    col = {int(g.node_ids[d]): j for j, d in enumerate(dsts)}
    row = {int(g.node_ids[s]): i for i, s in enumerate(srcs)}
    diffn = max((abs(mat[row[a], col[b]] - c) for a, b, c in rows), default=0.0)
    missing = int(np.isfinite(mat).sum()) - len(rows) - int(np.isin(srcs, dsts).sum())
    print(f"sejong {mode:4s} nodes {g.n:5d} | 1 facility <-> every node: ours {ours1 * 1000:6.1f} ms, "
          f"pgr_dijkstraCost {pg1 * 1000:7.1f} ms (x{pg1 / ours1:5.1f}), max |diff| {diff1:.2e} s | "
          f"{n_many}x{n_many}: ours {oursn * 1000:6.1f} ms, pgr {pgn * 1000:7.1f} ms (x{pgn / oursn:5.1f}), "
          f"max |diff| {diffn:.2e} s, pairs only one side reached: {missing}")
    return {"ours_one": ours1, "pgr_one": pg1, "diff_one": diff1, "ours_many": oursn, "pgr_many": pgn,
            "diff_many": diffn}


def main() -> None:
    """Run the whole benchmark (or only `paju` or `sejong`)."""
    only = sys.argv[1] if len(sys.argv) > 1 else None
    dsn = os.environ["DATABASE_URL"]
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    if only in (None, "sejong"):
        with conn.cursor() as cur:
            cur.execute("SELECT quality -> 'network' ->> 'label' FROM meta.datasets "
                        "WHERE table_name = 'network.sejong_edges'")
            row = cur.fetchone()
        print(f"Sejong road network ({row[0] if row else 'not loaded'}, 행정안전부 도로명주소); best of {REPEAT}")
        rng = np.random.default_rng(7)
        for mode in nw.MODES:
            bench_sejong(conn, mode, rng)
        if only == "sejong":
            return
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM network.paju_nodes")
        row = cur.fetchone()
    print(f"Paju-Unjeong walk network (OSM, ODbL): {row[0] if row else 0} nodes; best of {REPEAT}")
    rng = np.random.default_rng(1)
    g = nw.load_graph(conn, "paju", "walk", -1)
    roots = rng.choice(g.n, 40, replace=False)
    for mode in nw.MODES:
        bench_mode(conn, mode, roots)
    conn.close()
    job_overhead(dsn)


if __name__ == "__main__":
    main()
