"""The .osm / .osm.pbf reader (pyosmium) against the tested Overpass-JSON reader, on the real Paju-Unjeong network.

The bundled Overpass JSON is rewritten at test time into .osm XML and .osm.pbf with pyosmium's writer, loaded
under throwaway network names and compared with network.paju_edges/_nodes (the Overpass-JSON load).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import osmium
import psycopg2
import pytest
from osmium.osm import mutable
from psycopg2 import sql

from core.config import load_config
from loaders.core import RowStats
from loaders.errors import LoadError
from loaders.osm_network import BUNDLED, edges, load_network, read_osm

PAJU_JSON = next(rel for rel, name in BUNDLED.items() if name == "paju")
FORMATS = {"paju_xml": "paju.osm", "paju_pbf": "paju.osm.pbf"}
SUMS = ("length_m", "walk_s", "bike_s", "car_s", "car_reverse_s")


def write_osm(elements: list[dict[str, Any]], path: Path) -> None:
    """Overpass JSON elements -> an OSM file (format by suffix), nodes then ways, each sorted by id."""
    writer = osmium.SimpleWriter(str(path))
    try:
        for el in sorted((e for e in elements if e["type"] == "node"), key=lambda e: e["id"]):
            writer.add_node(mutable.Node(id=el["id"], location=(el["lon"], el["lat"]), tags=el.get("tags") or {},
                                         version=1))
        for el in sorted((e for e in elements if e["type"] == "way"), key=lambda e: e["id"]):
            writer.add_way(mutable.Way(id=el["id"], nodes=el["nodes"], tags=el.get("tags") or {}, version=1))
    finally:
        writer.close()


def _drop(conn: Any, name: str) -> None:
    tables = [f"network.{name}_edges", f"network.{name}_nodes"]
    with conn.cursor() as cur:
        for t in tables:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*t.split("."))))
        cur.execute("DELETE FROM meta.datasets WHERE table_name = ANY(%s)", (tables,))


@pytest.fixture(scope="module")
def conn(dsn: str, loaded: dict[str, int]) -> Iterator[Any]:
    """An autocommit connection; the bundled data (network.paju from Overpass JSON) is loaded."""
    assert loaded.get("network.paju_edges", 0) > 20_000
    c = psycopg2.connect(dsn)
    c.autocommit = True
    yield c
    c.close()


@pytest.fixture(scope="module")
def osm_loads(dsn: str, conn: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, int]]]:
    """network.paju_xml / network.paju_pbf loaded from files written from the bundled JSON; dropped afterwards."""
    src = load_config().data.path() / PAJU_JSON
    elements = json.loads(src.read_text(encoding="utf-8"))["elements"]
    tmp = tmp_path_factory.mktemp("osm")
    out: dict[str, dict[str, int]] = {}
    try:
        for name, fname in FORMATS.items():
            path = tmp / fname
            write_osm(elements, path)
            out[name] = load_network(dsn, path, name)
        yield out
    finally:
        for name in FORMATS:
            _drop(conn, name)


def _summary(conn: Any, name: str) -> dict[str, Any]:
    table = sql.Identifier("network", f"{name}_edges")
    sums = sql.SQL(", ").join(sql.SQL("sum({})").format(sql.Identifier(c)) for c in SUMS)
    with conn.cursor() as cur:
        cur.execute(sql.SQL(
            "SELECT count(*), {}, "
            "count(*) FILTER (WHERE car_s IS NOT NULL AND car_reverse_s IS NULL), "
            "count(*) FILTER (WHERE car_s IS NULL AND car_reverse_s IS NOT NULL), "
            "count(*) FILTER (WHERE car_s IS NOT NULL AND car_reverse_s IS NOT NULL), "
            "count(*) FILTER (WHERE walk_s IS NULL), count(*) FILTER (WHERE bike_s IS NULL) FROM {}"
        ).format(sums, table))
        row = cur.fetchone()
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("network", f"{name}_nodes")))
        n_nodes = cur.fetchone()[0]
    keys = ["edges", *SUMS, "forward_only", "backward_only", "two_way", "no_walk", "no_bike"]
    return {**dict(zip(keys, row, strict=True)), "nodes": n_nodes}


@pytest.mark.parametrize("name", list(FORMATS))
def test_osm_file_matches_overpass_json(conn: Any, osm_loads: dict[str, dict[str, int]], name: str) -> None:
    ref, got = _summary(conn, "paju"), _summary(conn, name)
    assert osm_loads[name] == {f"network.{name}_edges": ref["edges"], f"network.{name}_nodes": ref["nodes"]}
    assert got["edges"] == ref["edges"] > 20_000 and got["nodes"] == ref["nodes"]
    for col in SUMS:
        assert float(got[col]) == pytest.approx(float(ref[col]), rel=1e-3), col
    for key in ("forward_only", "backward_only", "two_way", "no_walk", "no_bike"):
        assert got[key] == ref[key], key
    assert ref["forward_only"] > 0  # the network really has one-way roads to compare
    with conn.cursor() as cur:  # edge by edge: same segments, same one-way / mode pattern
        cur.execute(sql.SQL(
            "SELECT count(*) FROM network.paju_edges r FULL JOIN {} g "
            "ON (g.osm_way_id, g.source, g.target) = (r.osm_way_id, r.source, r.target) "
            "WHERE g.id IS NULL OR r.id IS NULL OR abs(g.length_m - r.length_m) > 0.01 "
            "OR (g.car_s IS NULL) <> (r.car_s IS NULL) OR (g.car_reverse_s IS NULL) <> (r.car_reverse_s IS NULL) "
            "OR (g.walk_s IS NULL) <> (r.walk_s IS NULL) OR (g.bike_s IS NULL) <> (r.bike_s IS NULL)"
        ).format(sql.Identifier("network", f"{name}_edges")))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT rows_loaded, attribution FROM meta.datasets WHERE table_name = %s",
                    (f"network.{name}_edges",))
        assert cur.fetchone() == (ref["edges"], "© OpenStreetMap contributors (ODbL)")


def test_missing_node_does_not_bridge_the_gap(tmp_path: Path) -> None:
    """A way through a node absent from the file yields no edge across it (as in the Overpass-JSON reader)."""
    path = tmp_path / "gap.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    try:
        for nid, lon in ((1, 126.0), (3, 126.002), (4, 126.003)):
            writer.add_node(mutable.Node(id=nid, location=(lon, 37.0), version=1))
        writer.add_way(mutable.Way(id=10, nodes=[1, 2, 3, 4], tags={"highway": "footway"}, version=1))
    finally:
        writer.close()
    nodes, ways = read_osm(path)
    assert [(r["source"], r["target"]) for r in edges(nodes, ways, RowStats())] == [(3, 4)]


def test_unreadable_osm_file_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.osm.pbf"
    path.write_bytes(b"not a pbf")
    with pytest.raises(LoadError, match=r"broken\.osm\.pbf: not a readable OSM file"):
        read_osm(path)
