"""Loading throughput (rows/s): our loaders against `ogr2ogr -f PostgreSQL` and `shp2pgsql | psql` on the same files.

Workloads (same run, same database):
- the Seoul daily air-quality readings (seoul/air-daily, five yearly CP949 CSVs, ~87k rows) joined into one CSV:
  ours through the readings recipe (`python -m loaders readings`) and as a generic table typed by content
  (`csv --no-geometry`); ogr2ogr with AUTODETECT_TYPE on a UTF-8 copy (GDAL's CSV driver does not read CP949);
  a bare `psql \\copy` of the UTF-8 copy into a text table is the floor;
- a generated 200,000-parcel shapefile in the official 연속지적도 layout (LSMD_CONT_LDREG: PNU, JIBUN, BCHK,
  EPSG:5186), parcels on a jittered grid over Sejong: ours (`python -m loaders file`, layout detected, every check
  of the loaders), `ogr2ogr -f PostgreSQL` and `shp2pgsql -D -I | psql`; all three build a GiST index.

Our loads do every check: encoding by content, region and CRS plausibility, staging + validation + swap in one
transaction, the data-quality report.  Usage: `var/venv/bin/python -m bench.loading` (DATABASE_URL, or --port to
start a throwaway PostGIS there).  Results: var/bench/loading.json.

Measured (2 CPUs shared with other jobs, load average 4-10, one run, ogr2ogr in the same run): readings recipe
22,968 rows/s = 0.36x ogr2ogr, generic typed CSV 25,139 = 0.40x; parcels 13,205 = 0.26x ogr2ogr, 0.25x
shp2pgsql | psql (before the column-wise COPY / cached converters / index rebuild work: 0.14x, 0.19x, 0.21x, 0.21x).
The 0.7x target is not reached yet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import psycopg2.extensions

from core.config import REPO_ROOT, load_config

OUT = REPO_ROOT / "var" / "bench" / "loading.json"
PARCELS = 200_000


def _pg_keywords(dsn: str) -> dict[str, str]:
    return {k: v for k, v in psycopg2.extensions.parse_dsn(dsn).items() if v}


def _sql(dsn: str, statement: str) -> Any:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            out = cur.fetchall() if cur.description else None
        conn.commit()
        return out
    finally:
        conn.close()


def _run(cmd: list[str] | str, env: dict[str, str] | None = None, shell: bool = False) -> None:
    res = subprocess.run(cmd, env=env, shell=shell, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        shown = cmd if isinstance(cmd, str) else " ".join(cmd)
        shown = re.sub(r"password=\S+", "password=***", shown)  # never print the password
        raise SystemExit(f"{shown} failed:\n{res.stderr[-2000:]}")


def readings_csv(folder: Path) -> tuple[Path, Path, int]:
    """seoul/air-daily joined into one CP949 CSV (one header) and its UTF-8 copy; returns both and the row count."""
    files = sorted((load_config().data.path() / "seoul" / "air-daily").glob("*.csv"))
    lines: list[bytes] = []
    for i, f in enumerate(files):
        data = f.read_bytes().splitlines()
        lines.extend(data if i == 0 else data[1:])
    cp949 = folder / "seoul_air_daily_2018_2022.csv"
    cp949.write_bytes(b"\r\n".join(lines) + b"\r\n")
    utf8 = folder / "seoul_air_daily_2018_2022_utf8.csv"
    utf8.write_text(cp949.read_bytes().decode("cp949"), encoding="utf-8")
    return cp949, utf8, len(lines) - 1


def parcels_shapefile(folder: Path, n: int = PARCELS, seed: int = 9) -> Path:
    """n parcels in the LSMD_CONT_LDREG layout: jittered quadrilaterals on a grid over Sejong, EPSG:5186."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    x0, y0, cell = 222_000.0, 412_000.0, 40.0  # around 조치원-정부청사, EPSG:5186 metres
    i = np.arange(n)
    cx, cy = x0 + (i % side) * cell, y0 + (i // side) * cell
    j = rng.uniform(-4, 4, size=(n, 4, 2))
    corners = np.stack([np.stack([cx + 2, cy + 2], 1), np.stack([cx + cell - 2, cy + 2], 1),
                        np.stack([cx + cell - 2, cy + cell - 2], 1), np.stack([cx + 2, cy + cell - 2], 1)], 1) + j
    rings = np.concatenate([corners, corners[:, :1]], axis=1)
    polys = shapely.polygons(rings)
    dong = rng.choice(["3611010100", "3611010200", "3611025021", "3611011000", "3611034022"], n)
    main, sub = rng.integers(1, 2000, n), rng.integers(0, 60, n)
    jimok = rng.choice(["대", "전", "답", "임", "도", "공"], n)
    frame = gpd.GeoDataFrame({
        "PNU": [f"{d}1{k // 10_000 + 1:04d}{k % 10_000:04d}" for d, k in zip(dong, i, strict=True)],  # unique
        "JIBUN": [f"{m}-{s} {k}" if s else f"{m} {k}" for m, s, k in zip(main, sub, jimok, strict=True)],
        "BCHK": np.full(n, "1"), "SGG_OID": i + 1, "COL_ADM_SE": np.full(n, "36110"),
    }, geometry=polys, crs="EPSG:5186")
    path = folder / "LSMD_CONT_LDREG_36110_BENCH.shp"
    frame.to_file(path, engine="pyogrio", encoding="UTF-8")
    return path


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Run each loader once per workload (best of --reps) and print rows/s and the ratios."""
    ap = argparse.ArgumentParser(prog="python -m bench.loading", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, help="start a throwaway PostGIS on this port (default: use DATABASE_URL)")
    ap.add_argument("--reps", type=int, default=1, help="runs per loader and workload; the best counts")
    ap.add_argument("--parcels", type=int, default=PARCELS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    for tool in ("ogr2ogr", "shp2pgsql", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: install gdal-bin and postgis (shp2pgsql), e.g. apt-get install "
                             f"gdal-bin postgis")
    cluster = None
    if args.port:
        from server.pgcluster import LocalCluster, cluster_home

        home = cluster_home(REPO_ROOT, f"pg-bench-{args.port}")
        shutil.rmtree(home, ignore_errors=True)
        cluster = LocalCluster(datadir=home / "data", port=args.port)
        cluster.start()
        dsn = cluster.url
    else:
        dsn = os.environ.get("DATABASE_URL", "")
        if not dsn:
            raise SystemExit("set DATABASE_URL or pass --port")
    try:
        return _bench(dsn, args)
    finally:
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


def _bench(dsn: str, args: argparse.Namespace) -> int:
    from loaders.cli import load_readings
    from loaders.core import migrate
    from loaders.fileload import load_csv, load_file

    region = load_config().data.region
    kw = _pg_keywords(dsn)
    pg = "PG:" + " ".join(f"{k}={v}" for k, v in kw.items())
    env = dict(os.environ, PGPASSWORD=kw.get("password", ""), PGCLIENTENCODING="UTF8")
    psql = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", kw.get("host", "127.0.0.1"), "-p", kw.get("port", "5432"),
            "-U", kw.get("user", ""), "-d", kw.get("dbname", "")]
    migrate(dsn)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sejong-bench-load-") as tmp:
        folder = Path(tmp)
        cp949, utf8, n_read = readings_csv(folder)
        shp = parcels_shapefile(folder, args.parcels)

        def drop(*tables: str) -> None:
            for t in tables:
                _sql(dsn, f"DROP TABLE IF EXISTS {t} CASCADE")
            _sql(dsn, "DELETE FROM meta.datasets WHERE table_name LIKE 'public.bench\\_%' "
                      "OR table_name = 'public.air_quality_readings'")

        def best(name: str, rows: int, setup: Callable[[], None], fn: Callable[[], Any]) -> None:
            times = []
            for _ in range(args.reps):
                setup()
                times.append(timed(fn))
            results[name] = {"rows": rows, "seconds": round(min(times), 3), "rows_per_s": round(rows / min(times))}
            print(f"{name:34s} {rows:>8,} rows  {min(times):7.2f} s  {rows / min(times):>10,.0f} rows/s", flush=True)

        print(f"== readings CSV: {n_read:,} rows ({cp949.stat().st_size / 1e6:.1f} MB CP949)", flush=True)
        best("readings: ours (readings recipe)", n_read, lambda: drop("public.air_quality_readings"),
             lambda: load_readings(dsn, [cp949]))
        best("readings: ours (generic, typed)", n_read, lambda: drop("public.bench_readings"),
             lambda: load_csv(dsn, cp949, "public.bench_readings", geometry=False))
        best("readings: ogr2ogr", n_read, lambda: drop("public.bench_ogr_readings"), lambda: _run(
            ["ogr2ogr", "-f", "PostgreSQL", pg, str(utf8), "-nln", "public.bench_ogr_readings",
             "-oo", "AUTODETECT_TYPE=YES", "-oo", "EMPTY_STRING_AS_NULL=YES", "--config", "PG_USE_COPY", "YES"],
            env))
        cols = ", ".join(f'"c{i}" text' for i in range(len(cp949.read_text(encoding="cp949").splitlines()[0]
                                                             .split(","))))
        best("readings: psql \\copy (text, floor)", n_read,
             lambda: (drop("public.bench_copy_readings"),
                      _sql(dsn, f"CREATE TABLE public.bench_copy_readings ({cols})")),  # type: ignore[func-returns-value]
             lambda: _run([*psql, "-c", f"\\copy public.bench_copy_readings FROM '{utf8}' WITH (FORMAT csv, "
                                        f"HEADER true)"], env))
        got = _sql(dsn, "SELECT (SELECT count(*) FROM public.air_quality_readings), "
                        "(SELECT count(*) FROM public.bench_readings), "
                        "(SELECT count(*) FROM public.bench_ogr_readings)")
        print(f"   stored rows: ours {got[0][0]:,} / generic {got[0][1]:,} / ogr2ogr {got[0][2]:,}")

        print(f"== parcels shapefile: {args.parcels:,} polygons, LSMD_CONT_LDREG layout, EPSG:5186", flush=True)
        best("parcels: ours (file, lsmd layout)", args.parcels, lambda: drop("public.bench_parcels"),
             lambda: load_file(dsn, shp, "public.bench_parcels", bbox=region))
        best("parcels: ogr2ogr", args.parcels, lambda: drop("public.bench_ogr_parcels"), lambda: _run(
            ["ogr2ogr", "-f", "PostgreSQL", pg, str(shp), "-a_srs", "EPSG:5186", "-nln", "public.bench_ogr_parcels",
             "-nlt",
             "PROMOTE_TO_MULTI", "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST", "--config",
             "PG_USE_COPY", "YES"], env))
        best("parcels: shp2pgsql | psql", args.parcels, lambda: drop("public.bench_shp_parcels"), lambda: _run(
            f"shp2pgsql -s 5186 -D -I -W UTF-8 -g geom {shp} public.bench_shp_parcels | "
            + " ".join(psql), env, shell=True))
        got = _sql(dsn, "SELECT (SELECT count(*) FROM public.bench_parcels), (SELECT count(*) FROM "
                        "public.bench_ogr_parcels), (SELECT count(*) FROM public.bench_shp_parcels)")
        print(f"   stored rows: ours {got[0][0]:,} / ogr2ogr {got[0][1]:,} / shp2pgsql {got[0][2]:,}")
        drop("public.bench_readings", "public.bench_ogr_readings", "public.bench_copy_readings",
             "public.bench_parcels", "public.bench_ogr_parcels", "public.bench_shp_parcels")

    def ratio(a: str, b: str) -> float:
        return round(results[a]["rows_per_s"] / results[b]["rows_per_s"], 2)

    ratios = {
        "readings ours(recipe) / ogr2ogr": ratio("readings: ours (readings recipe)", "readings: ogr2ogr"),
        "readings ours(generic) / ogr2ogr": ratio("readings: ours (generic, typed)", "readings: ogr2ogr"),
        "parcels ours / ogr2ogr": ratio("parcels: ours (file, lsmd layout)", "parcels: ogr2ogr"),
        "parcels ours / shp2pgsql|psql": ratio("parcels: ours (file, lsmd layout)", "parcels: shp2pgsql | psql"),
    }
    print("== ratios (target: ours >= 0.7x ogr2ogr)")
    for k, v in ratios.items():
        print(f"   {k:36s} {v:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "ratios": ratios, "cpus": os.cpu_count()}, indent=2),
                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
