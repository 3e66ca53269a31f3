"""The Sejong road network from KAIS 도로구간 (TL_SPRD_MANAGE): noding on the real file and on derived files,
costs by road class, refused loads, and Sejong analyses running on it by default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import psycopg2
import pytest
import requests
import shapely
from process_helpers import points

from core.config import load_config
from loaders.core import drop_table
from loaders.errors import LoadError
from loaders.kais_network import load_kais_network

KAIS = load_config().data.path() / "sejong/roads-kais-2023/Z_KAIS_TL_SPRD_MANAGE_36110.shp"
TINY = "kais_tiny"
SEJONG_CFG = load_config().networks["sejong"]


@pytest.fixture(scope="module")
def conn(dsn: str, loaded: dict[str, int]) -> Iterator[Any]:
    """An autocommit connection to the loaded database (the bundled KAIS network included)."""
    assert loaded["network.sejong_edges"] > 8000
    c = psycopg2.connect(dsn)
    c.autocommit = True
    yield c
    c.close()


@pytest.fixture(scope="module")
def roads() -> gpd.GeoDataFrame:
    """The real file read independently of the loader, in EPSG:5186, one row per line part."""
    df = gpd.read_file(KAIS, encoding="cp949").to_crs(5186)
    return df.explode(index_parts=False).reset_index(drop=True)


def _report(conn: Any, name: str) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute("SELECT quality -> 'network' FROM meta.datasets WHERE table_name = %s", (f"network.{name}_edges",))
        return dict(cur.fetchone()[0])


def _graph(conn: Any, name: str) -> nx.MultiGraph:
    g = nx.MultiGraph()
    with conn.cursor() as cur:
        cur.execute(f"SELECT source, target, length_m FROM network.{name}_edges")
        for u, v, ln in cur.fetchall():
            g.add_edge(u, v, length=ln)
    return g


def test_noding_of_the_real_file(conn: Any, roads: gpd.GeoDataFrame) -> None:
    """Counts within SOURCE.md's ranges; the stored graph is one component holding ~95.6 % of the length."""
    rep = _report(conn, "sejong")
    assert rep["input_lines"] == len(roads) == 4118 and rep["label"] == "KAIS 도로구간 2023-08"
    assert 8_500 <= rep["noded_edges"] <= 9_300 and 7_700 <= rep["noded_nodes"] <= 8_400  # ~8,900 / ~8,100
    g = _graph(conn, "sejong")
    assert nx.is_connected(g)  # only the largest component is stored
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM network.sejong_nodes")
        assert cur.fetchone()[0] == g.number_of_nodes() == rep["nodes"]
        # every edge starts and ends exactly on its nodes
        cur.execute("SELECT count(*) FROM network.sejong_edges e JOIN network.sejong_nodes a ON a.id = e.source "
                    "JOIN network.sejong_nodes b ON b.id = e.target WHERE NOT ST_DWithin(ST_StartPoint(e.geom), "
                    "a.geom, 0.01) OR NOT ST_DWithin(ST_EndPoint(e.geom), b.geom, 0.01)")
        assert cur.fetchone()[0] == 0
    kept = sum(d["length"] for *_, d in g.edges(data=True))
    share = kept / float(roads.geometry.length.sum())
    assert 0.94 <= share <= 0.98  # SOURCE.md: ~95.6 %
    assert share == pytest.approx(rep["kept_share_of_length"], abs=0.001)
    assert rep["dropped_components"] >= 1 and rep["dropped_km"] == pytest.approx(
        float(roads.geometry.length.sum()) / 1000 - kept / 1000, abs=0.05)
    crossings = shapely.STRtree(roads.geometry.values).query(roads.geometry.values, predicate="crosses")
    assert rep["crossings_unconnected"] == int((crossings[0] < crossings[1]).sum()) > 1000


def test_unchanged_file_is_skipped(conn: Any, dsn: str) -> None:
    """The catalog holds sha256 of the shapefile's parts and of the settings: a second bundled load skips."""
    from loaders.kais_network import load_bundled_kais

    before = _fingerprint(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT sources FROM meta.datasets WHERE table_name = 'network.sejong_edges'")
        files = {s["file"]: s["sha256"] for s in cur.fetchone()[0]}
    stem = "sejong/roads-kais-2023/Z_KAIS_TL_SPRD_MANAGE_36110"
    assert set(files) == {f"{stem}{x}" for x in (".shp", ".shx", ".dbf", ".prj")} | {"config.yml networks"}
    assert all(len(h) == 64 for h in files.values())
    edges = before[2][2]["network"]["edges"]
    assert load_bundled_kais(dsn, load_config().data.path()) == {"network.sejong_edges": edges}
    assert _fingerprint(conn) == before


def _pieces_at(conn: Any, x: float, y: float, rds: int) -> tuple[set[int], int]:
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM network.sejong_nodes WHERE ST_DWithin(geom, ST_SetSRID(ST_MakePoint(%s, %s), "
                    "5186), 1.0)", (x, y))
        nodes = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT count(*) FROM network.sejong_edges WHERE rds_man_no = %s AND (source = ANY(%s) OR "
                    "target = ANY(%s))", (rds, list(nodes), list(nodes)))
        return nodes, cur.fetchone()[0]


def test_real_t_junction_splits_the_through_road(conn: Any, roads: gpd.GeoDataFrame) -> None:
    """An endpoint lying on another road's interior (found in the file here) becomes a node splitting that road."""
    lines = roads.geometry.values
    n = len(lines)
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    e, li = shapely.STRtree(lines).query(ends, predicate="dwithin", distance=0.01)
    d = shapely.line_locate_point(lines[li], ends[e])
    ok = ((e % n) != li) & (d > 50) & (d < shapely.length(lines[li]) - 50)
    checked = 0
    for k in np.flatnonzero(ok)[:40]:
        a, b = int(e[k] % n), int(li[k])
        p = ends[e[k]]
        nodes, through = _pieces_at(conn, p.x, p.y, int(roads.RDS_MAN_NO[b]))
        if not nodes:
            continue  # a junction in a dropped minor component
        _, side = _pieces_at(conn, p.x, p.y, int(roads.RDS_MAN_NO[a]))
        assert len(nodes) == 1 and through == 2 and side >= 1, (roads.RN[a], roads.RN[b])
        checked += 1
    assert checked >= 20


def test_real_overpass_stays_unconnected(conn: Any, roads: gpd.GeoDataFrame) -> None:
    """대로 cross roads without a junction (grade-separated): no node near the crossing, both roads stored there."""
    lines = roads.geometry.values
    hwy = np.flatnonzero(roads.ROA_CLS_SE.astype(int) <= 2)
    a, b = shapely.STRtree(lines).query(lines[hwy], predicate="crosses")
    ends = shapely.union_all(np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)]))
    checked = 0
    for i, j in zip(hwy[a], b, strict=True):
        p = shapely.intersection(lines[i], lines[j])
        if p.geom_type != "Point" or shapely.distance(p, ends) < 50:
            continue
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM network.sejong_nodes WHERE ST_DWithin(geom, "
                        "ST_SetSRID(ST_MakePoint(%s, %s), 5186), 20)", (p.x, p.y))
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT rds_man_no FROM network.sejong_edges "
                        "WHERE ST_DWithin(geom, ST_SetSRID(ST_MakePoint(%s, %s), 5186), 0.5)", (p.x, p.y))
            rows = [r[0] for r in cur.fetchall()]
        if not {int(roads.RDS_MAN_NO[i]), int(roads.RDS_MAN_NO[j])} <= set(rows):
            continue  # a road in a dropped component (the expressway: its ramps are not in the file)
        assert sorted(rows) == sorted([int(roads.RDS_MAN_NO[i]), int(roads.RDS_MAN_NO[j])])  # one piece each
        checked += 1
    assert checked >= 3


def test_costs_by_road_class(conn: Any) -> None:
    """Seconds per metre follow config.yml networks.sejong; no walking or cycling on 고속도로; car symmetric."""
    sp = SEJONG_CFG.speeds_kmh
    with conn.cursor() as cur:
        cur.execute("SELECT road_class, count(*), count(walk_s), count(bike_s), "
                    "max(abs(walk_s / length_m - 3.6 / %s)) FILTER (WHERE walk_s IS NOT NULL AND length_m > 1), "
                    "min(length_m / car_s * 3.6) FILTER (WHERE length_m > 1), "
                    "max(length_m / car_s * 3.6) FILTER (WHERE length_m > 1), "
                    "count(*) FILTER (WHERE car_s IS DISTINCT FROM car_reverse_s) "
                    "FROM network.sejong_edges GROUP BY 1 ORDER BY 1", (sp["walk"][2],))
        rows = {r[0]: r[1:] for r in cur.fetchall()}
    # the expressway (class 1) has no ramps in the file: an isolated component, dropped and reported (its costs are
    # checked on the derived file below)
    assert set(rows) == {2, 3, 4} and _report(conn, "sejong")["dropped_km"] > 15
    for cls in (2, 3, 4):
        n, walk, bike, err, *_, asym = rows[cls]
        assert walk == bike == n and err < 1e-3 and asym == 0
    with conn.cursor() as cur:  # 길 of known width >= 4 m, not a cycle path: 30 km/h; narrower: 20; < 2.75 m: no cars
        cur.execute("SELECT round((length_m / car_s * 3.6)::numeric, 3), count(*) FROM network.sejong_edges WHERE "
                    "road_class = 4 AND name NOT LIKE '%%자전거%%' AND length_m > 1 AND car_s IS NOT NULL "
                    "GROUP BY 1 ORDER BY 1")
        assert dict(cur.fetchall()).keys() == {20, 30}
        cur.execute("SELECT count(*), count(car_s) FROM network.sejong_edges WHERE name LIKE '%%자전거%%' "
                    "OR (road_width_m > 0 AND road_width_m < 2.75)")
        closed, with_car = cur.fetchone()
        assert closed > 100 and with_car == 0


# a tiny network in EPSG:5181 far off the coast (no request's points fall in its hull):
# H through road, V1 a T-junction ending 0.5 m off H, V2 an expressway crossing H without a junction, C a
# path joining V2's top to V1's top, E a cycle path starting 0.6 m past H's end, X an isolated stub
ORIGIN = np.array([100000.0, 300000.0])
TINY_ROWS = [
    ("H", "3", 10.0, [(0, 0), (200, 0)]), ("V1", "4", 3.0, [(100, 0.5), (100, 100)]),
    ("V2", "1", 20.0, [(150, -50), (150, 50)]), ("C", "4", 2.0, [(150, 50), (100, 100)]),
    ("금강자전거길", "4", 3.0, [(200.6, 0), (300, 0)]), ("X", "4", 6.0, [(1000, 1000), (1010, 1000)]),
]


def _tiny_frame(rows: list[tuple[str, str, float, list[tuple[float, float]]]] = TINY_ROWS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"RN": [r[0] for r in rows], "ROA_CLS_SE": [r[1] for r in rows], "ROAD_BT": [r[2] for r in rows],
         "RDS_MAN_NO": list(range(1, len(rows) + 1)), "OPERT_DE": ["20230810104134"] * len(rows)},
        geometry=[shapely.LineString(np.array(r[3], dtype=float) + ORIGIN) for r in rows], crs=5181)


def _write(df: gpd.GeoDataFrame, path: Path, encoding: str) -> Path:
    df.to_file(path, driver="ESRI Shapefile", encoding=encoding)
    if encoding.lower() == "cp949":
        path.with_suffix(".cpg").unlink(missing_ok=True)  # as KAIS ships it: CP949 without a .cpg
    return path


@pytest.fixture()
def tiny(dsn: str, loaded: dict[str, int]) -> Iterator[str]:
    """Drops the tiny network's tables after the test."""
    yield TINY
    for t in (f"network.{TINY}_edges", f"network.{TINY}_nodes"):
        drop_table(dsn, t)


@pytest.mark.parametrize("encoding", ["cp949", "utf-8"])
def test_tiny_derived_file(tmp_path: Path, conn: Any, dsn: str, tiny: str, encoding: str) -> None:
    """T-junction split, snapped end, overpass unconnected, isolated stub dropped, costs; CP949 or UTF-8 + .cpg."""
    res = load_kais_network(dsn, _write(_tiny_frame(), tmp_path / "tiny.shp", encoding), tiny, SEJONG_CFG)
    rep = res["report"]
    assert (rep["dropped_components"], rep["dropped_edges"], rep["dropped_km"]) == (1, 1, pytest.approx(0.01))
    assert rep["t_junction_splits"] == 1 and rep["crossings_unconnected"] == 1
    with conn.cursor() as cur:
        cur.execute(f"SELECT rds_man_no, name, source, target, length_m, walk_s, bike_s, car_s, car_reverse_s "
                    f"FROM network.{tiny}_edges ORDER BY rds_man_no, id")
        edges = cur.fetchall()
        cur.execute(f"SELECT count(*) FROM network.{tiny}_nodes")
        n_nodes = cur.fetchone()[0]
    by = {}
    for r in edges:
        by.setdefault(r[0], []).append(r)
    assert [len(by.get(k, [])) for k in range(1, 7)] == [2, 1, 1, 1, 1, 0]  # H split once, V2 not, X dropped
    assert by[5][0][1] == "금강자전거길"  # decoded right in either encoding
    assert n_nodes == 7  # H's ends (E joined the second), the T node, V1's top, V2's ends, E's end
    g = nx.MultiGraph()
    for r in edges:
        g.add_edge(r[2], r[3], length=r[4])
    h1, h2 = by[1]
    assert len({h1[2], h1[3]} & {h2[2], h2[3]}) == 1  # the two halves of H meet at the T node ...
    t_node = ({h1[2], h1[3]} & {h2[2], h2[3]}).pop()
    assert t_node in {by[2][0][2], by[2][0][3]}  # ... where V1 ends
    assert {by[5][0][2], by[5][0][3]} & {h2[2], h2[3]}  # E's start snapped to H's end
    v2_bottom = by[3][0][2]
    h_end = ({h2[2], h2[3]} - {t_node}).pop()
    around = nx.shortest_path_length(g, v2_bottom, h_end, weight="length")
    assert around == pytest.approx(100 + 50 * 2**0.5 + 100 + 100, abs=2)  # not 100 m through the crossing
    (_, _, _, _, ln, walk, bike, car, rev), = by[3]  # the expressway: cars only, 100 km/h
    assert walk is None and bike is None and car == rev == pytest.approx(ln / (100 / 3.6), rel=1e-3)
    assert by[2][0][7] == pytest.approx(by[2][0][4] / (20 / 3.6), rel=1e-3)  # 3 m wide 길: narrow, 20 km/h
    assert by[4][0][7] is None and by[5][0][7] is None  # 2 m path and the cycle path: no cars
    assert h1[5] == pytest.approx(h1[4] / (4.5 / 3.6), rel=1e-3) and h1[7] == pytest.approx(h1[4] / (50 / 3.6),
                                                                                              rel=1e-3)


def _fingerprint(conn: Any) -> tuple[Any, ...]:
    with conn.cursor() as cur:
        cur.execute("SELECT md5(string_agg(e::text, ',' ORDER BY id)) FROM network.sejong_edges e")
        edges = cur.fetchone()[0]
        cur.execute("SELECT md5(string_agg(n::text, ',' ORDER BY id)) FROM network.sejong_nodes n")
        nodes = cur.fetchone()[0]
        cur.execute("SELECT data_version, sources, quality FROM meta.datasets WHERE table_name IN "
                    "('network.sejong_edges', 'network.sejong_nodes') ORDER BY table_name")
        return edges, nodes, *cur.fetchall()


def _without_class(tmp: Path) -> Path:
    return _write(gpd.read_file(KAIS, encoding="cp949").drop(columns=["ROA_CLS_SE"]), tmp / "nocls.shp", "cp949")


def _bad_class(tmp: Path) -> Path:
    df = gpd.read_file(KAIS, encoding="cp949")
    df.loc[df.index[:3], "ROA_CLS_SE"] = "9"
    return _write(df, tmp / "badcls.shp", "cp949")


def _empty(tmp: Path) -> Path:
    return _write(gpd.read_file(KAIS, encoding="cp949").iloc[:0], tmp / "empty.shp", "cp949")


def _no_prj(tmp: Path) -> Path:
    path = _write(_tiny_frame(), tmp / "noprj.shp", "cp949")
    path.with_suffix(".prj").unlink()
    return path


@pytest.mark.parametrize(("make", "message"), [
    (_without_class, "no column ROA_CLS_SE"), (_bad_class, "3 lines with road class ROA_CLS_SE not 1-4"),
    (_empty, "no road lines"), (_no_prj, "no coordinate system"),
])
def test_refused_file_leaves_the_network_intact(tmp_path: Path, conn: Any, dsn: str, make: Any,
                                                message: str) -> None:
    before = _fingerprint(conn)
    with pytest.raises(LoadError, match=message):
        load_kais_network(dsn, make(tmp_path), "sejong", SEJONG_CFG)
    assert _fingerprint(conn) == before


def test_name_of_an_osm_network_is_refused(tmp_path: Path, conn: Any, dsn: str) -> None:
    """Loading over a network of the other layout (paju, OSM) is refused in the database step; paju is unchanged."""
    with conn.cursor() as cur:
        cur.execute("SELECT data_version, (SELECT count(*) FROM network.paju_edges) FROM meta.datasets "
                    "WHERE table_name = 'network.paju_edges'")
        before = cur.fetchone()
    with pytest.raises(LoadError, match="other columns"):
        load_kais_network(dsn, _write(_tiny_frame(), tmp_path / "t.shp", "cp949"), "paju", SEJONG_CFG)
    with conn.cursor() as cur:
        cur.execute("SELECT data_version, (SELECT count(*) FROM network.paju_edges) FROM meta.datasets "
                    "WHERE table_name = 'network.paju_edges'")
        assert cur.fetchone() == before


def test_bike_stations_accessibility_runs_on_the_network(live_server: str, conn: Any) -> None:
    """Through the live server: the Sejong request picks the KAIS network by default and says so; every reached
    point's time is at least its straight-line distance to the nearest station at walking speed."""
    with conn.cursor() as cur:
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), 400, 11))).geom "
                    "p FROM public.admin_areas) s")
        xy = np.array(cur.fetchall(), dtype=float)
        cur.execute("SELECT ST_X(geom), ST_Y(geom) FROM public.bike_stations")
        st = np.array(cur.fetchall(), dtype=float)
    body = {"inputs": {"facility_type": "bike_station", "facilities": {"layer": "bike_stations"},
                       "demand": points(xy), "outputs": ["summary", "demand"]}}
    resp = requests.post(f"{live_server}/processes/accessibility/execution", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    s = out["summary"]
    assert s["network"] == "sejong" and s["mode"] == "walk" and s["minutes"] == [5]
    assert s["method"] == ("network sejong (KAIS 도로구간 2023-08, no one-way data; walk; snap distance walked at "
                           "4.5 km/h)")
    assert any("not connected" in n for n in s["network_notes"])
    straight = np.min(np.hypot(xy[:, None, 0] - st[None, :, 0], xy[:, None, 1] - st[None, :, 1]), axis=1)
    times = {int(f["properties"]["unit_id"]): f["properties"]["nearest_time_min"] for f in out["demand"]["features"]}
    reached = [i for i, t in times.items() if t is not None]
    assert len(reached) > 300
    for i in reached:
        assert times[i] * 60 + 0.31 >= straight[i] / (4.5 / 3.6), i  # times are rounded to 0.01 min
    car = requests.post(f"{live_server}/processes/accessibility/execution", timeout=120, json={"inputs": {
        **body["inputs"], "mode": "car", "minutes": [3], "outputs": ["summary"]}}).json()["summary"]
    assert "(KAIS 도로구간 2023-08, no one-way data; car" in car["method"]
    assert any("symmetric" in n for n in car["network_notes"])


def test_cli_reports_the_noding_and_refuses_a_bad_file(tmp_path: Path, dsn: str, tiny: str) -> None:
    """`./run load kais-network FILE --name NAME`: tables and the noding report on stdout, progress on stderr;
    a bad file exits 1 saying nothing changed."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, DATABASE_URL=dsn)
    cmd = [sys.executable, "-m", "loaders.kais_network"]
    ok = subprocess.run([*cmd, str(_write(_tiny_frame(), tmp_path / "t.shp", "cp949")), "--name", tiny], env=env,
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.strip().splitlines()
    assert lines[:2] == [f"network.{tiny}_edges\t6", f"network.{tiny}_nodes\t7"]
    report = json.loads(lines[2])
    assert (report["components"], report["dropped_edges"], report["t_junction_splits"]) == (2, 1, 1)
    assert "dropped 1 components, 1 edges, 0.0 km" in ok.stderr
    bad = _tiny_frame().drop(columns=["ROAD_BT"])
    res = subprocess.run([*cmd, str(_write(bad, tmp_path / "b.shp", "cp949")), "--name", tiny], env=env,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 1 and "no column ROAD_BT" in res.stderr and "nothing was changed" in res.stderr
