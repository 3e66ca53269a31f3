"""python -m bench: OGC API Features items pages from our server, the bare PostGIS query, pygeoapi and tipg."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench import datasets, report, servers
from bench.features import WARMUP, http_floor, run_query
from bench.queries import LIMIT, build_queries
from core.config import REPO_ROOT

SYSTEMS = ("ours", "bare", "pygeoapi", "tipg")
OUT = REPO_ROOT / "var" / "bench" / "features.json"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--reps", type=int, default=30, help="timed repetitions per query and system (default 30)")
    p.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated subset of ours,bare,pygeoapi,tipg")
    p.add_argument("--skip-install", action="store_true", help="do not create the tipg venv if it is missing")
    p.add_argument("--out", type=Path, default=OUT, help=f"JSON results (default {OUT.relative_to(REPO_ROOT)})")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        p.error(f"unknown systems in --only: {', '.join(sorted(unknown))}")
    return args


def _versions(dsn: str) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    try:
        import pygeoapi

        info["pygeoapi"] = pygeoapi.__version__
    except ImportError:
        pass
    tipg_py = servers.TIPG_VENV / "bin" / "python"
    if tipg_py.exists():
        out = subprocess.run([str(tipg_py), "-c", "import importlib.metadata as m; print(m.version('tipg'))"],
                             capture_output=True, text=True, check=False)
        info["tipg"] = out.stdout.strip() or None
    conn = datasets.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), postgis_lib_version()")
            info["postgresql"], info["postgis"] = cur.fetchone()
    finally:
        conn.close()
    return info


def main(argv: list[str] | None = None) -> int:
    """Prepare the tables, start the peers, check counts, time, report, stop everything."""
    args = _args(argv)
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        print("DATABASE_URL is not set (use ./run bench)", file=sys.stderr)
        return 2
    started = time.monotonic()
    tables = datasets.prepare(dsn, {})
    conn = datasets.connect(dsn)
    queries = build_queries(conn, tables)
    print(f"== {len(queries)} queries (limit={LIMIT}); bboxes in CRS84:", flush=True)
    for q in queries:
        if q.bbox:
            print(f"   {q.table.key:<14} {q.label:<8} bbox={','.join(f'{v:.5f}' for v in q.bbox)}  "
                  f"matches {q.matched}", flush=True)

    running: list[servers.Server] = []
    startup_errors: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    floor: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sejong-bench-") as tmp:
        workdir = Path(tmp)
        try:
            starters = {
                "ours": lambda: servers.start_ours(dsn, tables, workdir),
                "pygeoapi": lambda: servers.start_pygeoapi(dsn, tables, workdir),
                "tipg": lambda: servers.start_tipg(dsn, tables, workdir, args.skip_install),
            }
            for name, start in starters.items():
                if name not in args.systems:
                    continue
                print(f"== starting {name}", flush=True)
                try:
                    running.append(start())
                except Exception as exc:  # report and carry on with the other systems
                    startup_errors[name] = str(exc)
                    print(f"!!! ERROR {name} could not start: {exc}", flush=True)
            session = requests.Session()
            print(f"== checking counts and timing ({args.reps} reps after {WARMUP} warm-ups, round-robin)", flush=True)
            for q in queries:
                t0 = time.monotonic()
                results = run_query(q, conn, running, session, args.reps, args.systems)
                rows.append(report.summarize(q, results))
                print(f"   {q.table.key:<14} {q.label:<12} done in {time.monotonic() - t0:5.1f} s", flush=True)
            floor = http_floor(running, session, args.reps)
            session.close()
        finally:
            for srv in running:
                srv.stop()
            conn.close()
    shown = [s for s in SYSTEMS if s in args.systems]
    report.print_table(rows, shown)
    report.print_diagnostics(rows, floor)
    problems = report.print_problems(rows)
    for name, err in startup_errors.items():
        print(f"!!! ERROR    {name} did not start: {err.splitlines()[0] if err else ''}")
    passed = sum(1 for r in rows if r.get("target") == "PASS")
    judged = sum(1 for r in rows if "target" in r)
    if judged:
        print(f"target (ours): {passed}/{judged} rows PASS")
    doc = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"), "reps": args.reps, "limit": LIMIT,
        "systems": shown, "environment": _versions(dsn),
        "method": ("one run, one database; sequential requests over one keep-alive requests.Session; each system "
                   "warmed up 3 times then timed round-robin; HTTP time includes reading the whole body; bare = "
                   "psycopg2 ST_AsGeoJSON+json_agg of the same page fetched as text (deep page via keyset id > last, "
                   "as our next links do); ours deep page = URL reached by following next links, peers use offset"),
        "tables": [{"key": t.key, "table": t.table, "rows": t.rows, "source": t.source, "srid": t.srid}
                   for t in tables],
        "http_floor_p50_ms": {k: round(report.percentile(v, 50), 2) for k, v in floor.items() if v},
        "startup_errors": startup_errors, "rows": rows, "seconds": round(time.monotonic() - started, 1),
    }
    report.write_json(args.out, doc)
    print(f"results written to {args.out} ({doc['seconds']} s)")
    return 1 if problems and any(r.get("target", "").startswith("FAIL (") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
