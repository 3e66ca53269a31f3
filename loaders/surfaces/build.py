"""`surfaces`: build the air-quality surfaces of config.yml from the loaded readings (COGs + meta.surfaces).

For each region and pollutant, the newest `surfaces.recent_days` days with readings (collection
`<pollutant>_<region>`) and, where hourly readings exist, the newest `surfaces.recent_hours` hours (collection
`<pollutant>_<region>_hourly`) are interpolated onto an EPSG:5186 grid; every surface is cross-validated (leave one
station out) with every configured method, and the default method (`auto`) is the one with the lowest RMSE pooled
over the steps built.  The COGs are written first
under new names, then meta.surfaces is swapped in one transaction, then files no row names are removed.  A build
is skipped while the readings' data version and the configuration are unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import rasterio
import rasterio.shutil
from psycopg2 import sql
from psycopg2.extensions import parse_dsn
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from core.config import SurfaceRegion, SurfacesConfig, database_url, load_config
from core.schema import migrate
from loaders import crs
from loaders.core import connect
from loaders.surfaces.grid import Grid
from loaders.surfaces.surface import Params, Stations, Surface, build
from loaders.surfaces.validation import Score, best, loo_errors, score

READINGS = "public.air_quality_readings"
STATIONS = "public.air_quality_stations"
NODATA = -9999.0
KST = ZoneInfo("Asia/Seoul")
PERIODS = ("day", "hour")
FILE_TIME = {"day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}  # the COG name's time part (KST)


@dataclass(frozen=True)
class Day:
    """One time step of one pollutant: when, and the stations with a valid reading."""

    valid_at: datetime
    stations: Stations


def collection_id(pollutant: str, region: str, period: str = "day") -> str:
    """The collection id of a surface series, e.g. pm10_seoul (daily) or pm10_sejong_hourly."""
    return f"{pollutant}_{region}" if period == "day" else f"{pollutant}_{region}_hourly"


def region_grid(region: SurfaceRegion, cell: float) -> Grid:
    """The EPSG:5186 grid covering a region's lon/lat box."""
    x0, y0, x1, y1 = region.bbox
    xs, ys = crs.transform(np.array([x0, x1, x0, x1]), np.array([y0, y0, y1, y1]), 4326, crs.STORAGE_SRID)
    return Grid.covering(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()), cell)


def readings_version(cur: Any) -> int | None:
    """Data version of the readings table (None: readings or stations never loaded)."""
    cur.execute("SELECT data_version FROM meta.datasets WHERE table_name = %s AND to_regclass(%s) IS NOT NULL",
                (READINGS, STATIONS))
    row = cur.fetchone()
    return int(row[0]) if row else None


def recent_days(cur: Any, region: SurfaceRegion, pollutant: str, days: int, period: str = "day") -> list[Day]:
    """The newest `days` time steps of `period` (day | hour) with valid readings at the region's stations (flagged
    values left out)."""
    value, flag = sql.Identifier(pollutant), sql.Identifier(f"{pollutant}_flag")
    cur.execute(sql.SQL("""
        WITH st AS (
          SELECT DISTINCT ON (name) name, ST_X(geom) AS x, ST_Y(geom) AS y FROM {stations}
          WHERE sido = ANY(%(sido)s) ORDER BY name, id),
        r AS (
          SELECT r.measured_at, st.x, st.y, r.{value}::float8 AS v FROM {readings} r JOIN st ON st.name = r.station_name
          WHERE r.period = %(period)s AND r.{value} IS NOT NULL AND r.{flag} IS NULL),
        d AS (SELECT measured_at FROM r GROUP BY measured_at HAVING count(*) >= 2  -- LOO needs two stations
              ORDER BY measured_at DESC LIMIT %(days)s)
        SELECT r.measured_at, array_agg(r.x), array_agg(r.y), array_agg(r.v) FROM r JOIN d USING (measured_at)
        GROUP BY r.measured_at ORDER BY r.measured_at""").format(
        stations=sql.Identifier(*STATIONS.split(".")), readings=sql.Identifier(*READINGS.split(".")),
        value=value, flag=flag), {"sido": region.sido, "days": days, "period": period})
    return [Day(when, Stations.of(x, y, v)) for when, x, y, v in cur.fetchall()]


def params(cfg: SurfacesConfig) -> Params:
    """Interpolation parameters of the configuration."""
    return Params(cfg.max_distance_m, cfg.idw_power, cfg.min_kriging_stations)


def day_errors(day: Day, methods: list[str], p: Params) -> dict[str, np.ndarray]:
    """Leave-one-station-out errors of each method on one day."""
    st = day.stations
    return {m: loo_errors(m, st.x, st.y, st.values, p.power, p.min_kriging_stations) for m in methods}


def pooled(per_day: list[dict[str, np.ndarray]], methods: list[str]) -> dict[str, Score]:
    """RMSE/MAE of each method over all stations of all days."""
    return {m: score(m, np.concatenate([d[m] for d in per_day]) if per_day else np.empty(0)) for m in methods}


def write_cog(path: Path, values: np.ndarray, grid: Grid, tags: dict[str, str]) -> None:
    """A float32 Cloud-Optimized GeoTIFF in EPSG:5186 (nodata -9999), written to a temporary name then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.where(np.isfinite(values), values, NODATA).astype(np.float32)
    profile = {"driver": "GTiff", "height": grid.rows, "width": grid.cols, "count": 1, "dtype": "float32",
               "crs": f"EPSG:{crs.STORAGE_SRID}", "transform": from_origin(grid.left, grid.top, grid.cell, grid.cell),
               "nodata": NODATA}
    tmp = path.with_suffix(".tmp.tif")
    with MemoryFile() as mem, mem.open(**profile) as ds:
        ds.write(data, 1)
        ds.update_tags(**tags)
        rasterio.shutil.copy(ds, tmp, driver="COG", compress="DEFLATE", level=1, predictor="3", blocksize=256,
                             overview_resampling="average")
    tmp.replace(path)


def _fingerprint(cfg: SurfacesConfig, region: SurfaceRegion) -> str:
    """A short hash of what shapes a build (so a config change rebuilds)."""
    doc = {"cfg": cfg.model_dump(exclude={"regions", "directory"}), "region": region.model_dump()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:10]


def database_folder(dsn: str) -> str:
    """A folder name per database (host-port-name), so clusters sharing a checkout never share COGs."""
    parts = parse_dsn(dsn)
    return "-".join(re.sub(r"[^A-Za-z0-9_.]", "_", str(parts.get(k, ""))) for k in ("host", "port", "dbname"))


def _current(cur: Any, cid: str) -> tuple[set[int], set[str]]:
    """Readings versions and paths of a collection's stored surfaces."""
    cur.execute("SELECT readings_version, path FROM meta.surfaces WHERE collection_id = %s", (cid,))
    rows = cur.fetchall()
    return {int(r[0]) for r in rows}, {str(r[1]) for r in rows}


def build_collection(dsn: str, cfg: SurfacesConfig, region_id: str, pollutant: str, force: bool = False,
                     period: str = "day") -> int:
    """Build (or keep) one collection's surfaces (`period` day or hour); returns the number of surfaces stored."""
    region = cfg.regions[region_id]
    cid = collection_id(pollutant, region_id, period)
    steps = cfg.recent_days if period == "day" else cfg.recent_hours
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            version = readings_version(cur)
            days = recent_days(cur, region, pollutant, steps, period) if version is not None else []
            stored_versions, stored_paths = _current(cur, cid)
        conn.rollback()
        stamp = f"v{version}-{_fingerprint(cfg, region)}"
        folder = cfg.path() / database_folder(dsn) / cid
        if not days and not stored_paths:
            return 0  # no readings of this period for the region: no collection, nothing to say
        if not force and days and stored_versions == {version} and all(
                p.startswith(str(folder)) and stamp in p for p in stored_paths):
            print(f"surfaces {cid}: unchanged (readings version {version}), skipped", file=sys.stderr)
            return len(stored_paths)
        p = params(cfg)
        methods: list[str] = list(cfg.methods)
        per_day = [day_errors(d, methods, p) for d in days]
        overall = pooled(per_day, methods)
        method = best(overall) if cfg.method == "auto" else cfg.method
        grid = region_grid(region, cfg.cell_m)
        rows = []
        for day, errors in zip(days, per_day, strict=True):
            surface: Surface = build(day.stations, grid, method, [], p)
            name = f"{day.valid_at.astimezone(KST).strftime(FILE_TIME[period])}-{stamp}.tif"
            validation = {m: score(m, e).as_dict() for m, e in errors.items()}
            write_cog(folder / name, surface.values, grid, {
                "collection": cid, "pollutant": pollutant, "valid_at": day.valid_at.isoformat(),
                "method": surface.method, "readings_version": str(version), "validation": json.dumps(validation)})
            rows.append((cid, region_id, pollutant, period, day.valid_at, surface.method, version,
                         surface.stations, json.dumps({"methods": validation, "pooled": {
                             m: s.as_dict() for m, s in overall.items()}, "default": method}),
                         str(folder / name)))
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('sejong-surfaces'))")
            cur.execute("DELETE FROM meta.surfaces WHERE collection_id = %s", (cid,))
            for row in rows:
                cur.execute("INSERT INTO meta.surfaces (collection_id, region, pollutant, period, valid_at, method, "
                            "readings_version, stations, validation, path) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                            "%s::jsonb, %s)", row)
        conn.commit()
    finally:
        conn.close()
    keep = {r[-1] for r in rows}
    for old in stored_paths - keep:
        Path(old).unlink(missing_ok=True)
    pooled_text = ", ".join(f"{m} {s.rmse:.2f}/{s.mae:.2f}" for m, s in overall.items())
    print(f"surfaces {cid}: {len(rows)} {period}s by {method} (LOO RMSE/MAE {pooled_text})", file=sys.stderr)
    return len(rows)


def build_all(dsn: str, force: bool = False, periods: tuple[str, ...] = PERIODS) -> dict[str, int]:
    """Every configured surface collection of `periods`; collection id -> surfaces stored."""
    cfg = load_config().surfaces
    migrate(dsn)
    return {collection_id(p, r, t): build_collection(dsn, cfg, r, p, force, t)
            for r in cfg.regions for p in cfg.pollutants for t in periods}


def main(argv: list[str] | None = None) -> int:
    """`./run load surfaces [--force]`."""
    ap = argparse.ArgumentParser(prog="load surfaces", description=__doc__)
    ap.add_argument("--force", action="store_true", help="rebuild even when the readings are unchanged")
    args = ap.parse_args(argv)
    for cid, n in build_all(database_url(), args.force).items():
        print(f"{cid}: {n} surfaces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
