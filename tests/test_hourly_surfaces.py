"""AirKorea 최종확정 hourly readings loaded through `./run load readings` (loaders.cli.load_readings), and the hourly
surfaces (collections <pollutant>_<region>_hourly) built and served from them.

The files are MADE from the real Seoul daily readings (seoul/air-daily/2022.csv): the first 25 stations' values of
48 consecutive days (2022-01-01..02-17) are re-labelled as 48 consecutive hours (측정일시 2022030101..2022030224)
and written in AirKorea's 최종확정 layout (지역, 망, 측정소코드, 측정소명, 측정일시, SO2, CO, O3, NO2, PM10, PM25,
주소) as CP949 CSV and as .xlsx; the station codes are made up (111001..).  Variants are derived from those rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import file_helpers
import morecantile
import numpy as np
import openpyxl
import pytest
import rasterio
import yaml
from db_helpers import query
from pyproj import Transformer
from rasterio.io import MemoryFile

from core.config import load_config
from loaders.cli import load_readings
from loaders.datasets import air_quality_tables
from loaders.errors import LoadError
from loaders.surfaces.build import build_collection
from loaders.surfaces.interpolate import idw
from loaders.textio import decode_file
from server.coverages import EXTENSION

KST = ZoneInfo("Asia/Seoul")
SEOUL_FILE = "seoul/air-daily/2022.csv"
STATIONS, HOURS = 25, 48
HEADER = ["지역", "망", "측정소코드", "측정소명", "측정일시", "SO2", "CO", "O3", "NO2", "PM10", "PM25", "주소"]
SEOUL = {"SO2": "아황산가스농도(ppm)", "CO": "일산화탄소농도(ppm)", "O3": "오존농도(ppm)", "NO2": "이산화질소농도(ppm)",
         "PM10": "미세먼지농도(㎍/㎥)", "PM25": "초미세먼지농도(㎍/㎥)"}
TABLE = "public.air_quality_readings"
REPO = Path(__file__).resolve().parent.parent


def final_rows() -> list[list[str]]:
    """25 stations x 48 hours in the 최종확정 layout, from the real Seoul daily values (see the module docstring)."""
    text, _ = decode_file(load_config().data.path() / SEOUL_FILE)
    reader = csv.DictReader(io.StringIO(text))
    by_station: dict[str, list[dict[str, str]]] = {}
    for rec in reader:
        by_station.setdefault(rec["측정소명"], []).append(rec)
    names = [n for n, recs in by_station.items() if len(recs) >= HOURS][:STATIONS]
    assert len(names) == STATIONS
    out = []
    for code, name in enumerate(names, start=111001):
        recs = sorted(by_station[name], key=lambda r: r["측정일시"])[:HOURS]
        for h, rec in enumerate(recs):
            when = f"2022030{1 + h // 24}{1 + h % 24:02d}"
            out.append(["서울 중구", "도시대기", str(code), name, when, *(rec[SEOUL[c]] for c in HEADER[5:11]),
                        f"서울 {name}"])
    return out


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "cp949") -> Path:
    """A 최종확정 CSV as AirKorea gives it (CP949, CRLF)."""
    return file_helpers.write_csv(path, header, rows, encoding)


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    """The rows as AirKorea's xlsx holds them: codes, 측정일시 and readings as numbers, blanks as empty cells."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in rows:
        ws.append([_number(v) if i in (2, 4) or 5 <= i <= 10 else v for i, v in enumerate(row)])
    wb.save(path)
    return path


def _number(v: str) -> Any:
    if not v.strip():
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def hour_of(when: str) -> datetime:
    """측정일시 YYYYMMDDHH -> KST instant, computed independently of the loader."""
    return datetime(int(when[:4]), int(when[4:6]), int(when[6:8]), tzinfo=KST) + timedelta(hours=int(when[8:]))


def stored(dsn: str, source: str) -> dict[tuple[str, datetime], tuple[Any, ...]]:
    rows = query(dsn, f"SELECT station_name, measured_at, period, so2, co, o3, no2, pm10, pm25, pm10_flag, pm25_flag, "
                      f"so2_flag FROM {TABLE} WHERE source = %s", (source,))
    return {(r[0], r[1]): r[2:] for r in rows}


def catalog(dsn: str) -> tuple[int, int]:
    """(rows in the readings table, its data version)."""
    count = query(dsn, f"SELECT count(*) FROM {TABLE}")[0][0]
    version = query(dsn, "SELECT data_version FROM meta.datasets WHERE table_name = %s", (TABLE,))[0][0]
    return int(count), int(version)


@contextlib.contextmanager
def readings_restored(dsn: str) -> Iterator[None]:
    """On leaving: the 최종확정 readings loaded inside deleted, hourly surfaces dropped, the catalog's sources and row
    count as they were."""
    before = query(dsn, "SELECT sources::text, rows_loaded FROM meta.datasets WHERE table_name = %s", (TABLE,))
    try:
        yield
    finally:
        query(dsn, f"DELETE FROM {TABLE} WHERE source LIKE 'airkorea-final:%%'")
        query(dsn, "DELETE FROM meta.surfaces WHERE period = 'hour'")
        query(dsn, "UPDATE meta.datasets SET sources = %s::jsonb, rows_loaded = %s WHERE table_name = %s",
              (before[0][0], before[0][1], TABLE))
        air_quality_tables.ensure_views(dsn)


def build_hourly(dsn: str, folder: Path, hours: int = 3) -> int:
    """Load the made 최종확정 file and build the newest `hours` PM10 hours for Seoul (IDW) into `folder`."""
    load_readings(dsn, [write_csv(folder / "hours.csv", final_rows())])
    cfg = load_config().surfaces.model_copy(update={"directory": str(folder / "cogs"), "recent_hours": hours,
                                                    "method": "idw", "methods": ["idw", "nearest"]})
    return build_collection(dsn, cfg, "seoul", "pm10", period="hour")


@pytest.fixture()
def restore(dsn: str, loaded: dict[str, int]) -> Iterator[None]:
    """Delete the readings these tests load and restore the catalog's sources and row count."""
    with readings_restored(dsn):
        yield


def test_cp949_csv_is_stored_hour_by_hour(dsn: str, restore: None, tmp_path: Path) -> None:
    rows = final_rows()
    path = write_csv(tmp_path / "final_2022_03.csv", rows)
    res = load_readings(dsn, [path])
    got = stored(dsn, "airkorea-final:final_2022_03.csv")
    assert res.rows >= len(got) == STATIONS * HOURS
    for row in rows:
        vals = got[(row[3], hour_of(row[4]))]
        assert vals[0] == "hour"
        assert vals[1:7] == tuple(Decimal(v) if v else None for v in row[5:11])
    # hour 24 is 00:00 of the next day (KST)
    assert (rows[23][3], datetime(2022, 3, 2, 0, tzinfo=KST)) in got
    assert min(k[1] for k in got) == datetime(2022, 3, 1, 1, tzinfo=KST)


def test_xlsx_stores_the_same_values(dsn: str, restore: None, tmp_path: Path) -> None:
    rows = final_rows()
    load_readings(dsn, [write_csv(tmp_path / "a.csv", rows, encoding="utf-8")])
    load_readings(dsn, [write_xlsx(tmp_path / "b.xlsx", rows)])
    from_csv, from_xlsx = stored(dsn, "airkorea-final:a.csv"), stored(dsn, "airkorea-final:b.xlsx")
    assert len(from_xlsx) == STATIONS * HOURS and from_xlsx == from_csv


def test_markers_are_null_with_their_flag(dsn: str, restore: None, tmp_path: Path) -> None:
    rows = final_rows()
    rows[0][9], rows[1][10], rows[2][5] = "-999", "", "점검중"  # PM10, PM25, SO2
    load_readings(dsn, [write_csv(tmp_path / "m.csv", rows)])
    got = stored(dsn, "airkorea-final:m.csv")
    assert got[(rows[0][3], hour_of(rows[0][4]))][5:8:2] == (None, "-999")  # pm10, pm10_flag
    assert got[(rows[1][3], hour_of(rows[1][4]))][6] is None
    assert got[(rows[1][3], hour_of(rows[1][4]))][8] == "blank"
    so2 = got[(rows[2][3], hour_of(rows[2][4]))]
    assert (so2[1], so2[9]) == (None, "점검중")


def test_older_files_without_pm25(dsn: str, restore: None, tmp_path: Path) -> None:
    rows = [r[:10] + r[11:] for r in final_rows()]
    load_readings(dsn, [write_csv(tmp_path / "old.csv", rows, header=HEADER[:10] + HEADER[11:])])
    got = stored(dsn, "airkorea-final:old.csv")
    assert len(got) == STATIONS * HOURS and all(v[6] is None and v[8] is None for v in got.values())


def _stick(rows: list[list[str]], station: str, hours: range, value: str = "333") -> None:
    for r in rows:
        if r[3] == station and (int(r[4][7]) - 1) * 24 + int(r[4][8:]) - 1 in hours:
            r[9] = value


def pm10_flags(dsn: str, station: str) -> dict[int, Any]:
    """hour index (0..47) -> pm10_flag of the station's loaded rows."""
    start = datetime(2022, 3, 1, 1, tzinfo=KST)
    return {int((t - start).total_seconds() // 3600): f for t, f in query(
        dsn, f"SELECT measured_at, pm10_flag FROM {TABLE} WHERE station_name = %s AND source LIKE 'airkorea-final:%%'",
        (station,))}


def test_a_stuck_sensor_is_flagged_flat_also_across_two_files(dsn: str, restore: None, tmp_path: Path) -> None:
    rows = final_rows()
    stuck, short = rows[0][3], rows[HOURS][3]
    _stick(rows, stuck, range(18, 30))  # 12 hours, split 6 + 6 across the two files below
    _stick(rows, short, range(3, 14))  # 11 hours: not a flat run
    first = [r for r in rows if r[4] < "2022030201"]
    second = [r for r in rows if r[4] >= "2022030201"]
    load_readings(dsn, [write_csv(tmp_path / "day1.csv", first)])
    assert all(f is None for h, f in pm10_flags(dsn, stuck).items() if h in range(18, 24))
    load_readings(dsn, [write_csv(tmp_path / "day2.csv", second)])
    flags = pm10_flags(dsn, stuck)
    assert [flags[h] for h in range(18, 30)] == ["flat"] * 12
    assert flags[17] != "flat" and flags[30] != "flat"
    assert all(f != "flat" for f in pm10_flags(dsn, short).values())
    kept = query(dsn, f"SELECT count(*) FROM {TABLE} WHERE station_name = %s AND pm10 = 333 AND pm10_flag = 'flat' "
                      "AND source LIKE 'airkorea-final:%%'", (stuck,))
    assert kept == [(12,)]  # the values are kept, only flagged


@pytest.mark.parametrize(("variant", "message"), [
    ("renamed", r"missing required column 'PM10'"),
    ("truncated", r"bad\.csv line 5: expected 12 fields, found 7"),
    ("bad_hour", r"bad\.csv line 3, column 측정일시: '2022030125': hour 25"),
])
def test_a_broken_file_is_refused_and_nothing_changes(dsn: str, restore: None, tmp_path: Path, variant: str,
                                                      message: str) -> None:
    rows = final_rows()
    header = list(HEADER)
    if variant == "renamed":
        header[9] = "PM-10"
    elif variant == "truncated":
        rows[3] = rows[3][:7]
    else:
        rows[1][4] = "2022030125"
    path = write_csv(tmp_path / "bad.csv", rows, header=header)
    before = catalog(dsn)
    with pytest.raises(LoadError, match=message):
        load_readings(dsn, [path])
    assert catalog(dsn) == before
    assert stored(dsn, "airkorea-final:bad.csv") == {}


def hour_stations(dsn: str, when: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seoul stations with a valid PM10 reading at the hour, in EPSG:5186 (projected here from lon/lat)."""
    rows = query(dsn, "SELECT s.lon, s.lat, r.pm10::float8 FROM public.air_quality_readings r "
                      "JOIN public.air_quality_stations s ON s.name = r.station_name AND s.sido = '서울특별시' "
                      "WHERE r.measured_at = %s AND r.period = 'hour' AND r.pm10 IS NOT NULL AND r.pm10_flag IS NULL",
                 (when,))
    lon, lat, v = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    x, y = Transformer.from_crs(4326, 5186, always_xy=True).transform(lon, lat)
    return np.asarray(x), np.asarray(y), v


def test_hourly_surfaces_are_built_and_served_by_hour(dsn: str, restore: None, tmp_path: Path, client: Any) -> None:
    assert build_hourly(dsn, tmp_path) == 3
    cfg = load_config().surfaces.model_copy(update={"directory": str(tmp_path / "cogs"), "recent_hours": 3})
    assert build_collection(dsn, cfg, "sejong", "pm10", period="hour") == 0  # no Sejong readings: nothing
    rows = query(dsn, "SELECT valid_at, period, method, stations, path FROM meta.surfaces "
                      "WHERE collection_id = 'pm10_seoul_hourly' ORDER BY valid_at")
    hours = [datetime(2022, 3, 2, 22, tzinfo=KST), datetime(2022, 3, 2, 23, tzinfo=KST),
             datetime(2022, 3, 3, 0, tzinfo=KST)]
    assert [r[0] for r in rows] == hours and {r[1] for r in rows} == {"hour"}
    assert query(dsn, "SELECT count(*) FROM meta.surfaces WHERE collection_id = 'pm10_seoul'")[0][0] > 0  # kept

    # IDW is exact at the stations; the COG cells hold IDW at the cell centres
    x, y, v = hour_stations(dsn, hours[1])
    assert v.size == rows[1][3] and np.array_equal(idw(x, y, v, x, y), v)
    with rasterio.open(rows[1][4]) as ds:
        band, t = ds.read(1), ds.transform
    col, row = ((x - t.c) // t.a).astype(int), ((y - t.f) // t.e).astype(int)
    cx, cy = t.c + (col + 0.5) * t.a, t.f + (row + 0.5) * t.e
    w = 1 / np.hypot(cx[:, None] - x, cy[:, None] - y) ** 2
    assert np.allclose(band[row, col], (w @ v) / w.sum(axis=1), rtol=1e-5)

    client.application.extensions[EXTENSION].catalog.refresh()
    ids = {c["id"] for c in client.get("/collections?f=json").get_json()["collections"]}
    assert "pm10_seoul_hourly" in ids and not {"pm10_sejong", "pm10_sejong_hourly"} & ids
    doc = client.get("/collections/pm10_seoul_hourly").get_json()
    assert doc["extent"]["temporal"]["values"] == [h.isoformat() for h in hours]

    for when in ("2022-03-02T23:00:00%2B09:00", "2022-03-02T14:00:00Z", "2022-03-02"):  # a day: its latest hour
        r = client.get(f"/collections/pm10_seoul_hourly/coverage?f=tif&datetime={when}")
        assert r.status_code == 200, r.get_json()
        assert r.headers["X-Surface-Date"] == hours[1].isoformat()
        with MemoryFile(r.data) as mem, mem.open() as ds:
            assert np.array_equal(ds.read(1), band)
    bad = client.get("/collections/pm10_seoul_hourly/coverage?f=tif&datetime=2022-03-02T23:30:00Z")
    assert bad.status_code == 400 and "on the hour" in bad.get_json()["description"]
    assert client.get("/collections/pm10_seoul_hourly/coverage?datetime=2022-03-01T05:00:00Z").status_code == 404

    tms = morecantile.tms.get("WebMercatorQuad")
    mx, my = Transformer.from_crs(5186, 3857, always_xy=True).transform(float(x.mean()), float(y.mean()))
    tile = tms._tile(mx, my, 11)
    url = f"/collections/pm10_seoul_hourly/map/tiles/WebMercatorQuad/11/{tile.y}/{tile.x}?datetime="
    first, second = (client.get(url + h.isoformat().replace("+", "%2B")) for h in hours[:2])
    assert first.status_code == second.status_code == 200 and first.mimetype == "image/png"
    assert first.data != second.data


def test_run_load_readings_rebuilds_the_surfaces(dsn: str, restore: None, tmp_path: Path) -> None:
    """`./run load readings FILE` stores the readings, then builds the hourly surfaces they make possible."""
    path = write_csv(tmp_path / "final.csv", final_rows())
    env = dict(os.environ, DATABASE_URL=dsn)
    proc = subprocess.run([sys.executable, "-m", "server.cli", "load", "readings", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    hours = load_config().surfaces.recent_hours
    assert f"surfaces pm10_seoul_hourly: {hours}" in proc.stdout.splitlines(), proc.stdout
    rows = query(dsn, "SELECT min(valid_at), max(valid_at), count(*) FROM meta.surfaces "
                      "WHERE collection_id = 'pm10_seoul_hourly'")
    newest = datetime(2022, 3, 3, 0, tzinfo=KST)  # 2022030224 in the file
    assert rows == [(newest - timedelta(hours=hours - 1), newest, hours)]


def test_a_failed_rebuild_keeps_the_readings_and_the_old_surfaces(dsn: str, restore: None, tmp_path: Path) -> None:
    """The surfaces directory cannot be written: the readings are stored, the command says the surfaces were not
    rebuilt (no traceback, not "nothing was changed"), and meta.surfaces is exactly as it was."""
    raw = yaml.safe_load((REPO / "config.yml").read_text(encoding="utf-8"))
    raw["data"]["dir"] = str(load_config().data.path())
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the surfaces directory should be")
    raw["surfaces"]["directory"] = str(blocker)
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    surfaces_before = query(dsn, "SELECT collection_id, valid_at, path FROM meta.surfaces ORDER BY 1, 2")
    rows, _ = catalog(dsn)
    path = write_csv(tmp_path / "final.csv", final_rows())
    env = dict(os.environ, DATABASE_URL=dsn, SEJONG_CONFIG=str(config))
    proc = subprocess.run([sys.executable, "-m", "server.cli", "load", "readings", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 1, proc.stdout
    assert "the readings are stored, but their surfaces were not rebuilt" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "nothing was changed" not in proc.stderr
    assert catalog(dsn)[0] == rows + STATIONS * HOURS
    assert query(dsn, "SELECT collection_id, valid_at, path FROM meta.surfaces ORDER BY 1, 2") == surfaces_before


def test_run_load_surfaces(dsn: str, loaded: dict[str, int]) -> None:
    env = dict(os.environ, DATABASE_URL=dsn)
    proc = subprocess.run([sys.executable, "-m", "server.cli", "load", "surfaces"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    days = load_config().surfaces.recent_days
    lines = set(proc.stdout.splitlines())
    assert {f"pm10_seoul: {days} surfaces", "pm10_sejong: 0 surfaces", "pm10_sejong_hourly: 0 surfaces"} <= lines
    assert "Traceback" not in proc.stderr
