"""python -m bench.hardening: the hardening issue's load checks, this tree (new) against an older checkout (old).

Each version runs from its own checkout and virtualenv against its own embedded PostgreSQL (new: password roles,
old: trust as postgres) with the bundled data, under gunicorn 2 workers x 4 gthreads (./run serve's defaults):

1. items and tiles throughput (wrk) at 8 and 64 connections, old and new interleaved, with the PostgreSQL backends
   started per 1,000 requests (pg_stat_database.sessions before/after each timed run, after a warm-up run);
2. /health and a cached tile latency (p50/p99, a new connection per request) while 8 clients, each from its own
   loopback address, keep sending an items filter that runs into the statement timeout;
3. wrk at 64 connections of async echo submissions: responses by status, then meta.jobs polled until every job
   created in the run is final (time and final states).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from bench.report import percentile, write_json
from bench.servers import Server, free_port
from bench.tiles import ensure_wrk, lonlat_tile
from core.config import REPO_ROOT

OUT = REPO_ROOT / "var" / "bench" / "hardening.json"
HOME = REPO_ROOT / "var" / "hardening"
SEJONG = (127.20, 36.45, 127.35, 36.62)  # lon/lat, as bench.datasets.SEJONG_EXTENT
REGION = (127.05, 36.35, 127.50, 36.80)  # data.region: where empty z18 tiles are taken from
CITY_HALL = (127.2890, 36.4800)
FINAL = ("successful", "failed", "dismissed")
GEOJSON = {"Accept": "application/geo+json"}
MVT = {"Accept": "application/vnd.mapbox-vector-tile"}

# Start the version's embedded cluster (its own pgcluster code), load the bundled data, print the URLs.
PREPARE = """
import json, sys
from pathlib import Path
from server.pgcluster import LocalCluster
c = LocalCluster(datadir=Path(sys.argv[1]), port=int(sys.argv[2]))
if sys.argv[3] == "stop":
    c.stop()
    raise SystemExit(0)
c.start()
urls = {"DATABASE_URL": c.url, "admin": getattr(c, "admin_url", c.url)}
if hasattr(c, "read_url"):
    urls["DATABASE_READ_URL"] = c.read_url
from loaders.bundled import load_bundled
load_bundled(c.url)
print("URLS " + json.dumps(urls))
"""

# wrk: GET paths from a file (thread i takes lines i, i+n, ...) or a fixed request; counts statuses, keeps one
# sample body per status >= 500, prints one JSON line.
LUA = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
  sample5xx = ""
  paths = {}
  if args[1] ~= nil and args[1] ~= "" then
    for line in io.lines(args[1]) do paths[#paths + 1] = line end
  end
  stride = tonumber(args[2] or "1")
  i = id
  if os.getenv("WRK_POST") then
    wrk.method = "POST"
    wrk.body = os.getenv("WRK_POST")
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Prefer"] = "respond-async"
  end
  if os.getenv("WRK_ACCEPT") then wrk.headers["Accept"] = os.getenv("WRK_ACCEPT") end
end
function request()
  if #paths == 0 then return wrk.format(nil, os.getenv("WRK_PATH")) end
  local p = paths[(i % #paths) + 1]
  i = i + stride
  return wrk.format(nil, p)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 500 and sample5xx == "" then sample5xx = status .. " " .. string.sub(body or "", 1, 300) end
end
local function q(s) return '"' .. string.gsub(s, '[%c"\\]', " ") .. '"' end
function done(summary, latency, requests)
  local all, samples = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
    local s = t:get("sample5xx")
    if s ~= "" then samples[#samples + 1] = q(s) end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = q(tostring(k)) .. ":" .. v end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"statuses":{%s},"samples":[%s]}\n', summary.requests,
    summary.duration, e.connect, e.read, e.write, e.timeout, latency:percentile(50), latency:percentile(99),
    table.concat(parts, ","), table.concat(samples, ",")))
end
"""


@dataclass
class Version:
    """A checkout under test, its database and its server."""

    name: str
    root: Path
    db_port: int
    urls: dict[str, str] = field(default_factory=dict)
    server: Server | None = None
    stats: psycopg2.extensions.connection | None = None

    @property
    def python(self) -> Path:
        """The checkout's own interpreter."""
        return self.root / "var" / "venv" / "bin" / "python"

    @property
    def datadir(self) -> Path:
        """Data folder of this version's cluster."""
        return HOME / self.name / "data"

    def env(self) -> dict[str, str]:
        """Environment for the checkout's code: its own packages first (an editable install may point elsewhere)."""
        return dict(os.environ, PYTHONPATH=str(self.root))

    def run_prepare(self, action: str) -> str:
        """Run PREPARE with the checkout's interpreter; its output."""
        out = subprocess.run([str(self.python), "-c", PREPARE, str(self.datadir), str(self.db_port), action],
                             cwd=self.root, env=self.env(), capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{self.name}: database {action} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def start_db(self) -> None:
        """Start the cluster and load the bundled data (unchanged files are skipped)."""
        m = re.search(r"^URLS (.*)$", self.run_prepare("start"), re.M)
        if not m:
            raise RuntimeError(f"{self.name}: no URLs printed")
        self.urls = json.loads(m.group(1))
        self.stats = psycopg2.connect(self.urls["admin"], application_name="sejong-bench-stats")
        self.stats.autocommit = True

    def sessions(self) -> int:
        """Backends ever started in the sejong database (pg_stat_database.sessions, PostgreSQL 15+)."""
        assert self.stats is not None
        with self.stats.cursor() as cur:
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def backends(self) -> int:
        """Client backends connected to the sejong database now (this script's stats connection excluded)."""
        assert self.stats is not None
        with self.stats.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def start_server(self, workdir: Path, timeout_ms: int) -> None:
        """gunicorn 2 workers x 4 gthreads from the checkout, its config.yml with the given statement timeout."""
        port = free_port()
        text = (self.root / "config.yml").read_text(encoding="utf-8")  # edited as text: ${VAR} and empty keys stay
        text, n = re.subn(r"(?m)^(\s+statement_timeout_ms:\s*)\d+", rf"\g<1>{timeout_ms}", text, count=1)
        if n != 1:
            raise RuntimeError(f"{self.name}: no server.statement_timeout_ms in config.yml")
        cfg = workdir / f"{self.name}-config.yml"
        cfg.write_text(text, encoding="utf-8")
        env = self.env()
        env.update({k: v for k, v in self.urls.items() if k != "admin"})
        env.update(SEJONG_CONFIG=str(cfg), SEJONG_PUBLIC_URL=f"http://127.0.0.1:{port}")
        venv = self.root / "var" / "venv" / "bin"
        cmd = [str(venv / "gunicorn"), "-c", str(self.root / "server" / "gunicorn_conf.py"), "--bind",
               f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--worker-class", "gthread", "server.wsgi:app"]
        log = HOME / f"{self.name}-server.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.server = Server(self.name, port, proc, log, {})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if get(port, "/collections?f=json")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.server.stop()
        raise RuntimeError(f"{self.name} server did not start; log tail:\n{log.read_text(errors='replace')[-2000:]}")

    @property
    def port(self) -> int:
        """Port of the running server."""
        assert self.server is not None
        return self.server.port

    def log_offset(self) -> int:
        """Current size of the server log (to show only what a phase wrote)."""
        return self.server.log.stat().st_size if self.server and self.server.log.exists() else 0

    def log_problems(self, since: int, limit: int = 12) -> list[str]:
        """Distinct error lines the server logged since an offset."""
        if self.server is None or not self.server.log.exists():
            return []
        with self.server.log.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode(errors="replace")
        seen: dict[str, int] = {}
        for line in text.splitlines():
            if re.search(r"error|exception|traceback|critical|warning", line, re.I):
                key = re.sub(r"\d+", "N", line.strip())[:200]
                seen[key] = seen.get(key, 0) + 1
        return [f"{n:>5} x {line}" for line, n in list(seen.items())[:limit]]


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30.0,
        source: str | None = None) -> tuple[int, bytes, float]:
    """One GET on a new connection: status, body, seconds (connect included)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers={**(headers or {}), "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, body, time.perf_counter() - t0
    finally:
        conn.close()


# --- workloads ----------------------------------------------------------------------------------------------------

def items_paths(rng: random.Random, n: int = 400) -> list[str]:
    """Items pages: street lights and bike stations in small random boxes over Sejong, admin areas, facilities."""
    paths = []
    for k in range(n):
        w = rng.uniform(0.005, 0.02)
        x = rng.uniform(SEJONG[0], SEJONG[2] - w)
        y = rng.uniform(SEJONG[1], SEJONG[3] - w)
        bbox = f"{x:.5f},{y:.5f},{x + w:.5f},{y + w:.5f}"
        layer = ("street_lights", "bike_stations", "street_lights", "facilities")[k % 4]
        paths.append(f"/collections/{layer}/items?limit=100&bbox={bbox}")
    paths += [f"/collections/admin_areas/items?limit=5&offset={k % 15}" for k in range(n // 20)]
    rng.shuffle(paths)
    return paths


def tile_paths(conn: psycopg2.extensions.connection, rng: random.Random, n: int) -> list[str]:
    """n distinct street_lights tiles (z15-z18 holding lights, then empty z18 tiles in data.region), shuffled."""
    with conn.cursor() as cur:
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(geom, 4326) AS p FROM public.street_lights "
                    "WHERE geom IS NOT NULL) s")
        points = cur.fetchall()
    tiles: set[tuple[int, int, int]] = set()
    for z in (15, 16, 17, 18):
        tiles.update((z, *lonlat_tile(lon, lat, z)) for lon, lat in points)
    full = sorted(tiles)
    rng.shuffle(full)
    if len(full) < n:
        x1, y1 = lonlat_tile(REGION[0], REGION[3], 18)
        x2, y2 = lonlat_tile(REGION[2], REGION[1], 18)
        empty = [(18, x, y) for x in range(x1, x2 + 1) for y in range(y1, y2 + 1) if (18, x, y) not in tiles]
        rng.shuffle(empty)
        full += empty[:n - len(full)]
    return [f"/collections/street_lights/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, x, y in full[:n]]


def slow_filter() -> str:
    """Items on street_lights with a CQL2 filter that costs seconds: geodesic distance from every light to a
    150-vertex ring 40 km around Sejong (its box covers every light, so the index cannot help; nothing matches)."""
    import math

    lon0, lat0, r_km, n = 127.28, 36.55, 40.0, 150
    pts = []
    for k in range(n + 1):
        a = 2 * math.pi * (k % n) / n
        pts.append(f"{lon0 + r_km / (111.32 * math.cos(math.radians(lat0))) * math.cos(a):.3f} "
                   f"{lat0 + r_km / 110.57 * math.sin(a):.3f}")
    cql = f"S_DWITHIN(geom, LINESTRING({', '.join(pts)}), 10, meters)"
    return "/collections/street_lights/items?limit=10&filter=" + urllib.parse.quote(cql)


# --- wrk ----------------------------------------------------------------------------------------------------------

def wrk(port: int, workdir: Path, seconds: float, connections: int, paths: list[str] | None = None,
        post: tuple[str, str] | None = None, accept: str | None = None) -> dict[str, Any]:
    """One wrk run: GET over paths (cycled, threads interleaved) or one POST; requests, req/s, statuses."""
    script = workdir / "hardening.lua"
    script.write_text(LUA)
    plist = ""
    if paths:
        pfile = workdir / f"paths-{time.monotonic_ns()}.txt"
        pfile.write_text("\n".join(paths) + "\n")
        plist = str(pfile)
    threads = 2
    env = dict(os.environ)
    if post:
        env.update(WRK_PATH=post[0], WRK_POST=post[1])
    if accept:
        env["WRK_ACCEPT"] = accept
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
           "-s", str(script), f"http://127.0.0.1:{port}", "--", plist, str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=seconds + 90)
    m = re.search(r"WRKJSON (\{.*\})", out.stdout)
    if not m:
        return {"error": (out.stderr or out.stdout)[-500:]}
    doc = json.loads(m.group(1))
    secs = doc["duration_us"] / 1e6
    statuses = {int(k): v for k, v in doc["statuses"].items()}
    return {"requests": doc["requests"], "seconds": round(secs, 2), "rps": round(doc["requests"] / secs, 1),
            "p50_ms": round(doc["p50_us"] / 1000, 2), "p99_ms": round(doc["p99_us"] / 1000, 2),
            "socket_errors": sum(doc[k] for k in ("connect", "read", "write", "timeout")),
            "statuses": dict(sorted(statuses.items())), "samples_5xx": doc["samples"],
            "distinct_paths": len(paths) if paths else 1}


def throughput(versions: list[Version], workdir: Path, args: argparse.Namespace,
               rng: random.Random) -> list[dict[str, Any]]:
    """Part 1: items and tiles at each connection count, versions alternating, with backends per 1,000 requests."""
    rows: list[dict[str, Any]] = []
    items = items_paths(rng)
    per_run = args.tiles_per_run
    assert versions[0].stats is not None
    all_tiles = tile_paths(versions[0].stats, rng, (per_run + per_run // 5) * len(args.connections))
    for ci, conns in enumerate(args.connections):
        base = ci * (per_run + per_run // 5)
        tiles_warm, tiles_timed = (all_tiles[base:base + per_run // 5],
                                   all_tiles[base + per_run // 5:base + per_run // 5 + per_run])
        for family, warm, timed, accept in (("items", items, items, GEOJSON["Accept"]),
                                            ("tiles", tiles_warm, tiles_timed, MVT["Accept"])):
            order = versions if (ci + (family == "tiles")) % 2 == 0 else versions[::-1]
            for v in order:
                wrk(v.port, workdir, args.warmup_seconds, conns, warm, accept=accept)
                time.sleep(1.5)  # backends flush their session counts on going idle
                s0 = v.sessions()
                res = wrk(v.port, workdir, args.seconds, conns, timed, accept=accept)
                time.sleep(1.5)
                s1 = v.sessions()
                row = {"version": v.name, "family": family, "connections": conns, **res, "new_backends": s1 - s0,
                       "backends_now": v.backends(), "load_average": round(os.getloadavg()[0], 2)}
                if res.get("requests"):
                    row["new_backends_per_1000"] = round((s1 - s0) * 1000 / res["requests"], 2)
                rows.append(row)
                print(f"   {v.name:<4} {family:<6} c={conns:<3} {res.get('rps', 0):>8.1f} req/s  "
                      f"{s1 - s0:>4} new backends / {res.get('requests', 0):>6} requests  "
                      f"statuses {res.get('statuses', res.get('error'))}", flush=True)
    return rows


def under_slow_filters(v: Version, args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: 8 clients (127.0.0.2-9) loop on the slow filter; /health and a cached tile are probed meanwhile."""
    z = 14
    x, y = lonlat_tile(*CITY_HALL, z)
    tile = f"/collections/street_lights/tiles/WebMercatorQuad/{z}/{y}/{x}"
    warm = Counter(get(v.port, tile, MVT)[0] for _ in range(20))  # new connections: both workers cache it
    path = slow_filter()
    check = get(v.port, path, GEOJSON, timeout=120)
    stop = threading.Event()
    slow: list[tuple[int, float]] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        while not stop.is_set():
            try:
                status, _, secs = get(v.port, path, GEOJSON, timeout=120, source=f"127.0.0.{2 + k}")
            except OSError:
                status, secs = -1, 0.0
            with lock:
                slow.append((status, secs))

    offset = v.log_offset()
    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(args.slow_clients)]
    for w in workers:
        w.start()
    time.sleep(3.0)  # every slow request in flight
    probes: dict[str, list[tuple[int, float]]] = {"health": [], "cached tile": []}
    end = time.monotonic() + args.probe_seconds
    while time.monotonic() < end:
        for name, p, h in (("health", "/health", {"Accept": "application/json"}), ("cached tile", tile, MVT)):
            try:
                status, _, secs = get(v.port, p, h, timeout=60)
            except OSError:
                status, secs = -1, 60.0
            probes[name].append((status, secs))
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join(timeout=args.statement_timeout_ms / 1000 + 60)
    out: dict[str, Any] = {"version": v.name, "slow_clients": args.slow_clients,
                           "statement_timeout_ms": args.statement_timeout_ms, "filter_chars": len(path),
                           "slow_alone": {"status": check[0], "seconds": round(check[2], 2)},
                           "tile_warmup_statuses": dict(warm),
                           "slow_requests": {"statuses": dict(Counter(s for s, _ in slow)),
                                             "p50_s": round(percentile([t for _, t in slow], 50), 2) if slow else None}}
    for name, samples in probes.items():
        ms = [t * 1000 for _, t in samples]
        out[name] = {"n": len(samples), "statuses": dict(Counter(s for s, _ in samples)),
                     "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1),
                     "max_ms": round(max(ms), 1)}
    out["log"] = v.log_problems(offset)
    return out


def job_states(v: Version, since: str) -> dict[str, int]:
    """meta.jobs rows created since a database timestamp, by status."""
    assert v.stats is not None
    with v.stats.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM meta.jobs WHERE created >= %s GROUP BY 1", (since,))
        return {str(s): int(n) for s, n in cur.fetchall()}


def async_jobs(v: Version, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Part 3: wrk posting async echo jobs, then meta.jobs polled until every job of the run is final."""
    assert v.stats is not None
    with v.stats.cursor() as cur:
        cur.execute("SELECT now()::text")
        row = cur.fetchone()
    assert row is not None
    since = str(row[0])
    offset = v.log_offset()
    s0 = v.sessions()
    body = json.dumps({"inputs": {"echoInput": "x"}})
    res = wrk(v.port, workdir, args.seconds, 64, post=("/processes/echo/execution", body))
    t_end = time.monotonic()
    states = job_states(v, since)
    at_end = dict(states)
    deadline = t_end + args.job_deadline
    while any(s not in FINAL for s in states) and time.monotonic() < deadline:
        time.sleep(0.5)
        states = job_states(v, since)
    settled = time.monotonic() - t_end
    time.sleep(1.5)
    s1 = v.sessions()
    done = not any(s not in FINAL for s in states)
    stuck: list[tuple[str, str, str]] = []
    if not done:
        with v.stats.cursor() as cur:
            cur.execute("SELECT job_id::text, status, created::text FROM meta.jobs WHERE created >= %s "
                        "AND status NOT IN ('successful', 'failed', 'dismissed') ORDER BY created LIMIT 5", (since,))
            stuck = [(str(a), str(b), str(c)) for a, b, c in cur.fetchall()]
    created = sum(states.values())
    out = {"version": v.name, "wrk": res, "jobs_created": created, "states_at_wrk_end": at_end,
           "final_states": states, "all_final": done,
           "seconds_to_final_after_wrk": round(settled, 1) if done else None,
           "new_backends": s1 - s0, "stuck_sample": stuck, "log": v.log_problems(offset)}
    if created:
        out["new_backends_per_1000_jobs"] = round((s1 - s0) * 1000 / created, 1)
    return out


# --- report -------------------------------------------------------------------------------------------------------

def print_report(doc: dict[str, Any]) -> None:
    """The three tables, ratios new/old from the same run."""
    print("\n1. THROUGHPUT (wrk, 2 threads; gunicorn 2 workers x 4 gthreads; new backends from "
          "pg_stat_database.sessions)")
    print(f"{'family':<7}{'conns':>6}{'version':>8}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'requests':>9}"
          f"{'new bk':>7}{'bk/1000':>8}  statuses")
    rows = doc["throughput"]
    for r in rows:
        if "error" in r:
            print(f"{r['family']:<7}{r['connections']:>6}{r['version']:>8}  ERROR {r['error']}")
            continue
        print(f"{r['family']:<7}{r['connections']:>6}{r['version']:>8}{r['rps']:>9.1f}{r['p50_ms']:>8.1f}"
              f"{r['p99_ms']:>8.1f}{r['requests']:>9}{r['new_backends']:>7}{r.get('new_backends_per_1000', 0):>8.2f}"
              f"  {r['statuses']}" + (f" socket errors {r['socket_errors']}" if r["socket_errors"] else ""))
    for fam in ("items", "tiles"):
        for conns in sorted({r["connections"] for r in rows}):
            got = {r["version"]: r for r in rows if r["family"] == fam and r["connections"] == conns and "rps" in r}
            if "new" in got and "old" in got and got["old"]["rps"]:
                print(f"   ratio new/old {fam} c={conns}: {got['new']['rps'] / got['old']['rps']:.2f}x req/s; "
                      f"backends per 1,000: new {got['new'].get('new_backends_per_1000')}, "
                      f"old {got['old'].get('new_backends_per_1000')}")
    print(f"\n2. /health AND A CACHED TILE WHILE {doc['args']['slow_clients']} CLIENTS SEND A FILTER THAT RUNS INTO "
          f"THE STATEMENT TIMEOUT ({doc['args']['statement_timeout_ms']} ms)")
    for r in doc["slow"]:
        if "error" in r:
            print(f"   {r['version']}: ERROR {r['error']}")
            continue
        print(f"   {r['version']}: slow filter alone -> {r['slow_alone']}; slow requests during the probe "
              f"{r['slow_requests']}")
        for name in ("health", "cached tile"):
            p = r[name]
            print(f"   {r['version']}: {name:<12} n={p['n']:<4} p50 {p['p50_ms']:>8.1f} ms  "
                  f"p99 {p['p99_ms']:>8.1f} ms  max {p['max_ms']:>8.1f} ms  statuses {p['statuses']}")
        for line in r["log"]:
            print(f"      log: {line}")
    print("\n3. ASYNC ECHO JOBS UNDER wrk, 64 CONNECTIONS")
    for r in doc["jobs"]:
        if "error" in r:
            print(f"   {r['version']}: ERROR {r['error']}")
            continue
        w = r["wrk"]
        print(f"   {r['version']}: {w.get('requests')} requests, statuses {w.get('statuses')}, socket errors "
              f"{w.get('socket_errors')}; {r['jobs_created']} jobs created; at the end of wrk {r['states_at_wrk_end']}")
        print(f"   {r['version']}: all final: {r['all_final']} "
              f"({r['seconds_to_final_after_wrk']} s after wrk ended); final states {r['final_states']}; "
              f"{r['new_backends']} new backends ({r.get('new_backends_per_1000_jobs')} per 1,000 jobs)")
        for s in w.get("samples_5xx", []):
            print(f"      5xx body: {s}")
        for job in r["stuck_sample"]:
            print(f"      not final: {job}")
        for line in r["log"]:
            print(f"      log: {line}")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.hardening", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", type=Path, default=REPO_ROOT / "var" / "bench-old",
                   help="checkout of the old code with its own var/venv (default var/bench-old: "
                        "git worktree add var/bench-old <commit> && (cd var/bench-old && ./run db stop))")
    p.add_argument("--only", default="new,old", help="versions to run (default new,old)")
    p.add_argument("--parts", default="1,2,3")
    p.add_argument("--seconds", type=float, default=10.0, help="each timed wrk run (default 10)")
    p.add_argument("--warmup-seconds", type=float, default=3.0)
    p.add_argument("--connections", default="8,64")
    p.add_argument("--tiles-per-run", type=int, default=12000, help="distinct tiles per timed wrk run")
    p.add_argument("--statement-timeout-ms", type=int, default=1500,
                   help="server.statement_timeout_ms of both servers (default 1500; the slow filter alone takes 2-3 s)")
    p.add_argument("--slow-clients", type=int, default=8)
    p.add_argument("--probe-seconds", type=float, default=20.0)
    p.add_argument("--job-deadline", type=float, default=120.0, help="seconds to wait for jobs to be final")
    p.add_argument("--keep-db", action="store_true", help="leave both clusters running")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",")]
    args.parts = {int(x) for x in args.parts.split(",")}
    args.versions = [v.strip() for v in args.only.split(",") if v.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    """Start both databases and servers, run the three parts, report, stop everything."""
    args = _args(argv)
    if not ensure_wrk():
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    started = time.monotonic()
    rng = random.Random(args.seed)
    HOME.mkdir(parents=True, exist_ok=True)
    if "old" in args.only and not (args.old / "var" / "venv" / "bin" / "python").exists():
        raise SystemExit(f"no old checkout with a virtualenv at {args.old}: make one with `git worktree add "
                         f"{args.old} <commit>` and `./run db stop` inside it, or pass --old DIR, or --only new")
    known = {"new": Version("new", REPO_ROOT, 54381), "old": Version("old", args.old.resolve(), 54382)}
    versions = [known[n] for n in args.versions]
    doc: dict[str, Any] = {"args": {k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v)
                                    for k, v in vars(args).items()},
                           "throughput": [], "slow": [], "jobs": []}
    workdir = Path(tempfile.mkdtemp(prefix="sejong-hardening-"))
    try:
        for v in versions:
            print(f"== {v.name}: embedded PostgreSQL on {v.db_port} ({v.datadir}), bundled data", flush=True)
            v.start_db()
            v.start_server(workdir, args.statement_timeout_ms)
            print(f"   {v.name} server on {v.port} (log {v.server.log if v.server else ''})", flush=True)
        if 1 in args.parts:
            print("== 1. throughput", flush=True)
            doc["throughput"] = throughput(versions, workdir, args, rng)
        if 2 in args.parts:
            for v in versions:
                print(f"== 2. {v.name}: /health and a cached tile under {args.slow_clients} slow filters", flush=True)
                try:
                    doc["slow"].append(under_slow_filters(v, args))
                except Exception as exc:  # report and go on
                    doc["slow"].append({"version": v.name, "error": repr(exc)})
        if 3 in args.parts:
            for v in versions:
                print(f"== 3. {v.name}: async echo jobs under wrk at 64 connections", flush=True)
                try:
                    doc["jobs"].append(async_jobs(v, workdir, args))
                except Exception as exc:  # report and go on
                    doc["jobs"].append({"version": v.name, "error": repr(exc)})
    finally:
        for v in versions:
            if v.server is not None:
                v.server.stop()
            if v.stats is not None:
                v.stats.close()
            if not args.keep_db and v.urls:
                v.run_prepare("stop")
        shutil.rmtree(workdir, ignore_errors=True)
    doc["seconds"] = round(time.monotonic() - started, 1)
    print_report(doc)
    write_json(args.out, doc)
    print(f"\nresults written to {args.out} ({doc['seconds']} s); server logs in {HOME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
