"""Air-quality surfaces on the real Seoul readings: exactness at stations, nodata beyond reach, leave-one-out errors
recomputed here by a plain loop, and the build's skip/rebuild rules."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from db_helpers import query
from pykrige.ok import OrdinaryKriging
from pyproj import Transformer

from core.config import load_config
from loaders.surfaces.build import build_collection
from loaders.surfaces.interpolate import estimate, idw

METHODS = ("idw", "kriging", "nearest")


def surfaces(dsn: str, collection: str) -> list[tuple[Any, ...]]:
    """(surface_id, valid_at, method, readings_version, stations, validation, path) oldest first."""
    return query(dsn, "SELECT surface_id, valid_at, method, readings_version, stations, validation, path "
                      "FROM meta.surfaces WHERE collection_id = %s ORDER BY valid_at", (collection,))


def stations_on(dsn: str, pollutant: str, when: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seoul stations with a valid daily reading at `when`, projected to EPSG:5186 here from their lon/lat."""
    rows = query(dsn, f"SELECT s.lon, s.lat, r.{pollutant}::float8 FROM public.air_quality_readings r "
                      "JOIN public.air_quality_stations s ON s.name = r.station_name AND s.sido = '서울특별시' "
                      f"WHERE r.measured_at = %s AND r.period = 'day' AND r.{pollutant} IS NOT NULL "
                      f"AND r.{pollutant}_flag IS NULL ORDER BY s.name", (when,))
    lon, lat, v = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    x, y = Transformer.from_crs(4326, 5186, always_xy=True).transform(lon, lat)
    return np.asarray(x), np.asarray(y), v


def plain_loo(method: str, x: np.ndarray, y: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """RMSE and MAE of leaving each station out, written out longhand."""
    errs = []
    for i in range(v.size):
        o = np.arange(v.size) != i
        d = np.hypot(x[o] - x[i], y[o] - y[i])
        if method == "idw":
            w = 1 / d ** 2
            guess = float(np.sum(w * v[o]) / np.sum(w))
        elif method == "nearest":
            guess = float(v[o][np.argmin(d)])
        else:  # the day's variogram (all stations), the kriging system without station i
            fitted = OrdinaryKriging(x, y, v, variogram_model="spherical").variogram_model_parameters
            ok = OrdinaryKriging(x[o], y[o], v[o], variogram_model="spherical", exact_values=True, pseudo_inv=True,
                                 variogram_parameters=dict(zip(("psill", "range", "nugget"), fitted, strict=True)))
            guess = float(ok.execute("points", x[i:i + 1], y[i:i + 1], backend="vectorized")[0][0])
        errs.append(guess - v[i])
    e = np.array(errs)
    return float(np.sqrt(np.mean(e ** 2))), float(np.mean(np.abs(e)))


@pytest.fixture(scope="module")
def built(dsn: str, loaded: dict[str, int]) -> dict[str, list[tuple[Any, ...]]]:
    """The surfaces as the load keeps them: rebuilt here when a test before this one changed the readings (the
    AirKorea ingest tests do), as a reload would; unchanged ones are skipped."""
    cfg = load_config().surfaces
    for r in cfg.regions:
        for p in cfg.pollutants:
            build_collection(dsn, cfg, r, p)
    found = {f"{p}_{r}": surfaces(dsn, f"{p}_{r}") for r in cfg.regions for p in cfg.pollutants}
    assert found["pm10_sejong"] == found["pm25_sejong"] == []  # Sejong has no bundled readings: no surfaces
    return {cid: rows for cid, rows in found.items() if rows}


def test_bundled_load_builds_recent_days(built: dict[str, list[tuple[Any, ...]]], dsn: str) -> None:
    cfg = load_config().surfaces
    version = query(dsn, "SELECT data_version FROM meta.datasets WHERE table_name = 'public.air_quality_readings'")
    newest = query(dsn, "SELECT max(measured_at) FROM public.air_quality_readings WHERE period = 'day'")[0][0]
    for cid, rows in built.items():
        assert len(rows) == cfg.recent_days, cid
        assert rows[-1][1] == newest
        assert {r[3] for r in rows} == {version[0][0]}
        assert all(r[4] >= 20 for r in rows)  # the 25 Seoul district stations, less the day's gaps
        for r in rows:
            with rasterio.open(r[6]) as ds:
                assert ds.crs.to_epsg() == 5186
                assert ds.res == (cfg.cell_m, cfg.cell_m)
                assert ds.profile["tiled"] and ds.overviews(1), "a Cloud-Optimized GeoTIFF has tiles and overviews"
                assert ds.tags()["readings_version"] == str(version[0][0])


def test_idw_is_exact_at_stations_and_kriging_within_nugget(built: dict[str, list[tuple[Any, ...]]],
                                                            dsn: str) -> None:
    _, when, *_ = built["pm10_seoul"][-1]
    x, y, v = stations_on(dsn, "pm10", when)
    assert np.array_equal(idw(x, y, v, x, y), v)
    kr = estimate("kriging", x, y, v, x, y)
    assert kr.method == "kriging" and kr.nugget is not None
    assert np.all(np.abs(kr.values - v) <= np.sqrt(kr.nugget) + 1e-6)


def test_cross_validation_recomputed_by_a_plain_loop(built: dict[str, list[tuple[Any, ...]]], dsn: str) -> None:
    for cid, rows in built.items():
        pollutant = cid.split("_")[0]
        all_errors: dict[str, list[float]] = {m: [] for m in METHODS}
        for _, when, _, _, n, validation, _ in rows[-2:]:  # two days: kriging refits per left-out station
            x, y, v = stations_on(dsn, pollutant, when)
            assert v.size == n
            for m in METHODS:
                rmse, mae = plain_loo(m, x, y, v)
                stored = validation["methods"][m]
                assert stored["rmse"] == pytest.approx(rmse, abs=0.0006), (cid, when, m)
                assert stored["mae"] == pytest.approx(mae, abs=0.0006), (cid, when, m)
                all_errors[m].append(rmse)
        pooled = rows[-1][5]["pooled"]
        assert rows[-1][5]["default"] == min(pooled, key=lambda m: pooled[m]["rmse"])
        assert pooled["idw"]["n"] == sum(r[4] for r in rows)


def test_grid_values_and_nodata_beyond_reach(built: dict[str, list[tuple[Any, ...]]], dsn: str) -> None:
    cfg = load_config().surfaces
    _, when, method, _, _, _, path = built["pm25_seoul"][-1]
    x, y, v = stations_on(dsn, "pm25", when)
    with rasterio.open(path) as ds:
        band = ds.read(1)
        t, nodata = ds.transform, ds.nodata
    rows, cols = np.mgrid[0:band.shape[0], 0:band.shape[1]]
    cx, cy = t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e
    nearest = np.min(np.hypot(cx[..., None] - x, cy[..., None] - y), axis=-1)
    far = nearest > cfg.max_distance_m
    assert far.any() and (~far).any()
    assert np.all(band[far] == nodata)
    assert np.all(band[~far] != nodata)
    if method == "idw":  # spot-check cells against a direct IDW
        rng = np.random.default_rng(12)
        pick = rng.choice(np.flatnonzero(~far), 50, replace=False)
        w = 1 / np.hypot(cx.ravel()[pick, None] - x, cy.ravel()[pick, None] - y) ** 2
        assert np.allclose(band.ravel()[pick], (w @ v) / w.sum(axis=1), rtol=1e-5)


def test_build_skips_when_unchanged_and_rebuilds_on_change(dsn: str, loaded: dict[str, int],
                                                           tmp_path: Path) -> None:
    base = load_config().surfaces
    region = base.regions["seoul"]
    cfg = base.model_copy(update={"directory": str(tmp_path), "recent_days": 2, "methods": ["idw", "nearest"],
                                  "regions": {"seoultest": region}})
    try:
        assert build_collection(dsn, cfg, "seoultest", "pm10") == 2
        first = surfaces(dsn, "pm10_seoultest")
        assert [r[2] for r in first] == ["idw", "idw"]  # idw beats nearest on the Seoul readings
        assert build_collection(dsn, cfg, "seoultest", "pm10") == 2
        assert [r[0] for r in surfaces(dsn, "pm10_seoultest")] == [r[0] for r in first]  # skipped
        coarser = cfg.model_copy(update={"cell_m": 250.0})
        assert build_collection(dsn, coarser, "seoultest", "pm10") == 2
        again = surfaces(dsn, "pm10_seoultest")
        assert {r[0] for r in again}.isdisjoint({r[0] for r in first})
        assert not any(Path(r[6]).exists() for r in first), "the replaced COGs are removed"
        with rasterio.open(again[0][6]) as ds:
            assert ds.res == (250.0, 250.0)
    finally:
        query(dsn, "DELETE FROM meta.surfaces WHERE collection_id = 'pm10_seoultest'")


def plain_flat_runs(path: Path, column: int, min_run: int = 5) -> set[tuple[str, str]]:
    """(station, YYYYMMDD) of every value in a run of >= min_run equal daily values, read with the csv module."""
    import csv

    by_station: dict[str, list[tuple[str, str]]] = {}
    with path.open(encoding="cp949", newline="") as fh:
        for rec in list(csv.reader(fh))[1:]:
            by_station.setdefault(rec[1].strip(), []).append((rec[0], rec[column]))
    out: set[tuple[str, str]] = set()
    for station, series in by_station.items():
        series.sort()
        i = 0
        while i < len(series):
            j = i
            while series[i][1] and j + 1 < len(series) and series[j + 1][1] == series[i][1]:
                j += 1
            if series[i][1] and j - i + 1 >= min_run:
                out |= {(station, series[k][0]) for k in range(i, j + 1)}
            i = j + 1
    return out


def test_stuck_sensor_runs_are_flagged_in_the_loaded_readings(dsn: str, loaded: dict[str, int]) -> None:
    data = load_config().data.path() / "seoul" / "air-daily"
    for pollutant, column in (("pm10", 6), ("pm25", 7)):
        want = set().union(*(plain_flat_runs(data / f"{y}.csv", column) for y in range(2018, 2023)))
        got = {(s, d.strftime("%Y%m%d")) for s, d, v in query(
            dsn, f"SELECT station_name, (measured_at AT TIME ZONE 'Asia/Seoul')::date, {pollutant} "
                 f"FROM public.air_quality_readings WHERE {pollutant}_flag = 'flat'")}
        assert got == want and len(want) >= 7, pollutant  # 청계천로 PM10 5 µg/m³ for 7 days, among others
        kept = query(dsn, f"SELECT count(*) FROM public.air_quality_readings WHERE {pollutant}_flag = 'flat' "
                          f"AND {pollutant} IS NOT NULL")[0][0]
        assert kept == len(want)  # the values stay; only the surfaces leave them out


def test_stuck_run_in_a_rewritten_real_file(tmp_path: Path) -> None:
    from loaders.core import RowStats
    from loaders.readings import seoul_daily

    src = load_config().data.path() / "seoul" / "air-daily" / "2022.csv"
    lines = src.read_bytes().decode("cp949").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split(",")
        if f[1] == "강남구" and "20220301" <= f[0] <= "20220306":
            f[6] = "77"  # six days stuck: flagged
        if f[1] == "송파구" and "20220301" <= f[0] <= "20220304":
            f[6] = "66"  # four days: a real run can be this long, not flagged
        out.append(",".join(f))
    path = tmp_path / "stuck.csv"
    path.write_bytes(("\n".join(out) + "\n").encode("cp949"))
    rows = list(seoul_daily(path, RowStats()))
    assert len(rows) == len(lines) - 1
    flagged = {(r["station_name"], r["measured_at"].strftime("%Y%m%d")) for r in rows if r["pm10_flag"] == "flat"}
    assert {("강남구", f"2022030{d}") for d in range(1, 7)} <= flagged
    assert not any(s == "송파구" and "20220301" <= d <= "20220304" for s, d in flagged)
    assert flagged == plain_flat_runs(path, 6) and all(r["pm10"] is not None for r in rows
                                                        if r["pm10_flag"] == "flat")
