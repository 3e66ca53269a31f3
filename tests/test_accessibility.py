"""Process `accessibility` on the real Paju network and Sejong layers: brute-force agreement and bad inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg2
import pytest
from process_helpers import points, run_process

from processes.access_meta import PROCESS_METADATA


@pytest.fixture(scope="module")
def pc(app):  # type: ignore[no-untyped-def]
    """Test client of the app (Processes routes included; bundled data and the Paju network loaded)."""
    return app.test_client()


def _run(pc: Any, inputs: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return run_process(pc, "/processes/accessibility/execution", inputs, status)


_points = points


def test_examples_run(pc: Any) -> None:
    for ex in PROCESS_METADATA["examples"]:
        out = _run(pc, ex["inputs"])
        assert out["summary"]["thresholds"] and out["summary"]["demand"]["total_weight"] > 0
    paju = _run(pc, PROCESS_METADATA["example"]["inputs"])
    assert paju["summary"]["method"].startswith("network paju")
    assert {a["name"] for a in paju["by_area"]} == {"운정1동", "운정2동", "운정3동"}
    sejong = _run(pc, PROCESS_METADATA["examples"][1]["inputs"])  # Sejong runs on the KAIS network by default
    assert sejong["summary"]["method"].startswith("network sejong (KAIS 도로구간 2023-08, no one-way data; walk")
    straight = _run(pc, {**PROCESS_METADATA["examples"][1]["inputs"], "network": "none"})
    assert straight["summary"]["method"] == 'straight-line × 1.3 (network "none" requested)'


def test_coverage_matches_brute_force_pgrouting(pc: Any, dsn: str) -> None:
    """Facilities and demand on network nodes: coverage equals a per-pair pgr_dijkstraCost minimum."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT n.id, ST_X(n.geom), ST_Y(n.geom) FROM network.paju_nodes n "
                    "WHERE n.geom && ST_Expand((SELECT ST_Centroid(ST_Extent(geom)) FROM network.paju_nodes), 700) "
                    "AND EXISTS (SELECT 1 FROM network.paju_edges e WHERE (e.source = n.id OR e.target = n.id) "
                    "AND e.highway IN ('residential', 'tertiary', 'footway')) ORDER BY n.id")
        rows = cur.fetchall()
        rng = np.random.default_rng(7)
        pick = rng.choice(len(rows), 43, replace=False)
        fac, dem = [rows[i] for i in pick[:3]], [rows[i] for i in pick[3:]]
        cur.execute("SELECT start_vid, min(agg_cost) FROM pgr_dijkstraCost('SELECT id, source, target, "
                    "coalesce(walk_s, -1) AS cost, coalesce(walk_s, -1) AS reverse_cost FROM network.paju_edges', "
                    "%s::bigint[], %s::bigint[], false) GROUP BY start_vid",
                    ([r[0] for r in dem], [r[0] for r in fac]))
        best = dict(cur.fetchall())
    conn.close()
    weights = [float(i + 1) for i in range(len(dem))]
    t = np.array([best.get(r[0], 0.0 if r[0] in {f[0] for f in fac} else np.inf) for r in dem])
    out = _run(pc, {"facilities": _points(np.array([[r[1], r[2]] for r in fac])),
                    "demand": _points(np.array([[r[1], r[2]] for r in dem]), weights), "mode": "walk",
                    "minutes": [3, 6, 10], "network": "paju", "outputs": ["summary", "demand"]})
    for th in out["summary"]["thresholds"]:
        expected = sum(w for w, tt in zip(weights, t, strict=True) if tt <= th["minutes"] * 60 + 1e-6)
        assert th["covered_weight"] == pytest.approx(expected, abs=1e-6)
    ours = [f["properties"]["nearest_time_min"] for f in out["demand"]["features"]]
    assert np.allclose(np.array(ours) * 60, t, atol=1.0, rtol=0.01)


def test_straight_line_brute_force(pc: Any) -> None:
    xy = np.array([[987000.0, 1838000.0], [988000.0, 1839000.0]])
    grid = np.array([[987000 + dx, 1838000 + dy] for dx in range(-900, 2000, 300) for dy in range(-900, 2000, 300)],
                    dtype=float)
    out = _run(pc, {"facilities": _points(xy), "demand": _points(grid), "mode": "bike", "minutes": [1, 2],
                    "network": "none", "outputs": ["summary"]})
    d = np.min(np.hypot(grid[:, None, 0] - xy[None, :, 0], grid[:, None, 1] - xy[None, :, 1]), axis=1)
    secs = d * 1.3 / (15 / 3.6)
    for th in out["summary"]["thresholds"]:
        assert th["covered_weight"] == int((secs <= th["minutes"] * 60).sum())


def test_store_result_layers(pc: Any, dsn: str) -> None:
    out = _run(pc, {"facility_type": "bike_station", "facilities": {"layer": "bike_stations"},
                    "demand": {"grid": {"cell_m": 1000, "area": "admin_areas"}}, "store": True,
                    "outputs": ["summary"]})
    layers = out["summary"]["layers"]
    assert {lyr["id"].rsplit("_", 1)[-1] for lyr in layers} == {"demand", "isochrones", "gaps"}
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        for lyr in layers:
            cur.execute("SELECT table_name, expires_at > now() FROM meta.result_layers WHERE layer_id = %s",
                        (lyr["id"],))
            table, alive = cur.fetchone()
            cur.execute(f"SELECT count(*), min(ST_SRID(geom)) FROM {table}")
            n, srid = cur.fetchone()
            assert alive and n > 0 and srid == 5186
    conn.close()


GOOD: dict[str, Any] = {"facilities": {"layer": "bike_stations"},
                        "demand": {"layer": "admin_areas", "weight": "voters"}}


@pytest.mark.parametrize(("change", "says"), [
    ({"facilities": {"layer": "nope"}}, "unknown layer"),
    ({"mode": "teleport"}, "walk, bike or car"),
    ({"minutes": -5}, "above 0"),
    ({"minutes": 100000}, "at most"),
    ({"minutes": []}, "minutes"),
    ({"facilities": {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point"}}]}},
     "valid GeoJSON"),
    ({"facilities": {"type": "Point", "coordinates": [500, 500]}}, "outside lon/lat"),
    ({"facilities": {"type": "Polygon", "coordinates": [[[127, 36], [127.1, 36], [127.1, 36.1], [127, 36]]]}},
     "only Point"),
    ({"demand": {"type": "MultiPoint", "coordinates": [[127.0, 36.5]] * 60000}}, "more than"),
    ({"demand": {"grid": {"cell_m": 20, "area": "admin_areas"}}}, "larger cell_m"),
    ({"facilities": {"layer": "bike_stations", "filter": "no_such_property = 1"}}, "no_such_property"),
    ({"demand": {"layer": "admin_areas", "weight": "name"}}, "numeric property"),
    ({"network": "atlantis"}, "not loaded"),
    ({"facility_type": "casino"}, "unknown"),
    ({"outputs": ["everything"]}, "outputs"),
])
def test_bad_inputs(pc: Any, change: dict[str, Any], says: str) -> None:
    body = _run(pc, {**GOOD, **change}, 400)
    assert says in body["description"], body["description"]
