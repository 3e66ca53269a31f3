"""`python -m loaders.osm_network FILE --name NAME`: OpenStreetMap roads -> network.<name>_edges/_nodes (atomic).

Reads Overpass JSON (``{"elements": [...]}``) and, through pyosmium, ``.osm``/``.osm.pbf``. Every way segment
between two consecutive OSM nodes becomes one edge with its length and travel time per mode (seconds):
walking 4.5 km/h on ways a pedestrian may use, cycling 15 km/h on ways a bicycle may use, driving by
``maxspeed`` or the highway class with one-way respected (``car_s`` forward, ``car_reverse_s`` backward;
NULL where the mode may not pass). Both tables are swapped in with their catalog rows in one transaction.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyproj import Transformer

from core.config import NoDatabase, database_url, load_config
from loaders import network_store
from loaders.core import (
    Column,
    Meta,
    RowStats,
    SourceFile,
    TableSpec,
)
from loaders.errors import LoadError
from loaders.network_store import unchanged, write_network
from loaders.recipes import sha256
from loaders.textio import decode_file

WALK_KMH = 4.5  # 국토모니터링 convention (10 min = 750 m)
BIKE_KMH = 15.0
ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
LICENCE = "ODbL 1.0"
# Korean urban speed limits "안전속도 5030" (50 km/h arterials, 30 km/h residential); motorway/trunk typical limits
CAR_KMH: dict[str, float] = {
    "motorway": 100, "trunk": 80, "primary": 50, "secondary": 50, "tertiary": 40, "unclassified": 30,
    "residential": 30, "living_street": 10, "service": 20, "road": 30,
    "motorway_link": 60, "trunk_link": 50, "primary_link": 40, "secondary_link": 40, "tertiary_link": 30,
}
WALK_HIGHWAYS = {
    "footway", "path", "pedestrian", "steps", "living_street", "residential", "service", "unclassified", "tertiary",
    "tertiary_link", "secondary", "secondary_link", "primary", "primary_link", "trunk", "trunk_link", "track",
    "cycleway", "road", "corridor", "bridleway", "elevator", "crossing", "platform",
}
BIKE_HIGHWAYS = {
    "path", "cycleway", "living_street", "residential", "service", "unclassified", "tertiary", "tertiary_link",
    "secondary", "secondary_link", "primary", "primary_link", "track", "road",
}
NO = {"no", "private"}
YES = {"yes", "designated", "permissive", "official"}
BUNDLED: dict[str, str] = {"networks/paju-unjeong/paju-unjeong-walk.overpass.json": "paju"}
PAJU_EMD_FILE = "korea/boundaries-kostat-2018/skorea-submunicipalities-2018-topo.json"
VOTERS_FILE = "korea/voters-2022/vote_emd.tsv"


@dataclass
class Way:
    """An OSM way: id, tags and node ids."""

    id: int
    tags: dict[str, str]
    nodes: list[int]


def edge_spec(name: str) -> TableSpec:
    """network.<name>_edges: the shared routing columns plus the OSM way's."""
    return network_store.edge_spec(name, "OSM node id", "NULL where forbidden", [
        Column("highway", "text", "OSM highway"), Column("osm_way_id", "bigint", "OSM way id"),
        Column("name", "text", "name")])


def node_spec(name: str) -> TableSpec:
    """network.<name>_nodes."""
    return network_store.node_spec(name, "OSM node id")


def read_overpass(path: Path) -> tuple[dict[int, tuple[float, float]], list[Way]]:
    """Nodes (lon, lat) and highway ways from an Overpass JSON response."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path.name}: not a readable Overpass JSON file ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("elements"), list):
        raise LoadError(f"{path.name}: no 'elements' array (expected an Overpass API JSON response)")
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[Way] = []
    for el in doc["elements"]:
        if el.get("type") == "node":
            nodes[int(el["id"])] = (float(el["lon"]), float(el["lat"]))
        elif el.get("type") == "way" and "highway" in (el.get("tags") or {}):
            ways.append(Way(int(el["id"]), dict(el["tags"]), [int(n) for n in el.get("nodes", [])]))
    return nodes, ways


def read_osm(path: Path) -> tuple[dict[int, tuple[float, float]], list[Way]]:
    """Nodes and highway ways from .osm / .osm.pbf via pyosmium."""
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise LoadError("reading .osm/.pbf needs pyosmium: pip install osmium") from exc
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[Way] = []
    try:
        for obj in osmium.FileProcessor(str(path)).with_locations():
            if isinstance(obj, osmium.osm.Way) and "highway" in obj.tags:
                ids = []
                for n in obj.nodes:
                    if n.location.valid():
                        nodes[n.ref] = (n.location.lon, n.location.lat)
                    ids.append(n.ref)  # keep nodes missing from the file so no edge bridges the gap
                ways.append(Way(obj.id, {t.k: t.v for t in obj.tags}, ids))
    except RuntimeError as exc:  # osmium's open/parse errors
        raise LoadError(f"{path.name}: not a readable OSM file ({exc})") from exc
    return nodes, ways


def read_any(path: Path) -> tuple[dict[int, tuple[float, float]], list[Way]]:
    """Dispatch on the file name."""
    low = path.name.lower()
    if low.endswith((".osm", ".osm.pbf", ".pbf", ".osm.bz2", ".osm.gz")):
        return read_osm(path)
    return read_overpass(path)


def walkable(t: Mapping[str, str]) -> bool:
    """May a pedestrian use this way?"""
    if t.get("foot") in NO or (t.get("area") == "yes" and t.get("highway") != "pedestrian"):
        return False
    if t.get("access") in NO and t.get("foot") not in YES:
        return False
    return t.get("highway") in WALK_HIGHWAYS or t.get("foot") in YES


def cyclable(t: Mapping[str, str]) -> bool:
    """May a bicycle use this way?"""
    if t.get("bicycle") in NO or (t.get("access") in NO and t.get("bicycle") not in YES):
        return False
    return t.get("highway") in BIKE_HIGHWAYS or t.get("bicycle") in YES


def car_speed(t: Mapping[str, str]) -> float | None:
    """Driving speed (km/h), None where cars may not pass."""
    hw = t.get("highway", "")
    if hw not in CAR_KMH or t.get("motor_vehicle") in NO or t.get("motorcar") in NO:
        return None
    if t.get("access") in NO and t.get("motor_vehicle") not in YES:
        return None
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", t.get("maxspeed", ""))
    if m:
        return float(m.group(1)) * (1.609344 if m.group(2) else 1.0)
    return CAR_KMH[hw]


def oneway(t: Mapping[str, str]) -> int:
    """1 forward only, -1 backward only, 0 both ways (for cars)."""
    v = t.get("oneway", "")
    if v in ("-1", "reverse"):
        return -1
    if v in ("yes", "true", "1") or (not v and (t.get("junction") in ("roundabout", "circular")
                                                   or t.get("highway") == "motorway")):
        return 1
    return 0


def edges(nodes: dict[int, tuple[float, float]], ways: Iterable[Way], stats: RowStats) -> Iterator[dict[str, Any]]:
    """One edge row per way segment usable by at least one mode."""
    to5186 = Transformer.from_crs(4326, 5186, always_xy=True)
    eid = 0
    for w in ways:
        walk, bike, kmh = walkable(w.tags), cyclable(w.tags), car_speed(w.tags)
        if not (walk or bike or kmh):
            stats.skipped += 1
            continue
        direction = oneway(w.tags)
        for a, b in zip(w.nodes, w.nodes[1:], strict=False):
            if a not in nodes or b not in nodes or a == b:
                continue
            (x1, y1), (x2, y2) = (to5186.transform(*nodes[a]), to5186.transform(*nodes[b]))
            length = math.hypot(x2 - x1, y2 - y1)
            car = length / (kmh / 3.6) if kmh else None
            eid += 1
            yield {"id": eid, "source": a, "target": b, "length_m": round(length, 3),
                   "walk_s": length / (WALK_KMH / 3.6) if walk else None,
                   "bike_s": length / (BIKE_KMH / 3.6) if bike else None,
                   "car_s": car if direction >= 0 else None, "car_reverse_s": car if direction <= 0 else None,
                   "highway": w.tags.get("highway"), "osm_way_id": w.id, "name": w.tags.get("name"),
                   "geom": f"SRID=5186;LINESTRING({x1:.3f} {y1:.3f},{x2:.3f} {y2:.3f})"}


def node_rows(nodes: dict[int, tuple[float, float]], used: set[int]) -> Iterator[dict[str, Any]]:
    """Nodes referenced by edges."""
    to5186 = Transformer.from_crs(4326, 5186, always_xy=True)
    for nid in sorted(used):
        x, y = to5186.transform(*nodes[nid])
        yield {"id": nid, "geom": f"SRID=5186;POINT({x:.3f} {y:.3f})"}


def load_network(dsn: str, path: Path, name: str, source_label: str | None = None) -> dict[str, int]:
    """Load a network atomically; returns table -> rows."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name):
        raise LoadError(f"network name {name!r}: use lower-case letters, digits and _ (e.g. paju)")
    label = source_label or path.name
    nodes, ways = read_any(path)
    stats = RowStats()
    rows = list(edges(nodes, ways, stats))
    used = {r["source"] for r in rows} | {r["target"] for r in rows}
    src = [SourceFile(label, sha256(path), rows=len(rows))]
    meta = Meta(title=f"road network {name} ({path.name})", licence=LICENCE, attribution=ATTRIBUTION)
    return write_network(dsn, edge_spec(name), node_spec(name), rows, list(node_rows(nodes, used)), meta, src, stats,
                         label=label, empty="no usable road segments (no highway=* ways with known nodes)")


def paju_emd_rows(data_dir: Path, stats: RowStats) -> Iterator[dict[str, Any]]:
    """KOSTAT 2018 읍면동 of 파주시 (code 31200*) with 2022 registered voters joined by name."""
    from loaders.datasets.emd_2018 import rows as emd_rows

    text, _ = decode_file(data_dir / VOTERS_FILE, "auto", VOTERS_FILE)
    voters = {r["ELEC_EMD"].strip(): int(r["POPU_ALL"]) for r in csv.DictReader(io.StringIO(text), delimiter="\t")
              if r.get("ELEC_SIDO", "").strip() == "경기도" and r.get("ELEC_GU", "").strip() == "파주시"}
    for row in emd_rows(data_dir / PAJU_EMD_FILE, PAJU_EMD_FILE, stats, prefix="31200"):
        yield {**row, "voters": voters.get(str(row["name"]))}


PAJU_EMD = TableSpec("public.paju_emd", [
    Column("id", "integer", "일련번호"), Column("code", "text", "통계청 행정구역코드"),
    Column("name", "text", "읍면동"),
    Column("name_eng", "text", "영문 이름"), Column("base_year", "text", "기준연도"),
    Column("voters", "integer", "선거인수 (2022 대선, 인구 대용값)"),
], "MultiPolygon", indexes=["code"])
PAJU_EMD_META = Meta(
    title="파주시 읍면동 (통계청 2018) + 선거인수 2022 / Paju eup-myeon-dong with voters",
    licence="KOGL Type 1; voters: 중앙선거관리위원회",
    attribution="© 통계청 SGIS 2018 via southkorea/southkorea-maps; 선거인수: 중앙선거관리위원회 (vuski/admdongkor)")


def _unchanged(dsn: str, table: str, files: dict[str, Path]) -> int | None:
    return unchanged(dsn, table, {label: sha256(p) for label, p in files.items()})


def load_bundled_networks(dsn: str, data_dir: Path | None = None, force: bool = False) -> dict[str, int]:
    """Bundled networks (OSM, and the KAIS ones of config.yml `networks:`) plus the Paju demand (public.paju_emd)
    and facilities (public.facilities_paju)."""
    from loaders.core import load_table
    from loaders.datasets import facilities
    from loaders.kais_network import load_bundled_kais

    base = data_dir or load_config().data.path()
    out: dict[str, int] = {}
    for rel, name in BUNDLED.items():
        if not (base / rel).exists():
            print(f"network {name}: {base / rel} not found, skipped", file=sys.stderr)
            continue
        n = None if force else _unchanged(dsn, f"network.{name}_edges", {rel: base / rel})
        if n is not None:
            out[f"network.{name}_edges"] = n
            continue
        out.update(load_network(dsn, base / rel, name, rel))
    out.update(load_bundled_kais(dsn, base, force))
    emd_files = {PAJU_EMD_FILE: base / PAJU_EMD_FILE, VOTERS_FILE: base / VOTERS_FILE}
    if all(p.exists() for p in emd_files.values()):
        n = None if force else _unchanged(dsn, PAJU_EMD.qualified, emd_files)
        if n is None:
            stats = RowStats()
            res = load_table(dsn, PAJU_EMD, paju_emd_rows(base, stats), label="paju_emd", meta=PAJU_EMD_META,
                             sources=[SourceFile(k, sha256(v)) for k, v in emd_files.items()], stats=stats)
            n = res.rows
        out[PAJU_EMD.qualified] = n
    fac_files = {f: base / f for f in facilities.FILES}
    if all(p.exists() for p in fac_files.values()):
        n = None if force else _unchanged(dsn, "public.facilities_paju", fac_files)
        if n is None:
            n = facilities.load_region(dsn, base, "파주시", "public.facilities_paju").rows
        out["public.facilities_paju"] = n
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m loaders.osm_network", description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path, nargs="?", help="Overpass JSON, .osm or .osm.pbf")
    ap.add_argument("--name", help="network name (tables network.<name>_edges/_nodes), e.g. paju")
    ap.add_argument("--bundled", action="store_true", help="load the bundled networks and Paju demand layers")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")
    args = ap.parse_args(argv)
    try:
        dsn = database_url(dsn=args.dsn)
        if args.bundled:
            counts = load_bundled_networks(dsn, args.data_dir, args.force)
        elif args.file and args.name:
            counts = load_network(dsn, args.file, args.name)
        else:
            ap.error("give FILE --name NAME, or --bundled")
    except (LoadError, NoDatabase) as exc:
        print(f"error: {exc}\nnothing was changed in the database", file=sys.stderr)
        return 1
    for table, n in counts.items():
        print(f"{table}\t{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
