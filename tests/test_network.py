"""Road-network loader and engine on the real Paju-Unjeong OSM network, checked against pgRouting."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg2
import pytest

from loaders.osm_network import car_speed, load_bundled_networks, oneway, walkable
from processes import network as nw


@pytest.fixture(scope="module")
def paju(dsn: str, loaded: dict[str, int]) -> dict[str, int]:
    """The bundled Paju network and demand layers (skipped when unchanged)."""
    return load_bundled_networks(dsn)


@pytest.fixture(scope="module")
def conn(dsn: str, paju: dict[str, int]) -> Any:
    """A connection."""
    c = psycopg2.connect(dsn)
    c.autocommit = True
    yield c
    c.close()


def test_tags() -> None:
    assert walkable({"highway": "footway"}) and not walkable({"highway": "motorway"})
    assert not walkable({"highway": "residential", "access": "private"})
    assert car_speed({"highway": "residential"}) == 30 and car_speed({"highway": "footway"}) is None
    assert car_speed({"highway": "primary", "maxspeed": "60"}) == 60
    assert oneway({"oneway": "yes"}) == 1 and oneway({"oneway": "-1"}) == -1 and oneway({"junction": "roundabout"})


def test_loaded_catalog(paju: dict[str, int], conn: Any) -> None:
    assert paju["network.paju_edges"] > 20_000
    with conn.cursor() as cur:
        cur.execute("SELECT attribution, rows_loaded FROM meta.datasets WHERE table_name = 'network.paju_edges'")
        attribution, rows = cur.fetchone()
        assert attribution == "© OpenStreetMap contributors (ODbL)" and rows == paju["network.paju_edges"]
        cur.execute("SELECT count(*) FROM network.paju_nodes")
        assert cur.fetchone()[0] > 20_000
        cur.execute("SELECT count(*) FILTER (WHERE car_s IS NULL AND car_reverse_s IS NOT NULL), "
                    "count(*) FILTER (WHERE walk_s IS NULL), ST_SRID(min(geom)::geometry) FROM network.paju_edges")
        _, no_walk, srid = cur.fetchone()
        assert srid == 5186 and no_walk < 100
        cur.execute("SELECT sum(voters), count(*) FROM public.paju_emd")
        voters, n = cur.fetchone()
        assert n == 20 and voters > 300_000


def _pgr_edges(mode: str) -> str:
    f, r = nw.cost_columns(mode)
    return (f"SELECT id, source, target, coalesce({f}, -1) AS cost, coalesce({r}, -1) AS reverse_cost "
            f"FROM network.paju_edges")


@pytest.mark.parametrize("mode", ["walk", "bike", "car"])
def test_times_agree_with_pgr_dijkstra_cost(conn: Any, mode: str) -> None:
    g = nw.CACHE.get(conn, "paju", mode)
    rng = np.random.default_rng(4)
    main = np.flatnonzero(g.in_main)
    targets = rng.choice(main, 4, replace=False)
    starts = rng.choice(main, 25, replace=False)
    for t in targets:
        dist, _ = nw.times_to_nodes(g, np.array([t]))
        with conn.cursor() as cur:
            cur.execute("SELECT start_vid, agg_cost FROM pgr_dijkstraCost(%s, %s::bigint[], %s::bigint, true)",
                        (_pgr_edges(mode), [int(g.node_ids[s]) for s in starts], int(g.node_ids[t])))
            theirs = dict(cur.fetchall())
        assert len(theirs) >= len(starts) - 1  # the start equal to the target has no row
        for s in starts:
            if s == t:
                continue
            assert dist[s] == pytest.approx(theirs[int(g.node_ids[s])], rel=0.01)


def test_multi_source_agrees_with_pgr_driving_distance(conn: Any) -> None:
    g = nw.CACHE.get(conn, "paju", "walk")
    roots = np.flatnonzero(g.in_main)[::997][:12]
    dist, _ = nw.times_to_nodes(g, roots, limit=900)
    with conn.cursor() as cur:
        cur.execute("SELECT node, agg_cost, from_v FROM pgr_drivingDistance(%s, %s::bigint[], 900, false, true)",
                    (_pgr_edges("walk"), [int(g.node_ids[r]) for r in roots]))
        rows = cur.fetchall()
    assert len(rows) > 1000
    reached = np.flatnonzero(np.isfinite(dist))
    assert abs(len(reached) - len(rows)) <= len(rows) * 0.01
    idx = g.node_index(np.array([r[0] for r in rows], dtype=np.int64))
    ours = dist[idx]
    theirs = np.array([r[1] for r in rows])
    bad = np.flatnonzero(~np.isclose(ours, theirs, rtol=0.01, atol=0.5))
    assert len(bad) <= len(rows) // 1000  # pgRouting 3.4's equicost split is not always exact
    for b in bad:  # arbitrate with pgr_dijkstraCost from every root: our value is the true minimum
        with conn.cursor() as cur:
            cur.execute("SELECT min(agg_cost) FROM pgr_dijkstraCost(%s, %s::bigint[], %s::bigint, false)",
                        (_pgr_edges("walk"), [int(g.node_ids[r]) for r in roots], int(rows[b][0])))
            assert ours[b] == pytest.approx(cur.fetchone()[0], rel=0.01)


def test_snap_and_point_times(conn: Any) -> None:
    g = nw.CACHE.get(conn, "paju", "walk")
    with conn.cursor() as cur:
        cur.execute("SELECT ST_X(geom), ST_Y(geom) FROM network.paju_nodes ORDER BY id LIMIT 200")
        xy = np.array(cur.fetchall(), dtype=float)
    far = np.vstack([xy[:3], [[0.0, 0.0]]])
    s = nw.snap(conn, g, far, 500)
    assert s.ok.tolist()[:3] == [bool(x) for x in s.ok[:3]] and not s.ok[3]
    fac = nw.snap(conn, g, xy[:2], 500)
    r = nw.search(g, fac)
    t, _ = nw.point_times(r, fac)
    assert np.all(t[fac.ok] < 1.0)  # a facility reaches itself in no time
