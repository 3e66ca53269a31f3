"""python -m bench.surfaces: air-quality surfaces on the real Seoul 2018-2022 daily readings.

- `loo`: leave-one-station-out RMSE/MAE of IDW, ordinary kriging and the nearest station, pooled over every day of
  the chosen years (the numbers the README quotes), read straight from the bundled CSVs and the station list.
- `build`: time to build one daily surface (interpolation on 100 m cells + COG) and a year of days.
- `serve` (needs DATABASE_URL with surfaces built, and titiler.core + uvicorn from the [bench] extra): our server
  (gunicorn, 1 worker) and TiTiler (uvicorn, 1 worker) on the same newest pm10_seoul COG, in the same run: cold
  PNG tiles (each tile's first request), warm tiles (the same again), and a 5 km Coverages subset as GeoTIFF.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from core.config import load_config
from loaders import crs
from loaders.core import RowStats
from loaders.readings import parse_stations_js, seoul_daily
from loaders.surfaces.build import region_grid, write_cog
from loaders.surfaces.surface import Params, Stations, interpolate
from loaders.surfaces.validation import loo_errors

STATIONS = "korea/airkorea-stations/airKoreaStations.js"
YEARS = range(2018, 2023)


def seoul_days(data_dir: Path, years: list[int]) -> dict[str, dict[Any, list[tuple[float, float, float]]]]:
    """pollutant -> day -> [(x, y, value)] for the 25 Seoul district stations."""
    found = {n: (la, lo) for n, la, lo in parse_stations_js(data_dir / STATIONS) if n.endswith("구")}
    out: dict[str, dict[Any, list[tuple[float, float, float]]]] = {"pm10": defaultdict(list),
                                                                     "pm25": defaultdict(list)}
    names = sorted(found)
    lat = np.array([found[n][0] for n in names])
    lon = np.array([found[n][1] for n in names])
    gx, gy = crs.transform(lon, lat, 4326, crs.STORAGE_SRID)
    where = {n: (float(x), float(y)) for n, x, y in zip(names, gx, gy, strict=True)}
    for year in years:
        for row in seoul_daily(data_dir / f"seoul/air-daily/{year}.csv", RowStats()):
            xy = where.get(row["station_name"])
            if xy is None:
                continue
            for p in out:
                if row[p] is not None:
                    out[p][row["measured_at"]].append((*xy, float(row[p])))
    return out


def loo(days: dict[str, dict[Any, list[tuple[float, float, float]]]], p: Params) -> dict[str, Any]:
    """Pooled leave-one-out errors per pollutant and method."""
    result: dict[str, Any] = {}
    for pollutant, per_day in days.items():
        errors: dict[str, list[np.ndarray]] = defaultdict(list)
        for obs in per_day.values():
            if len(obs) < 3:
                continue
            a = np.array(obs)
            for m in ("idw", "kriging", "nearest"):
                errors[m].append(loo_errors(m, a[:, 0], a[:, 1], a[:, 2], p.power, p.min_kriging_stations))
        result[pollutant] = {"days": len(per_day)}
        for m, errs in errors.items():
            e = np.concatenate(errs)
            result[pollutant][m] = {"rmse": round(float(np.sqrt(np.mean(e ** 2))), 2),
                                    "mae": round(float(np.mean(np.abs(e))), 2), "n": int(e.size)}
    return result


def build_times(days: dict[str, dict[Any, list[tuple[float, float, float]]]], method: str, p: Params,
                n_days: int) -> dict[str, float]:
    """Seconds to interpolate and write one daily PM10 surface (median of 10) and n_days of them."""
    cfg = load_config().surfaces
    grid = region_grid(cfg.regions["seoul"], cfg.cell_m)
    obs = [np.array(v) for _, v in sorted(days["pm10"].items())][-n_days:]
    with tempfile.TemporaryDirectory() as tmp:
        def one(a: np.ndarray, i: int) -> None:
            values, _ = interpolate(Stations(a[:, 0], a[:, 1], a[:, 2]), grid, method, p)
            write_cog(Path(tmp) / f"{i}.tif", values, grid, {})

        single = []
        for i in range(10):
            t = time.perf_counter()
            one(obs[-1], i)
            single.append(time.perf_counter() - t)
        t = time.perf_counter()
        for i, a in enumerate(obs):
            one(a, i)
        year = time.perf_counter() - t
        product = []  # as loaders.surfaces.build runs a day: leave-one-out of every method, then surface + COG
        for i in range(5):
            t = time.perf_counter()
            a = obs[-1]
            for m in cfg.methods:
                loo_errors(m, a[:, 0], a[:, 1], a[:, 2], p.power, p.min_kriging_stations)
            one(a, 100 + i)
            product.append(time.perf_counter() - t)
    return {"cells": grid.rows * grid.cols, "one_day_s": round(statistics.median(single), 3),
            "one_day_with_validation_s": round(statistics.median(product), 3),
            "days": len(obs), "all_days_s": round(year, 1)}


GRADE_COLORMAP = [[[0, 30.0001], [30, 111, 217, 170]], [[30.0001, 80.0001], [46, 158, 68, 170]],
                  [[80.0001, 150.0001], [242, 146, 0, 170]], [[150.0001, 10000], [215, 38, 30, 170]]]


@functools.cache
def _session() -> Any:
    """One kept-alive HTTP client for every peer, so connection set-up is counted for no one."""
    import requests

    return requests.Session()


def _timed_get(url: str, params: dict[str, str] | None = None) -> float:
    """Milliseconds of one GET over the kept-alive client."""
    t = time.perf_counter()
    r = _session().get(url, params=params, timeout=60)
    elapsed = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")
    return elapsed * 1000


def _percentiles(ms: list[float], prefix: str) -> dict[str, float]:
    """p50 and p90 of a list of milliseconds."""
    q = statistics.quantiles(ms, n=10)
    return {f"{prefix}_p50_ms": round(statistics.median(ms), 2), f"{prefix}_p90_ms": round(q[-1], 2)}


def serve(dsn: str) -> dict[str, Any]:
    """Cold and warm PNG tiles and a Coverages subset, ours against TiTiler on the same COG."""
    import os

    import morecantile
    import psycopg2

    from bench import servers

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT path, (valid_at AT TIME ZONE 'Asia/Seoul')::date FROM meta.surfaces "
                    "WHERE collection_id = 'pm10_seoul' ORDER BY valid_at DESC LIMIT 1")
        path, day = cur.fetchone()
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = [t for z in (11, 12, 13) for t in tms.tiles(126.85, 37.45, 127.15, 37.68, [z])][:120]
    with tempfile.TemporaryDirectory() as tmp:
        ours = servers.start_ours(dsn, [], Path(tmp))
        port = servers.free_port()
        cmd = [str(Path(sys.executable).parent / "uvicorn"), "bench.titiler_app:app", "--port", str(port),
               "--workers", "1", "--log-level", "warning"]
        log = Path(tmp) / "titiler.log"
        titiler = servers.Server("titiler", port, servers._spawn(cmd, dict(os.environ), log), log, {})
        try:
            servers._wait_ready(titiler, "/docs")
            cmap = json.dumps(GRADE_COLORMAP)
            out: dict[str, Any] = {"tiles": len(tiles), "cog": Path(path).name}
            for name, url in (("ours", lambda t: f"{ours.base}/collections/pm10_seoul/map/tiles/WebMercatorQuad/"
                                              f"{t.z}/{t.y}/{t.x}"),
                              ("titiler", lambda t: f"{titiler.base}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png")):
                params = None if name == "ours" else {"url": str(path), "colormap": cmap}
                _timed_get(url(tiles[-1]), params)  # connection and GDAL warm-up, not counted
                cold = [_timed_get(url(t), params) for t in tiles[:-1]]
                warm = [_timed_get(url(t), params) for t in tiles[:-1]]
                out[name] = {**_percentiles(cold, "cold"), **_percentiles(warm, "warm")}
            x0, y0 = 195000, 545000
            sub = {"subset": f"E({x0}:{x0 + 5000}),N({y0}:{y0 + 5000})", "f": "tif", "datetime": str(day)}
            out["ours"]["coverage_subset_p50_ms"] = round(statistics.median(
                [_timed_get(f"{ours.base}/collections/pm10_seoul/coverage", sub) for _ in range(30)]), 2)
            lon0, lat0 = crs.transform(np.array([x0, x0 + 5000.0]), np.array([y0, y0 + 5000.0]),
                                       crs.STORAGE_SRID, 4326)
            bbox = f"{lon0[0]},{lat0[0]},{lon0[1]},{lat0[1]}"
            out["titiler"]["coverage_subset_p50_ms"] = round(statistics.median(
                [_timed_get(f"{titiler.base}/bbox/{bbox}/50x50.tif", {"url": str(path)}) for _ in range(30)]), 2)
            return out
        finally:
            ours.stop()
            titiler.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for and print JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.surfaces", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="*", default=["loo", "build"], choices=["loo", "build", "serve"])
    ap.add_argument("--years", default="2018-2022", help="years of readings for loo (e.g. 2022 or 2018-2022)")
    ap.add_argument("--method", default="idw", help="method of the timed builds")
    args = ap.parse_args(argv)
    a, _, b = args.years.partition("-")
    years = list(range(int(a), int(b or a) + 1))
    cfg = load_config().surfaces
    p = Params(cfg.max_distance_m, cfg.idw_power, cfg.min_kriging_stations)
    days = seoul_days(load_config().data.path(), years) if {"loo", "build"} & set(args.parts) else {}
    out: dict[str, Any] = {"years": args.years}
    if "build" in args.parts:
        out["build"] = build_times(days, args.method, p, 365)
        print(json.dumps(out["build"]), file=sys.stderr, flush=True)
    if "serve" in args.parts:
        import os

        out["serve"] = serve(os.environ["DATABASE_URL"])
    if "loo" in args.parts:
        t = time.perf_counter()
        out["loo"] = loo(days, p)
        out["loo_seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
