"""python -m bench.tiles: vector tiles over Sejong from our server, the bare ST_AsMVT query, pygeoapi and tipg.

200 distinct WebMercatorQuad tiles at z12-z16 per layer (the generated 200,000-parcel table and the real street
lights, administrative areas and facilities), each requested once cold (a new server process: empty tile cache),
then once warm; feature counts checked against the bare query; p50/p95 per zoom; wrk throughput at 16 connections.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import psycopg2.extensions
from psycopg2 import sql

from bench import datasets, tile_peers
from bench.report import percentile, target_ok, write_json
from bench.servers import Server
from core.config import REPO_ROOT

SYSTEMS = ("bare", "ours", "tipg", "pygeoapi")
HTTP_SYSTEMS = ("ours", "tipg", "pygeoapi")
ZOOMS = (12, 13, 14, 15, 16)
OUT = REPO_ROOT / "var" / "bench" / "tiles.json"
WM_HALF = 20037508.342789244
EXTENT, BUFFER = 4096, 64  # as layers/tiles_sql.py
DECODE_MAX_BYTES = 256 * 1024  # mapbox_vector_tile decodes ~25 us per feature: full decode below this size
ACCEPT = {"Accept": f"{tile_peers.MVT}, */*;q=0.1", "Accept-Encoding": "identity"}


@dataclass(frozen=True)
class TileLayer:
    """A layer under test: its table and, for bench-only tables, the zooms our bench config serves."""

    key: str
    table: str
    our_zooms: tuple[int, int] | None = None  # None: declared in config.yml


LAYERS = (
    TileLayer("parcels_gen", datasets.PARCELS_TABLE, (12, 18)),
    TileLayer("street_lights", "public.street_lights"),
    TileLayer("admin_areas", "public.admin_areas"),
    TileLayer("facilities", "public.facilities"),
)

Tile = tuple[int, int, int]  # z, x (column), y (row)


@dataclass
class Obs:
    """One request: what came back and how long it took."""

    ms: float | None = None
    status: int | None = None
    features: int | None = None
    size: int = 0
    digest: str = ""
    error: str | None = None


@dataclass
class LayerRun:
    """Tiles, reference counts and observations for one layer."""

    spec: TileLayer
    table: datasets.BenchTable
    tiles: list[Tile]
    empty_filled: int = 0  # tiles taken without data because too few tiles had data
    lo: dict[Tile, int] = field(default_factory=dict)  # features intersecting the tile
    hi: dict[Tile, int] = field(default_factory=dict)  # features intersecting the tile grown by 256/4096
    obs: dict[tuple[str, str, Tile], Obs] = field(default_factory=dict)  # (phase, system, tile)
    pyg_subset: set[Tile] = field(default_factory=set)


# --- Web Mercator -------------------------------------------------------------------------------------------------

def lonlat_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(x, y) of the WebMercatorQuad tile holding a point."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tiles_over(box: tuple[float, float, float, float], z: int) -> list[Tile]:
    """Every tile at zoom z that touches a lon/lat box."""
    x1, y1 = lonlat_tile(box[0], box[3], z)
    x2, y2 = lonlat_tile(box[2], box[1], z)
    return [(z, x, y) for x in range(x1, x2 + 1) for y in range(y1, y2 + 1)]


def tile_width(z: int) -> float:
    """Tile width in EPSG:3857 metres."""
    return 2 * WM_HALF / 2**z


# --- MVT reading --------------------------------------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported protobuf wire type {wire}")


def count_features(buf: bytes) -> int:
    """Features in an MVT (all layers), read from the protobuf framing without decoding geometries."""
    total, pos = 0, 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        if key >> 3 == 3 and key & 7 == 2:  # Tile.layers
            n, pos = _varint(buf, pos)
            end = pos + n
            while pos < end:
                lkey, pos = _varint(buf, pos)
                if lkey >> 3 == 2 and lkey & 7 == 2:  # Layer.features
                    total += 1
                pos = _skip(buf, pos, lkey & 7)
        else:
            pos = _skip(buf, pos, key & 7)
    return total


def check_body(body: bytes) -> tuple[int, str | None]:
    """Feature count; small tiles are also fully decoded with mapbox_vector_tile and the counts compared."""
    try:
        n = count_features(body) if body else 0
    except (IndexError, ValueError) as exc:
        return 0, f"not a vector tile ({exc})"
    if body and len(body) <= DECODE_MAX_BYTES:
        try:
            decoded = mapbox_vector_tile.decode(body)
        except Exception as exc:  # any decoder failure is a broken tile
            return n, f"mapbox_vector_tile cannot decode: {type(exc).__name__}: {exc}"
        full = sum(len(layer["features"]) for layer in decoded.values())
        if full != n:
            return n, f"decoder counts {full} features, framing {n}"
    return n, None


# --- clients ------------------------------------------------------------------------------------------------------

class HttpClient:
    """One keep-alive connection; time = request sent until the whole body is read."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes, float]:
        """Status, body and seconds; reconnects once if the server closed an idle connection."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            t0 = time.perf_counter()
            try:
                self.conn.request("GET", path, headers=ACCEPT)
                resp = self.conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError,
                    ConnectionResetError):
                self.close()
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - t0
            if resp.will_close:
                self.close()
            return resp.status, body, elapsed
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def bare_statement(conn: psycopg2.extensions.connection, t: datasets.BenchTable) -> str:
    """The plain ST_AsMVT query: same columns, extent, buffer and box filter as our server, no simplification.

    As in the PostGIS manual's example there is no `WHERE geom IS NOT NULL` around the subquery: ST_AsMVT skips
    rows whose geometry is NULL, and such a filter is pulled into the scan and evaluates ST_AsMVTGeom twice per row.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                    "to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (t.table,))
        types = dict(cur.fetchall())
    cols = [c for c, typ in types.items() if c != t.geom_col and typ not in ("json", "jsonb")]
    int_id = types.get(t.id_col) in ("integer", "bigint", "smallint")
    select = ([sql.SQL("{} AS __fid").format(sql.Identifier(t.id_col))] if int_id else []) + \
        [sql.Identifier(c) for c in cols]
    stmt = sql.SQL(
        "SELECT ST_AsMVT(t, {name}, {ext}, 'geom'{fid}) FROM (SELECT {cols}, "
        "ST_AsMVTGeom(ST_Transform({g}, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {ext}, {buf}, true) AS geom "
        "FROM {tbl} WHERE {g} && ST_Transform(ST_Segmentize(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, "
        "margin => {margin}), %(seg)s), {srid})) t"
    ).format(name=sql.Literal(t.key), ext=sql.Literal(EXTENT), fid=sql.SQL(", '__fid'") if int_id else sql.SQL(""),
             cols=sql.SQL(", ").join(select), g=sql.Identifier(t.geom_col), buf=sql.Literal(BUFFER),
             tbl=t.ident, margin=sql.Literal(BUFFER / EXTENT), srid=sql.Literal(t.srid))
    return stmt.as_string(conn)


def bare_params(tile: Tile) -> dict[str, float]:
    """Bound values of the bare statement."""
    z, x, y = tile
    return {"z": z, "x": x, "y": y, "seg": tile_width(z) * (1 + 2 * BUFFER / EXTENT) / 8}


# --- tile choice and reference counts -----------------------------------------------------------------------------

def choose_tiles(conn: psycopg2.extensions.connection, t: datasets.BenchTable, n: int,
                 rng: random.Random) -> tuple[list[Tile], int, Tile | None]:
    """n distinct tiles at z12-z16 over Sejong, spread over the zooms, preferring tiles with data.

    Returns the tiles, how many had to be taken empty, and one more tile with data (not in the sample) to warm
    each server up before timing.
    """
    cands = [tile for z in ZOOMS for tile in tiles_over(datasets.SEJONG_EXTENT, z)]
    with conn.cursor() as cur:
        cur.execute(sql.SQL(
            "SELECT c.z, c.x, c.y FROM unnest(%s::int[], %s::int[], %s::int[]) AS c(z, x, y) WHERE EXISTS ("
            "SELECT 1 FROM {tbl} WHERE ST_Intersects({g}, ST_Transform(ST_TileEnvelope(c.z, c.x, c.y), {srid})))"
        ).format(tbl=t.ident, g=sql.Identifier(t.geom_col), srid=sql.Literal(t.srid)),
            ([c[0] for c in cands], [c[1] for c in cands], [c[2] for c in cands]))
        with_data = {(int(r[0]), int(r[1]), int(r[2])) for r in cur.fetchall()}
    by_zoom = {z: sorted(c for c in cands if c[0] == z and c in with_data) for z in ZOOMS}
    empty_by_zoom = {z: sorted(c for c in cands if c[0] == z and c not in with_data) for z in ZOOMS}
    for pool in (*by_zoom.values(), *empty_by_zoom.values()):
        rng.shuffle(pool)
    chosen: list[Tile] = []
    left = n
    for i, z in enumerate(ZOOMS):  # an even share per zoom; what a zoom cannot fill goes to the next ones
        take = min(len(by_zoom[z]), math.ceil(left / (len(ZOOMS) - i)))
        chosen += by_zoom[z][:take]
        by_zoom[z] = by_zoom[z][take:]
        left -= take
    filled = 0
    for z in reversed(ZOOMS):  # not enough tiles with data: the rest are empty tiles (still a valid request)
        while left and empty_by_zoom[z]:
            chosen.append(empty_by_zoom[z].pop())
            left -= 1
            filled += 1
    spare = next((pool[0] for pool in reversed(list(by_zoom.values())) if pool), None)
    rng.shuffle(chosen)
    return chosen, filled, spare


def reference_counts(conn: psycopg2.extensions.connection, run: LayerRun) -> None:
    """Per tile: features intersecting the tile (lo) and the tile grown by a 256/4096 buffer (hi).

    A peer with another buffer or filter may legitimately return any count between the two; ours must equal the
    bare query (same 64/4096 buffer).  This pass also brings the table's pages into shared buffers before timing.
    """
    t = run.table
    stmt = sql.SQL(
        "SELECT count(*) FILTER (WHERE ST_Intersects({g}, ST_Transform(ST_Segmentize(ST_TileEnvelope(%(z)s, %(x)s, "
        "%(y)s), %(seg)s), {srid}))), count(*) FILTER (WHERE ST_Intersects({g}, ST_Transform(ST_Segmentize("
        "ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.0625), %(seg)s), {srid}))) FROM {tbl} WHERE {g} && "
        "ST_Transform(ST_Segmentize(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.0625), %(seg)s), {srid})"
    ).format(g=sql.Identifier(t.geom_col), srid=sql.Literal(t.srid), tbl=t.ident)
    with conn.cursor() as cur:
        for tile in run.tiles:
            cur.execute(stmt, bare_params(tile))
            lo, hi = cur.fetchone()
            run.lo[tile], run.hi[tile] = int(lo), int(hi)


# --- passes -------------------------------------------------------------------------------------------------------

class Runner:
    """Requests one tile from one system and records the observation."""

    def __init__(self, bare_conn: psycopg2.extensions.connection, servers: dict[str, Server], timeout: float,
                 pygeoapi_budget: float) -> None:
        self.bare_conn = bare_conn
        self.servers = servers
        self.clients = {name: HttpClient(srv.port, timeout) for name, srv in servers.items()}
        self.statements: dict[str, str] = {}
        self.pyg_spent = 0.0
        self.pyg_budget = pygeoapi_budget
        self.pyg_skipped = 0

    def fetch(self, system: str, run: LayerRun, tile: Tile) -> Obs:
        """One timed request."""
        if system == "bare":
            stmt = self.statements.setdefault(run.spec.key, bare_statement(self.bare_conn, run.table))
            t0 = time.perf_counter()
            with self.bare_conn.cursor() as cur:
                cur.execute(stmt, bare_params(tile))
                row = cur.fetchone()
            body = bytes(row[0]) if row and row[0] is not None else b""
            return self._obs(time.perf_counter() - t0, 200, body)
        srv = self.servers[system]
        z, x, y = tile
        try:
            status, body, elapsed = self.clients[system].get(tile_peers.tile_path(srv, run.table, z, x, y))
        except (OSError, http.client.HTTPException) as exc:
            self.clients[system].close()
            return Obs(error=f"{type(exc).__name__}: {exc}")
        if status not in (200, 204):
            return Obs(ms=elapsed * 1000, status=status, error=f"HTTP {status}: {body[:200]!r}")
        return self._obs(elapsed, status, body)

    @staticmethod
    def _obs(seconds: float, status: int, body: bytes) -> Obs:
        n, problem = check_body(body)
        return Obs(ms=seconds * 1000, status=status, features=n, size=len(body),
                   digest=hashlib.sha1(body).hexdigest(), error=problem)

    def run_pass(self, phase: str, runs: list[LayerRun], systems: list[str]) -> None:
        """Every tile of every layer once per system; the systems' order rotates from tile to tile."""
        for run in runs:
            t0 = time.monotonic()
            for i, tile in enumerate(run.tiles):
                order = systems[i % len(systems):] + systems[:i % len(systems)]
                for system in order:
                    if system == "pygeoapi":
                        if tile not in run.pyg_subset:
                            continue
                        if self.pyg_spent > self.pyg_budget:
                            self.pyg_skipped += 1
                            continue
                    s0 = time.monotonic()
                    run.obs[(phase, system, tile)] = self.fetch(system, run, tile)
                    if system == "pygeoapi":
                        self.pyg_spent += time.monotonic() - s0
            print(f"   {phase:<5} {run.spec.key:<14} {len(run.tiles)} tiles in {time.monotonic() - t0:6.1f} s",
                  flush=True)

    def close(self) -> None:
        """Close the HTTP connections."""
        for client in self.clients.values():
            client.close()


def wait_quiet(max_wait: float, threshold: float) -> float:
    """Wait (at most max_wait s) until the 1-minute load average is below threshold; returns the load seen.

    The machine may be shared: other processes compete for the same cores and make single-request latencies noisy.
    """
    deadline = time.monotonic() + max_wait
    load = os.getloadavg()[0]
    if load >= threshold and max_wait > 0:
        print(f"   load average {load:.2f} >= {threshold}: waiting up to {max_wait:.0f} s for a quieter machine",
              flush=True)
    while load >= threshold and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load


def warm_up(runner: Runner, runs: list[LayerRun], spares: dict[str, Tile | None]) -> None:
    """Each server's first requests (imports, pools, metadata) on tiles outside the sample."""
    for run in runs:
        spare = spares.get(run.spec.key)
        if spare is None:
            continue
        for system in runner.servers:
            for _ in range(2):
                runner.fetch(system, run, spare)


# --- checks -------------------------------------------------------------------------------------------------------

def check(runs: list[LayerRun], systems: list[str]) -> list[str]:
    """MISMATCH / ERROR lines; mismatched or failed samples are marked so they leave the timings."""
    problems: list[str] = []
    for run in runs:
        for tile in run.tiles:
            bare = run.obs.get(("cold", "bare", tile))
            want = bare.features if bare and bare.error is None else None
            lo, hi = run.lo.get(tile, 0), run.hi.get(tile, 0)
            for phase in ("cold", "warm"):
                for system in systems:
                    o = run.obs.get((phase, system, tile))
                    if o is None or (system == "bare" and o.error is None):
                        continue
                    where = f"{run.spec.key} {phase} z{tile[0]}/{tile[1]}/{tile[2]}"
                    if o.error:
                        problems.append(f"!!! ERROR    {system:<9} {where}: {o.error}")
                        continue
                    if want is None:
                        continue
                    got = o.features or 0
                    if want > 0 and got == 0:
                        o.error = f"empty tile, bare query has {want} features"
                    elif system == "ours" and got != want:
                        o.error = f"{got} features, bare query has {want} (same buffer: must be equal)"
                    elif system != "ours" and not lo <= got <= hi and got != want:
                        o.error = (f"{got} features, bare query has {want}; any buffer gives {lo}..{hi} "
                                   f"(features touching the tile .. within 256/4096 of it)")
                    if system == "ours" and phase == "warm":
                        cold = run.obs.get(("cold", "ours", tile))
                        if o.error is None and cold is not None and cold.digest != o.digest:
                            o.error = "warm tile bytes differ from the cold tile bytes"
                    if o.error:
                        problems.append(f"!!! MISMATCH {system:<9} {where}: {o.error}")
    return problems


# --- summary ------------------------------------------------------------------------------------------------------

def summarize(runs: list[LayerRun], systems: list[str]) -> list[dict[str, Any]]:
    """One row per (layer, zoom) with p50/p95 per phase and system, ratios and targets."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        for z in ZOOMS:
            tiles = [t for t in run.tiles if t[0] == z]
            if not tiles:
                continue
            bare_counts = [run.obs[("cold", "bare", t)].features or 0 for t in tiles
                           if ("cold", "bare", t) in run.obs]
            sizes = [run.obs[("cold", "bare", t)].size for t in tiles if ("cold", "bare", t) in run.obs]
            row: dict[str, Any] = {
                "layer": run.spec.key, "table": run.table.table, "zoom": z, "tiles": len(tiles),
                "empty_tiles": sum(1 for c in bare_counts if c == 0),
                "features_median": statistics.median(bare_counts) if bare_counts else None,
                "features_max": max(bare_counts, default=None),
                "bare_kb_median": round(statistics.median(sizes) / 1024, 1) if sizes else None,
                "cold": {}, "warm": {},
            }
            for phase in ("cold", "warm"):
                for system in systems:
                    obs = [run.obs[(phase, system, t)] for t in tiles if (phase, system, t) in run.obs]
                    good = [o.ms for o in obs if o.error is None and o.ms is not None]
                    row[phase][system] = {
                        "n": len(good), "requested": len(obs), "failed": sum(1 for o in obs if o.error),
                        "p50_ms": round(percentile(good, 50), 3) if good else None,
                        "p95_ms": round(percentile(good, 95), 3) if good else None,
                    }
                bare_p50 = row[phase].get("bare", {}).get("p50_ms")
                for system in systems:
                    cell = row[phase][system]
                    cell["ratio_to_bare"] = (round(cell["p50_ms"] / bare_p50, 2)
                                             if system != "bare" and bare_p50 and cell["p50_ms"] is not None
                                             and not cell["failed"] else None)
            ours_cold, bare_cold = row["cold"].get("ours"), row["cold"].get("bare")
            if ours_cold and bare_cold and bare_cold["p50_ms"] is not None:
                limit = max(1.3 * bare_cold["p50_ms"], bare_cold["p50_ms"] + 2.0)
                row["cold_limit_ms"] = round(limit, 2)
                if ours_cold["failed"] or ours_cold["p50_ms"] is None:
                    row["cold_target"] = "FAIL (correctness)"
                else:
                    row["cold_target"] = "PASS" if target_ok(ours_cold["p50_ms"], bare_cold["p50_ms"]) else "FAIL"
            ours_warm = row["warm"].get("ours")
            if ours_warm and ours_warm["p50_ms"] is not None:
                row["warm_target"] = "FAIL (correctness)" if ours_warm["failed"] else (
                    "PASS" if ours_warm["p50_ms"] < 1.0 else "FAIL")
            rows.append(row)
    return rows


def _cell(c: dict[str, Any] | None) -> str:
    if c is None or not c["requested"]:
        return "-"
    if c["p50_ms"] is None:
        return f"ERROR x{c['failed']}"
    text = f"{c['p50_ms']:.1f}/{c['p95_ms']:.1f}" if c["p50_ms"] >= 10 else f"{c['p50_ms']:.2f}/{c['p95_ms']:.2f}"
    if c["ratio_to_bare"] is not None:
        text += f" x{c['ratio_to_bare']:.2f}"
    if c["failed"]:
        text += f" !{c['failed']}"
    if c["n"] != c["requested"] - c["failed"] or c["requested"] < 5:
        text += f" n={c['n']}"
    return text


def print_tables(rows: list[dict[str, Any]], systems: list[str]) -> None:
    """Cold and warm tables on stdout."""
    widths = {"bare": 17, "ours": 22, "tipg": 24, "pygeoapi": 26}
    for phase, note in (("cold", "each tile once, new server processes (empty tile caches), database pages warm"),
                        ("warm", "the same tiles again (ours answers from its tile cache; the others have none)")):
        print()
        print(f"{phase.upper()}: {note}")
        print("p50/p95 ms per tile; xN = p50 / bare p50; !k = k tiles failed the check (excluded); "
              "n = tiles timed when fewer than all")
        head = (f"{'layer':<14}{'z':>3}{'tiles':>6}{'feats':>7}{'KB':>7}  "
                + "".join(f"{s:<{widths[s] + 2}}" for s in systems) + "target")
        print(head)
        print("-" * (len(head) + 24))
        last = None
        for r in rows:
            if last is not None and r["layer"] != last:
                print()
            last = r["layer"]
            cells = "".join(f"{_cell(r[phase].get(s)):<{widths[s] + 2}}" for s in systems)
            if phase == "cold":
                target = r.get("cold_target", "-")
                if "cold_limit_ms" in r:
                    target += f" (<= {r['cold_limit_ms']:.1f})"
            else:
                target = r.get("warm_target", "-") + (" (< 1 ms)" if "warm_target" in r else "")
            feats = f"{r['features_median']:.0f}" if r["features_median"] is not None else "-"
            kb = f"{r['bare_kb_median']:.0f}" if r["bare_kb_median"] is not None else "-"
            print(f"{r['layer']:<14}{r['zoom']:>3}{r['tiles']:>6}{feats:>7}{kb:>7}  {cells}{target}")


# --- wrk ----------------------------------------------------------------------------------------------------------

WRK_LUA = """
local n = 0
function setup(thread)
  thread:set("id", n)
  n = n + 1
end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  i = id * math.floor(#paths / 2)
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], {["Accept-Encoding"] = "identity"})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\\n', summary.requests,
    summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(srv: Server, paths: list[str], workdir: Path, label: str, seconds: int, connections: int) -> dict[str, Any]:
    """wrk on loopback cycling over the paths; requests/s and errors."""
    script, plist = workdir / "cycle.lua", workdir / f"paths-{srv.name}-{label}.txt"
    script.write_text(WRK_LUA, encoding="utf-8")
    plist.write_text("\n".join(paths) + "\n", encoding="utf-8")
    threads = max(1, min(2, os.cpu_count() or 1))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
           srv.base, "--", str(plist)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 60)
    m = re.search(r"WRKJSON (\{.*\})", out.stdout)
    if out.returncode != 0 or not m:
        return {"system": srv.name, "set": label, "error": (out.stderr or out.stdout)[-500:]}
    import json

    doc = json.loads(m.group(1))
    secs = doc["duration_us"] / 1e6
    errors = sum(doc[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {"system": srv.name, "set": label, "paths": len(paths), "connections": connections, "threads": threads,
            "seconds": round(secs, 2), "requests": doc["requests"], "rps": round(doc["requests"] / secs, 1),
            "mb_per_s": round(doc["bytes"] / secs / 1e6, 1), "errors": errors,
            "latency_p50_ms": round(doc["p50_us"] / 1000, 2), "latency_p99_ms": round(doc["p99_us"] / 1000, 2)}


def ensure_wrk() -> bool:
    """wrk on PATH, installed from Debian when missing (root only)."""
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True, check=False).returncode == 0:
        return True
    if os.geteuid() != 0:
        return False
    print("   apt-get install -y wrk", flush=True)
    return subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True,
                          check=False).returncode == 0


# --- main ---------------------------------------------------------------------------------------------------------

def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.tiles", description=__doc__)
    p.add_argument("--tiles", type=int, default=200, help="distinct tiles per layer (default 200)")
    p.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated subset of bare,ours,tipg,pygeoapi")
    p.add_argument("--layers", default=",".join(t.key for t in LAYERS), help="comma-separated layer keys")
    p.add_argument("--pygeoapi-per-zoom", type=int, default=3,
                   help="tiles per layer and zoom timed on pygeoapi (it takes seconds per tile; default 3)")
    p.add_argument("--pygeoapi-budget", type=float, default=60.0,
                   help="seconds of pygeoapi requests per pass before the rest are skipped (default 60)")
    p.add_argument("--wrk-seconds", type=int, default=10)
    p.add_argument("--wrk-connections", type=int, default=16)
    p.add_argument("--skip-wrk", action="store_true")
    p.add_argument("--skip-install", action="store_true", help="do not create the tipg venv if it is missing")
    p.add_argument("--seed", type=int, default=20240612)
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="seconds to wait for the load average to drop below --quiet-load before each pass")
    p.add_argument("--quiet-load", type=float, default=1.5)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    args.systems = [s for s in SYSTEMS if s in {x.strip() for x in args.only.split(",")}]
    if "bare" not in args.systems:
        args.systems.insert(0, "bare")  # the reference for counts and ratios
    known = {t.key: t for t in LAYERS}
    args.layer_specs = [known[k.strip()] for k in args.layers.split(",") if k.strip() in known]
    return args


def prepare(dsn: str, specs: list[TileLayer]) -> list[datasets.BenchTable]:
    """Load the bundled real data and the generated parcels (idempotent), describe every table."""
    print("== preparing tables", flush=True)
    from loaders.bundled import load_bundled

    counts = load_bundled(dsn)
    print(f"   load_bundled: {dict(counts)}", flush=True)
    datasets.ensure_parcels(dsn)
    conn = datasets.connect(dsn)
    try:
        tables = []
        for spec in specs:
            t = datasets.BenchTable(spec.key, spec.table, spec.key, "generated in SQL" if spec.our_zooms else
                                    "load_bundled")
            datasets.describe(conn, t)
            print(f"   {t.key:<14} {t.table:<24} {t.rows:>8,} rows  EPSG:{t.srid}", flush=True)
            tables.append(t)
        return tables
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """Prepare, choose tiles, start servers, cold pass, warm pass, wrk, report."""
    args = _args(argv)
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    started = time.monotonic()
    rng = random.Random(args.seed)
    tables = prepare(dsn, args.layer_specs)
    conn = datasets.connect(dsn)
    conn.autocommit = True
    runs: list[LayerRun] = []
    spares: dict[str, Tile | None] = {}
    print(f"== choosing {args.tiles} tiles per layer at z{ZOOMS[0]}-z{ZOOMS[-1]} over Sejong "
          f"{datasets.SEJONG_EXTENT}", flush=True)
    for spec, t in zip(args.layer_specs, tables, strict=True):
        tiles, filled, spare = choose_tiles(conn, t, args.tiles, rng)
        run = LayerRun(spec, t, tiles, filled)
        per_zoom: dict[int, list[Tile]] = defaultdict(list)
        for tile in tiles:
            per_zoom[tile[0]].append(tile)
        run.pyg_subset = {tile for z in ZOOMS for tile in per_zoom[z][:args.pygeoapi_per_zoom]}
        reference_counts(conn, run)
        spares[spec.key] = spare
        runs.append(run)
        print(f"   {spec.key:<14} " + ", ".join(f"z{z}: {len(per_zoom[z])}" for z in ZOOMS)
              + (f"  ({filled} without data)" if filled else ""), flush=True)

    running: dict[str, Server] = {}
    startup_errors: dict[str, str] = {}
    wrk_rows: list[dict[str, Any]] = []
    floor: dict[str, float] = {}
    runner: Runner | None = None
    pyg_skipped: dict[str, int] = {}
    loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sejong-tbench-") as tmp:
        workdir = Path(tmp)
        try:
            zooms = {spec.table: spec.our_zooms for spec in args.layer_specs if spec.our_zooms is not None}
            starters = {
                "ours": lambda: tile_peers.start_ours(dsn, tables, workdir, zooms),
                "tipg": lambda: tile_peers.start_tipg(dsn, tables, workdir, args.skip_install),
                "pygeoapi": lambda: tile_peers.start_pygeoapi(dsn, tables, workdir),
            }
            for name, start in starters.items():
                if name not in args.systems:
                    continue
                print(f"== starting {name}", flush=True)
                try:
                    running[name] = start()
                except Exception as exc:  # report, benchmark the others
                    startup_errors[name] = str(exc)
                    print(f"!!! ERROR {name} could not start: {exc}", flush=True)
            systems = [s for s in args.systems if s == "bare" or s in running]
            runner = Runner(conn, running, timeout=120.0, pygeoapi_budget=args.pygeoapi_budget)
            warm_up(runner, runs, spares)
            loads["cold_start"] = wait_quiet(args.quiet_wait, args.quiet_load)
            print(f"== cold pass (systems in rotating order per tile; pygeoapi on {args.pygeoapi_per_zoom} "
                  f"tiles per zoom); load average {loads['cold_start']:.2f}", flush=True)
            runner.run_pass("cold", runs, systems)
            loads["cold_end"] = os.getloadavg()[0]
            pyg_skipped["cold"], runner.pyg_skipped, runner.pyg_spent = runner.pyg_skipped, 0, 0.0
            loads["warm_start"] = wait_quiet(args.quiet_wait, args.quiet_load)
            print(f"== warm pass; load average {loads['warm_start']:.2f}", flush=True)
            runner.run_pass("warm", runs, systems)
            loads["warm_end"] = os.getloadavg()[0]
            pyg_skipped["warm"] = runner.pyg_skipped
            for name in running:  # HTTP floor: a trivial route, 50 times
                samples = []
                for _ in range(50):
                    samples.append(runner.clients[name].get("/conformance?f=json")[2] * 1000)
                floor[name] = round(percentile(samples, 50), 3)
            if not args.skip_wrk and ensure_wrk():
                for name in ("ours", "tipg"):  # diagnostic: the same load on a route that touches no data
                    if name in running:
                        print(f"== wrk {name} /conformance (floor)", flush=True)
                        wrk_rows.append(run_wrk(running[name], ["/conformance?f=json"], workdir, "floor",
                                                args.wrk_seconds, args.wrk_connections))
                sets = {"parcels": [r for r in runs if r.spec.key == "parcels_gen"],
                        "real layers": [r for r in runs if r.spec.key != "parcels_gen"]}
                for label, sel in sets.items():
                    if not sel:
                        continue
                    for name in ("ours", "tipg"):
                        if name not in running:
                            continue
                        srv = running[name]
                        paths = [tile_peers.tile_path(srv, r.table, *tile) for r in sel for tile in r.tiles]
                        loads[f"wrk_{name}_{label}"] = wait_quiet(args.quiet_wait / 4, args.quiet_load)
                        print(f"== wrk {name} {label}: {len(paths)} tiles, {args.wrk_connections} connections, "
                              f"{args.wrk_seconds} s; load average {loads[f'wrk_{name}_{label}']:.2f}", flush=True)
                        wrk_rows.append(run_wrk(srv, paths, workdir, label.replace(" ", "-"), args.wrk_seconds,
                                                args.wrk_connections))
            elif not args.skip_wrk:
                print("!!! wrk is not installed (apt-get install -y wrk)", flush=True)
        finally:
            if runner is not None:
                runner.close()
            for srv in running.values():
                srv.stop()
            conn.close()

    problems = check(runs, systems)
    rows = summarize(runs, systems)
    print_tables(rows, systems)
    print()
    if floor:
        print("HTTP floor (GET /conformance, p50 ms): " + ", ".join(f"{k} {v:.2f}" for k, v in floor.items()))
    print("1-minute load average of the machine (other processes share the cores): "
          + ", ".join(f"{k} {v:.2f}" for k, v in loads.items()))
    if pyg_skipped.get("cold") or pyg_skipped.get("warm"):
        print(f"pygeoapi: {pyg_skipped} requests skipped after the {args.pygeoapi_budget:.0f} s budget per pass")
    throughput: dict[str, Any] = {}
    if wrk_rows:
        print()
        print(f"THROUGHPUT (wrk, {args.wrk_connections} connections, {args.wrk_seconds} s, loopback, cycling over "
              "the sampled tiles; ours warm)")
        print("(set 'floor' = GET /conformance: the server's own ceiling on this machine, no data, no database)")
        print(f"{'set':<13}{'system':<9}{'req/s':>9}{'MB/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for w in wrk_rows:
            if "error" in w:
                print(f"{w['set']:<13}{w['system']:<9} ERROR {w['error']}")
                continue
            print(f"{w['set']:<13}{w['system']:<9}{w['rps']:>9.1f}{w['mb_per_s']:>8.1f}{w['latency_p50_ms']:>9.2f}"
                  f"{w['latency_p99_ms']:>9.2f}{w['errors']:>8}")
        for label in sorted({w["set"] for w in wrk_rows} - {"floor"}):
            got = {w["system"]: w for w in wrk_rows if w["set"] == label and "error" not in w}
            if "ours" in got and "tipg" in got and got["tipg"]["rps"] > 0:
                ratio = got["ours"]["rps"] / got["tipg"]["rps"]
                ok = ratio >= 3.0 and not got["ours"]["errors"]
                throughput[label] = {"ratio": round(ratio, 2), "target": "PASS" if ok else "FAIL"}
                print(f"throughput target ({label}): ours {ratio:.1f}x tipg (>= 3x) -> {'PASS' if ok else 'FAIL'}")
    print()
    for line in problems:
        print(line)
    if not problems:
        print("no MISMATCH and no ERROR: every system returned a decodable tile with the bare query's features")
    for name, err in startup_errors.items():
        print(f"!!! ERROR    {name} did not start: {err.splitlines()[0] if err else ''}")
    cold = [r["cold_target"] for r in rows if "cold_target" in r]
    warm = [r["warm_target"] for r in rows if "warm_target" in r]
    print(f"targets (ours): cold {cold.count('PASS')}/{len(cold)} rows PASS, warm {warm.count('PASS')}/{len(warm)} "
          f"rows PASS, throughput " + (", ".join(f"{k} {v['target']}" for k, v in throughput.items()) or "-"))

    from bench.__main__ import _versions

    doc = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"), "environment": _versions(dsn),
        "method": ("one run; tiles chosen at random (seeded) among z12-z16 WebMercatorQuad tiles over Sejong that "
                   "hold data, spread evenly over zooms; a new process per server (empty tile caches), each warmed "
                   "up on one tile outside the sample; cold pass = each tile once per system in rotating order, "
                   "warm pass = the same again; sequential requests over one keep-alive http.client connection, "
                   "time includes reading the body; bare = psycopg2 ST_AsMVT/ST_AsMVTGeom with our columns, "
                   "extent 4096, buffer 64, && filter on the buffered tile, jit=off, no parallel workers, no "
                   "simplification and no IS NOT NULL filter (ST_AsMVT skips NULL geometries); ours = gunicorn "
                   "1 worker x 4 gthreads; tipg = uvicorn, default settings but "
                   "TIPG_MAX_FEATURES_PER_TILE=1000000; pygeoapi = MVT-postgresql provider under gunicorn 1x4, on "
                   "a subset of tiles; counts from the MVT framing, tiles <= 256 KB also decoded with "
                   "mapbox_vector_tile; ours must equal the bare count, peers must lie between the features "
                   "touching the tile and those within a 256/4096 buffer"),
        "seed": args.seed, "tiles_per_layer": args.tiles, "systems": systems,
        "layers": [{"key": r.spec.key, "table": r.table.table, "rows": r.table.rows, "srid": r.table.srid,
                    "tiles": [list(t) for t in r.tiles], "empty_tiles_taken": r.empty_filled,
                    "pygeoapi_tiles": len(r.pyg_subset)} for r in runs],
        "rows": rows, "http_floor_p50_ms": floor, "wrk": wrk_rows, "throughput_targets": throughput,
        "load_average": loads, "problems": problems, "startup_errors": startup_errors, "pygeoapi_skipped": pyg_skipped,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_json(args.out, doc)
    print(f"results written to {args.out} ({doc['seconds']} s)")
    return 1 if problems or any(t.startswith("FAIL") for t in cold + warm) else 0


if __name__ == "__main__":
    raise SystemExit(main())
