"""python -m bench.scaleout: the `./run cluster` topology under load, in one run on this machine.

1. warm tiles through the nginx cache tier against one instance directly (wrk, same connections);
2. items pages with one instance (direct) against two instances behind nginx;
3. cold tiles (distinct, never requested) on one instance: the per-core cost of rendering;
4. staleness after a reload: a new data version on the primary until the balancer's tile changes;
5. a 60 s soak at 256 connections through nginx (items + warm tiles, no fault): every answer must be 2xx/304;
6. faults under load: one instance SIGKILLed mid-run and restarted (statuses over the whole run).

Writes var/bench/scaleout.json. Numbers are for this machine: per-core efficiency is requests/s divided by the
machine's cores (everything, wrk included, shares them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2
import requests

from bench.hardening import wrk
from bench.report import write_json
from bench.tiles import ensure_wrk, lonlat_tile, tiles_over
from core.config import REPO_ROOT
from server.cluster import Cluster, Topology

OUT = REPO_ROOT / "var" / "bench" / "scaleout.json"
CITY_HALL = (127.2890, 36.4800)
CENTRAL = (127.23, 36.45, 127.33, 36.53)  # lon/lat box of the new town, inside the street lights' extent
LAYER = "street_lights"


def tile_paths(zooms: tuple[int, ...], per_zoom: int, rng: random.Random) -> list[str]:
    """Distinct street-light tiles over central Sejong (inside the layer's tile matrix set limits)."""
    out: list[str] = []
    for z in zooms:
        tiles = tiles_over(CENTRAL, z)
        rng.shuffle(tiles)
        out += [f"/collections/{LAYER}/tiles/WebMercatorQuad/{z}/{y}/{x}" for _, x, y in tiles[:per_zoom]]
    return out


def items_paths(n: int) -> list[str]:
    """Items pages of street lights at n offsets."""
    return [f"/collections/{LAYER}/items?limit=10&offset={i * 10}" for i in range(n)]


def warm(base: str, paths: list[str]) -> None:
    """Request every path once (cache fill)."""
    with requests.Session() as s:
        for p in paths:
            s.get(base + p, timeout=30)


def staleness(cluster: Cluster, primary_url: str, path: str) -> float:
    """Seconds from a new data version on the primary until the balancer serves a new tile ETag."""
    base = cluster.topo.public_url
    first = requests.get(base + path, timeout=10)
    if "ETag" not in first.headers:
        raise RuntimeError(f"{path}: {first.status_code} without ETag: {first.text[:300]}")
    old = first.headers["ETag"]
    with cluster.following_versions():
        conn = psycopg2.connect(primary_url)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.datasets SET data_version = data_version + 1 WHERE table_name = %s",
                        (f"public.{LAYER}",))
        conn.close()
        t0 = time.monotonic()
        while requests.get(base + path, timeout=10).headers["ETag"] == old:
            if time.monotonic() - t0 > 30:
                return float("inf")
            time.sleep(0.01)
        return time.monotonic() - t0


def fault_run(cluster: Cluster, workdir: Path, seconds: float, connections: int, paths: list[str]) -> dict[str, Any]:
    """wrk through the balancer while one instance is SIGKILLed at a third of the run (restarted at two thirds)."""
    port = cluster.topo.instance_ports[0]
    result: dict[str, Any] = {}

    def load() -> None:
        result.update(wrk(int(cluster.topo.bind.rsplit(":", 1)[1]), workdir, seconds, connections, paths))

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(seconds / 3)
    os.killpg(cluster.instances[port].pid, signal.SIGKILL)
    cluster.instances[port].wait(10)
    time.sleep(seconds / 3)
    cluster.start_instance(port)
    thread.join()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the scale-out benchmark; prints a table and writes var/bench/scaleout.json."""
    p = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=15.0, help="each wrk run (default 15)")
    p.add_argument("--fault-seconds", type=float, default=60.0, help="the run with a killed instance (default 60)")
    p.add_argument("--soak-seconds", type=float, default=60.0,
                   help="items + warm tiles through nginx at --connections with no fault: every answer must be 2xx/304")
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--pg-port", type=int, default=54372, help="the primary's (replica, bouncers: the next three)")
    p.add_argument("--port", type=int, default=18060, help="nginx's (instances, HAProxy, its stats: the next four)")
    args = p.parse_args(argv)
    if not ensure_wrk():
        print("wrk is needed (apt-get install wrk)")
        return 1
    home = REPO_ROOT / "var" / "bench-scaleout"
    workdir = home / "wrk"
    topo = Topology(home=home, pg_port=args.pg_port, replica_port=args.pg_port + 1, bind=f"127.0.0.1:{args.port}",
                    instance_ports=(args.port + 1, args.port + 2), workers=1, threads=8,
                    bouncer_ports=(args.pg_port + 2, args.pg_port + 3), haproxy_bind=f"127.0.0.1:{args.port + 3}",
                    haproxy_stats_bind=f"127.0.0.1:{args.port + 4}",
                    config={"server": {"per_client_concurrency": 4096, "rate_limit_anonymous": 0,
                                       "rate_limit_authenticated": 0}})
    cluster = Cluster(topo)
    rng = random.Random(14)
    cores = os.cpu_count() or 1
    doc: dict[str, Any] = {"cores": cores, "connections": args.connections, "seconds": args.seconds}
    try:
        print("== starting the cluster (primary + replica behind PgBouncers, 2 instances, HAProxy, nginx)", flush=True)
        cluster.start(only=[LAYER])
        workdir.mkdir(parents=True, exist_ok=True)
        lb = int(topo.bind.rsplit(":", 1)[1])
        one = topo.instance_ports[0]
        warm_tiles = tile_paths((14, 15, 16), 40, rng)
        warm(topo.public_url, warm_tiles)
        warm(f"http://127.0.0.1:{one}", warm_tiles)
        quiet = max(3.0, args.seconds / 3)  # latency without queueing: 2 connections
        runs = {
            "warm_tiles_cache_tier_2conn": wrk(lb, workdir, quiet, 2, warm_tiles),
            "warm_tiles_direct_instance_2conn": wrk(one, workdir, quiet, 2, warm_tiles),
            "warm_tiles_cache_tier": wrk(lb, workdir, args.seconds, args.connections, warm_tiles),
            "warm_tiles_direct_instance": wrk(one, workdir, args.seconds, args.connections, warm_tiles),
            "items_one_instance": wrk(one, workdir, args.seconds, 64, items_paths(500)),
            "items_two_instances": wrk(lb, workdir, args.seconds, 64, items_paths(500)),
            "cold_tiles_one_instance": wrk(one, workdir, args.seconds, 16, tile_paths((17, 18), 4000, rng)),
        }
        doc["runs"] = runs
        write_json(OUT, doc)
        mixed = warm_tiles + items_paths(120)  # items always reach an instance (through HAProxy's queue)
        warm(topo.public_url, mixed)
        doc["soak"] = wrk(lb, workdir, args.soak_seconds, args.connections, mixed)
        write_json(OUT, doc)
        cx, cy = lonlat_tile(*CITY_HALL, 15)
        probe = f"/collections/{LAYER}/tiles/WebMercatorQuad/15/{cy}/{cx}"
        doc["staleness_s"] = [round(staleness(cluster, cluster.primary.url, probe), 3) for _ in range(3)]
        write_json(OUT, doc)
        doc["load_average"] = os.getloadavg()
        doc["fault_run"] = fault_run(cluster, workdir, args.fault_seconds, args.connections, items_paths(500))
        for r in runs.values():
            if "rps" in r:
                r["rps_per_core"] = round(r["rps"] / cores, 1)
        write_json(OUT, doc)
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {cores} cores")
        print(f"{'run':32} {'req/s':>9} {'per core':>9} {'p50 ms':>8} {'p99 ms':>8}  statuses")
        for name, r in runs.items():
            print(f"{name:32} {r.get('rps', 0):9.0f} {r.get('rps_per_core', 0):9.0f} {r.get('p50_ms', 0):8.2f} "
                  f"{r.get('p99_ms', 0):8.2f}  {r.get('statuses', r.get('error'))}")
        soak = doc["soak"]
        print(f"soak ({args.soak_seconds:.0f} s, {args.connections} conns, items + warm tiles, no fault): "
              f"{soak.get('requests')} requests, {soak.get('rps', 0):.0f} req/s, p99 {soak.get('p99_ms', 0):.1f} ms, "
              f"statuses {soak.get('statuses')}, socket errors {soak.get('socket_errors')}")
        print(f"staleness after a reload (s): {doc['staleness_s']}")
        f = doc["fault_run"]
        print(f"instance killed under load ({args.fault_seconds:.0f} s, {args.connections} conns): "
              f"{f.get('requests')} requests, statuses {f.get('statuses')}, socket errors {f.get('socket_errors')}")
        print(json.dumps({"out": str(OUT)}))
    finally:
        cluster.stop()
        shutil.rmtree(home / "nginx" / "cache", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
