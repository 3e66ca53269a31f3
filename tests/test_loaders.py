"""Loader tests against a real PostGIS (DATABASE_URL) with the real bundled data files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from db_helpers import query
from pyproj import CRS

from core.config import load_config
from loaders.bundled import load_bundled
from loaders.cli import load_readings
from loaders.crs import fitting_crs
from loaders.errors import LoadError
from loaders.fileload import load_csv, load_file

REPO = Path(__file__).resolve().parent.parent
DATA = load_config().data.path()
BIKE = DATA / "korea/bike-stations/전국자전거대여소표준데이터.csv"
LIGHTS = DATA / "sejong/street-lights/세종_가로등현황.csv"
ADMIN = DATA / "sejong/admin-dong-2021/hangjeongdong_세종특별자치시.geojson"
EXPECTED = {
    "public.bike_stations": 648, "public.air_quality_stations": 530, "public.air_quality_readings": 87182,
    "public.admin_areas": 20, "public.emd_2018": 17, "public.sgg_2018": 1, "public.land_parcels": 0,
    "public.buildings": 1551, "public.facilities": 218, "public.street_lights": 15460,
}


@pytest.fixture(scope="session")
def dsn() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: the loader tests need a PostGIS database")
    load_bundled(url)
    return url


@pytest.fixture(scope="module", autouse=True)
def _drop_test_tables(dsn: str):
    """Remove the public.test_* tables (and their catalog rows) this module creates."""
    yield
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'test\\_%'"
    for (name,) in query(dsn, tables):
        query(dsn, f'DROP TABLE IF EXISTS public."{name}"')
    query(dsn, "DELETE FROM meta.datasets WHERE table_name LIKE 'public.test\\_%'")


def snapshot(dsn: str, table: str, order: str = "id") -> tuple:
    """Row count + checksum of every row, plus the catalog version."""
    rows = query(dsn, f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) FROM {table} t")
    ver = query(dsn, "SELECT data_version FROM meta.datasets WHERE table_name = %s", (table,))
    return rows[0], ver


def refused(dsn: str, table: str, match: str, fn, *args, **kwargs) -> None:
    """fn must raise LoadError matching `match` and leave `table` exactly as it was."""
    before = snapshot(dsn, table)
    with pytest.raises(LoadError, match=match):
        fn(*args, **kwargs)
    assert snapshot(dsn, table) == before


# ---------------------------------------------------------------- bundled data

def test_bundled_counts(dsn: str) -> None:
    counts = load_bundled(dsn)
    assert {k: v for k, v in counts.items() if k in EXPECTED} == EXPECTED
    assert counts["network.paju_edges"] == 22696 and counts["public.paju_emd"] == 20  # the Paju network bundle
    for table, n in EXPECTED.items():
        assert query(dsn, f"SELECT count(*) FROM {table}")[0][0] == n


def test_rerun_skips_unchanged_files_and_keeps_version(dsn: str) -> None:
    before = query(dsn, "SELECT table_name, data_version, loaded_at FROM meta.datasets ORDER BY 1")
    load_bundled(dsn)
    # unchanged files (same sha256) are not loaded again: no new version, not even a new load time
    assert query(dsn, "SELECT table_name, data_version, loaded_at FROM meta.datasets ORDER BY 1") == before


def test_storage_crs_and_indexes(dsn: str) -> None:
    for table in EXPECTED:
        schema, name = table.split(".")
        if name == "air_quality_readings":
            continue
        srid = query(dsn, "SELECT Find_SRID(%s, %s, 'geom')", (schema, name))[0][0]
        assert srid == 5186, table
        idx = query(dsn, "SELECT count(*) FROM pg_indexes WHERE schemaname=%s AND tablename=%s "
                         "AND indexdef ILIKE '%%gist%%'", (schema, name))[0][0]
        assert idx == 1, table
    lon, lat = query(dsn, "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_Centroid(ST_Collect(geom)), 4326) g "
                          "FROM public.bike_stations) s")[0]
    assert 127.1 < lon < 127.5 and 36.4 < lat < 36.7


def test_bike_columns(dsn: str) -> None:
    row = query(dsn, "SELECT count(*) FILTER (WHERE bikes = 10), count(docks), min(data_date)::text, "
                     "count(DISTINCT provider) FROM public.bike_stations")[0]
    assert row == (648, 0, "2024-01-17", 1)
    comment = query(dsn, "SELECT col_description(attrelid, attnum) FROM pg_attribute "
                         "WHERE attrelid = 'public.bike_stations'::regclass AND attname = 'bikes'")[0][0]
    assert comment == "자전거보유대수"


def test_facilities_and_paju(dsn: str) -> None:
    kinds = dict(query(dsn, "SELECT kind, count(*) FROM public.facilities GROUP BY kind"))
    assert kinds == {"library": 24, "park": 70, "school": 105, "public_open_facility": 19}
    from loaders.datasets.facilities import load_region

    res = load_region(dsn, DATA, "파주시", "public.test_facilities_paju")
    kinds = dict(query(dsn, "SELECT kind, count(*) FROM public.test_facilities_paju GROUP BY kind"))
    assert res.rows == sum(kinds.values())
    assert kinds["park"] == 161 and kinds["school"] >= 113 and kinds["library"] == 22
    assert kinds["public_open_facility"] == 29


def test_admin_voters_and_boundaries(dsn: str) -> None:
    assert query(dsn, "SELECT count(voters), sum(voters) FROM public.admin_areas")[0][0] == 20
    assert query(dsn, "SELECT bool_and(ST_IsValid(geom)) FROM public.admin_areas")[0][0]
    names = {r[0] for r in query(dsn, "SELECT name FROM public.emd_2018")}
    assert {"조치원읍", "한솔동", "새롬동"} <= names
    area = query(dsn, "SELECT ST_Area(geom) / 1e6 FROM public.sgg_2018")[0][0]
    assert 400 < area < 500  # Sejong ≈ 465 km²


def test_air_quality_views(dsn: str) -> None:
    assert query(dsn, "SELECT count(*) FROM public.air_quality_latest")[0][0] == 530
    # every reading is served (stations without a known position with no geometry): nothing dropped by the join
    served = query(dsn, "SELECT count(DISTINCT station_name), count(*), count(geom) "
                        "FROM public.air_quality_readings_geo")[0]
    stored = query(dsn, "SELECT count(DISTINCT station_name), count(*) FROM public.air_quality_readings")[0]
    assert served[:2] == stored and served[2] > 40000
    assert query(dsn, "SELECT meta.pm10_grade(30), meta.pm10_grade(31), meta.pm10_grade(151), "
                      "meta.pm25_grade(15), meta.pm25_grade(76)")[0] == ("좋음", "보통", "매우나쁨", "좋음", "매우나쁨")
    sido = query(dsn, "SELECT sido FROM public.air_quality_stations WHERE name = '한솔동'")[0][0]
    assert sido == "세종특별자치시"


def test_airkorea_json_readings(dsn: str, tmp_path: Path) -> None:
    items = [
        {"so2Grade": None, "coFlag": "통신장애", "khaiValue": "48", "so2Value": "-", "coValue": "-", "pm25Flag": None,
         "pm10Flag": None, "o3Grade": "1", "pm10Value": "34", "khaiGrade": "1", "pm25Value": "8", "sidoName": "세종",
         "no2Flag": None, "no2Grade": "1", "o3Flag": None, "pm25Grade": "1", "so2Flag": "통신장애",
         "dataTime": "2026-10-02 21:00", "coGrade": None, "no2Value": "0.017", "stationName": "조치원읍",
         "pm10Grade": "1", "o3Value": "0.027"},
        {"so2Grade": "1", "coFlag": None, "khaiValue": "219", "so2Value": "0.004", "coValue": "0.9", "pm10Flag": None,
         "o3Grade": "1", "pm10Value": "102", "khaiGrade": "3", "sidoName": "세종", "no2Flag": None, "no2Grade": "1",
         "o3Flag": None, "so2Flag": None, "dataTime": "2024-02-01 11:00", "coGrade": "1", "no2Value": "0.025",
         "stationName": "신흥동", "pm10Grade": "2", "o3Value": "0.023"},
    ]
    path = tmp_path / "sejong-airkorea.json"
    path.write_text(json.dumps({"response": {"header": {"resultCode": "00"}, "body": {"items": items}}},
                               ensure_ascii=False), encoding="utf-8")
    catalog = query(dsn, "SELECT sources, rows_loaded FROM meta.datasets "
                         "WHERE table_name = 'public.air_quality_readings'")[0]
    try:
        load_readings(dsn, [path])
        row = query(dsn, "SELECT so2, so2_flag, co, co_flag, pm10 FROM public.air_quality_readings "
                         "WHERE station_name = '조치원읍'")[0]
        assert row == (None, "통신장애", None, "통신장애", 34)
        latest = query(dsn, "SELECT pm10, pm10_grade, measured_at::text FROM public.air_quality_latest "
                            "WHERE name = '신흥동'", ())[0]
        assert latest[:2] == (102, "나쁨")
        assert query(dsn, "SELECT count(*) FROM public.air_quality_readings")[0][0] == 87182 + 2
    finally:
        query(dsn, "DELETE FROM public.air_quality_readings WHERE source = %s", (f"airkorea:{path.name}",))
        query(dsn, "UPDATE meta.datasets SET sources = %s::jsonb, rows_loaded = %s "
                   "WHERE table_name = 'public.air_quality_readings'", (json.dumps(catalog[0]), catalog[1]))


# ---------------------------------------------------------------- broken inputs: clear error, data intact

def test_truncated_csv(dsn: str, tmp_path: Path) -> None:
    data = BIKE.read_bytes()
    start = data.rfind(b"\n", 0, len(data) // 2) + 1
    line = data[:start].count(b"\n") + 1
    bad = tmp_path / "bike.csv"
    comma = data.index(b",", start + 1)
    bad.write_bytes(data[:comma + 3])  # cut after a field separator: a short last line
    refused(dsn, "public.bike_stations", rf"bike\.csv line {line}: expected 21 fields, found 2",
            load_csv, dsn, bad, "public.bike_stations")
    hangul = next(i for i in range(start, len(data)) if data[i] >= 0x80)
    bad.write_bytes(data[:hangul + 1])  # cut inside a CP949 character
    refused(dsn, "public.bike_stations", rf"bike\.csv line {line}: the file ends in the middle of a character",
            load_csv, dsn, bad, "public.bike_stations")


def test_wrong_encoding_forced(dsn: str) -> None:
    refused(dsn, "public.bike_stations", r"line 1: cannot decode byte 0x[0-9a-f]+ as utf-8.*--encoding cp949",
            load_csv, dsn, BIKE, "public.bike_stations", encoding="utf-8")


def test_not_a_number(dsn: str, tmp_path: Path) -> None:
    lines = BIKE.read_bytes().decode("cp949").splitlines()
    i = next(k for k, ln in enumerate(lines) if "5690000" in ln) + 5
    lines[i] = lines[i].replace(",36.", ",abc36.", 1)
    bad = tmp_path / "bike.csv"
    bad.write_bytes("\n".join(lines).encode("cp949"))
    refused(dsn, "public.bike_stations", rf"bike\.csv line {i + 1}, column 위도: 'abc36\.\d+' is not a number",
            load_csv, dsn, bad, "public.bike_stations")


def test_missing_required_column(dsn: str, tmp_path: Path) -> None:
    text = BIKE.read_bytes().decode("cp949").replace("자전거대여소명", "대여소", 1)
    bad = tmp_path / "bike.csv"
    bad.write_bytes(text.encode("cp949"))
    refused(dsn, "public.bike_stations", r"missing required column '자전거대여소명'",
            load_csv, dsn, bad, "public.bike_stations")


def test_empty_files(dsn: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    refused(dsn, "public.street_lights", r"empty\.csv: the file is empty", load_csv, dsn, empty,
            "public.street_lights")
    header_only = tmp_path / "header.csv"
    header_only.write_bytes(LIGHTS.read_bytes().split(b"\n", 1)[0] + b"\n")
    refused(dsn, "public.street_lights", r"header\.csv: zero rows", load_csv, dsn, header_only,
            "public.street_lights")
    nothing = tmp_path / "bike_nothing.csv"
    nothing.write_bytes(BIKE.read_bytes())
    refused(dsn, "public.bike_stations", r"zero rows", load_csv, dsn, nothing, "public.bike_stations",
            region="없는시")


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Street lights repeated 21x: 43 MB / 324,660 rows, 10x the largest real data file (4 MB)."""
    head, _, body = LIGHTS.read_bytes().partition(b"\n")
    path = tmp_path_factory.mktemp("big") / "lights_x21.csv"
    path.write_bytes(head + b"\n" + body * 21)
    return path


def test_big_file_row_limit(dsn: str, big_csv: Path) -> None:
    assert big_csv.stat().st_size > 10 * max(p.stat().st_size for p in DATA.rglob("*") if p.is_file()
                                             and p.suffix in (".csv", ".json", ".geojson", ".tsv"))
    refused(dsn, "public.street_lights", r"more than 50,000 rows — refused by the row limit",
            load_csv, dsn, big_csv, "public.street_lights", max_rows=50_000)


def test_killed_mid_file(dsn: str, big_csv: Path) -> None:
    before = snapshot(dsn, "public.street_lights")
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "loaders", "csv", str(big_csv), "--table", "public.street_lights"],
                            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # first progress line: rows are streaming into staging
    assert "rows" in line, line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # the load was one uncommitted transaction: nothing of it is visible, not even before its backend has gone
    assert snapshot(dsn, "public.street_lights") == before
    assert query(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")[0][0] == 0


def _write_zip_shapefile(frame: gpd.GeoDataFrame, folder: Path, name: str, *, prj: str | None = None,
                         keep_cpg: bool = False, encoding: str = "CP949") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shp = folder / f"{name}.shp"
    pyogrio.write_dataframe(frame, shp, encoding=encoding)
    if prj is not None:
        shp.with_suffix(".prj").write_text(prj)
    if not keep_cpg:
        shp.with_suffix(".cpg").unlink(missing_ok=True)
    out = folder / f"{name}.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for part in folder.glob(f"{name}.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    return out


def test_lying_prj(dsn: str, tmp_path: Path) -> None:
    load_file(dsn, ADMIN, "public.test_admin_prj")
    admin = gpd.read_file(ADMIN).to_crs(5181)[["adm_nm", "adm_cd", "geometry"]]
    wgs84 = CRS.from_epsg(4326).to_wkt("WKT1_ESRI")
    lying = _write_zip_shapefile(admin, tmp_path / "shp", "sejong", prj=wgs84)
    refused(dsn, "public.test_admin_prj",
            r"sejong\.zip: .*not in Korea when read as EPSG:4326 \(\.prj\).*they fit EPSG:5181.*pass --epsg 5181",
            load_file, dsn, lying, "public.test_admin_prj")
    res = load_file(dsn, lying, "public.test_admin_prj", epsg=5181, replace=True)  # fewer columns
    assert res.rows == 20
    diff = query(dsn, "SELECT max(ST_HausdorffDistance(a.geom, b.geom)) FROM public.test_admin_prj a "
                      "JOIN public.admin_areas b ON b.adm_cd = a.adm_cd")[0][0]
    assert diff < 1.0  # metres
    assert fitting_crs(*shapely.get_coordinates(admin.geometry.values[:1])[:5].T)[0] == 5181


def test_bow_tie_repaired(dsn: str, tmp_path: Path) -> None:
    x0, y0 = 127.28, 36.48
    bow = [[x0, y0], [x0 + 0.01, y0 + 0.01], [x0 + 0.01, y0], [x0, y0 + 0.01], [x0, y0]]
    square = [[x0, y0], [x0 + 0.01, y0], [x0 + 0.01, y0 + 0.01], [x0, y0 + 0.01], [x0, y0]]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "bow-tie"}, "geometry": {"type": "Polygon", "coordinates": [bow]}},
        {"type": "Feature", "properties": {"name": "square"}, "geometry": {"type": "Polygon", "coordinates": [square]}},
    ]}
    path = tmp_path / "bowtie.geojson"
    path.write_text(json.dumps(fc))
    res = load_file(dsn, path, "public.test_bowtie")
    assert (res.rows, res.repaired) == (2, 1)
    assert query(dsn, "SELECT bool_and(ST_IsValid(geom)), sum(ST_NumGeometries(geom)) FROM public.test_bowtie")[0] \
        == (True, 3)
    repaired = query(dsn, "SELECT geometries_repaired FROM meta.datasets WHERE table_name = 'public.test_bowtie'")
    assert repaired[0][0] == 1


# ---------------------------------------------------------------- official layouts (format fixtures, built at run time)

def _parcel_fixture(folder: Path) -> tuple[Path, Path, int]:
    """FORMAT FIXTURE: LSMD_CONT_LDREG layout from real Sejong 행정동 polygons cut by a 1 km grid (not real parcels)."""
    admin = gpd.read_file(ADMIN).to_crs(5186)
    x0, y0, x1, y1 = admin.total_bounds
    cells = [shapely.box(x, y, x + 1000, y + 1000) for x in np.arange(x0, x1, 1000) for y in np.arange(y0, y1, 1000)]
    grid = gpd.GeoDataFrame(geometry=cells, crs=5186)
    lots = gpd.overlay(admin[["adm_cd2", "geometry"]], grid, how="intersection").explode(index_parts=False)
    lots = lots[lots.geometry.area > 100].reset_index(drop=True)
    jimoks = ["대", "전", "답", "임", "도", "공", "잡"]
    pnu = [f"3611010100{1}{i + 1:04d}{i % 7:04d}" for i in range(len(lots))]
    frame = gpd.GeoDataFrame({
        "PNU": pnu, "JIBUN": [f"{i + 1}-{i % 7} {jimoks[i % 7]}" for i in range(len(lots))],
        "BCHK": ["1"] * len(lots), "SGG_OID": [str(i) for i in range(len(lots))], "COL_ADM_SE": ["36110"] * len(lots),
    }, geometry=lots.geometry.values, crs=5186)
    shp = _write_zip_shapefile(frame, folder, "LSMD_CONT_LDREG_36110_FORMAT_FIXTURE")
    prices = folder / "개별공시지가_FORMAT_FIXTURE.csv"
    lines = ["고유번호,법정동코드,법정동명,특수지구분코드,특수지구분명,지번,기준연도,기준월,공시지가,"
             "공시일자,표준지여부,데이터기준일자,원천시도시군구코드"]
    dong = "3611010100,세종특별자치시 반곡동,1,일반"
    for i, p in enumerate(pnu[::2]):
        lines.append(f"{p},{dong},{i},2024,01,{100000 + i},2024-04-30,N,2024-05-31,36110")
        lines.append(f"{p},{dong},{i},2023,01,{90000 + i},2023-04-28,N,2023-05-31,36110")
    prices.write_bytes("\n".join(lines).encode("cp949"))
    return shp, prices, len(lots)


def test_land_parcels_format_fixture(dsn: str, tmp_path: Path) -> None:
    shp, prices, n = _parcel_fixture(tmp_path / "lsmd")
    with zipfile.ZipFile(shp) as zf:
        assert not any(name.endswith(".cpg") for name in zf.namelist())
    res = load_file(dsn, shp, "public.test_land_parcels", prices=prices)
    assert res.rows == n
    row = query(dsn, "SELECT count(*), count(price), count(DISTINCT jimok), min(price_year), "
                     "bool_and(length(pnu) = 19) FROM public.test_land_parcels")[0]
    assert row == (n, (n + 1) // 2, 7, 2024, True)
    assert query(dsn, "SELECT lot_number, jimok FROM public.test_land_parcels ORDER BY pnu LIMIT 1")[0] == ("1-0", "대")
    # a broken PNU is refused with feature index and column, the loaded parcels stay
    frame = pyogrio.read_dataframe(shp, encoding="cp949")
    frame.loc[3, "PNU"] = "36110-bad"
    bad = _write_zip_shapefile(frame, tmp_path / "bad", "LSMD_CONT_LDREG_36110_BAD")
    before = snapshot(dsn, "public.test_land_parcels", "pnu")
    with pytest.raises(LoadError, match=r"feature 4, column PNU: '36110-bad' is not a 19-digit PNU"):
        load_file(dsn, bad, "public.test_land_parcels")
    assert snapshot(dsn, "public.test_land_parcels", "pnu") == before


def test_al_d010_format_fixture(dsn: str, tmp_path: Path) -> None:
    """FORMAT FIXTURE: AL_D010 layout (A0..A28, CP949 DBF without .cpg) built from the real OSM footprints."""
    osm = gpd.read_file(DATA / "incheon/buildings-osm/buildings.geojson").head(50).to_crs(5186)
    cols = {f"A{i}": [""] * len(osm) for i in range(29)}
    cols["A2"] = [f"28200101001{i:04d}0000" for i in range(len(osm))]
    cols["A9"] = ["공동주택" if b == "residential" else "제2종근린생활시설" for b in osm["building"]]
    cols["A16"] = [str(h) if h == h and h is not None else "0" for h in osm["height"]]
    cols["A24"] = [n or "" for n in osm["name"]]
    cols["A26"] = [str(i % 20 + 1) for i in range(len(osm))]
    cols["A27"] = ["1"] * len(osm)
    cols["A28"] = ["2024-05-08"] * len(osm)
    shp = _write_zip_shapefile(gpd.GeoDataFrame(cols, geometry=osm.geometry.values, crs=5186), tmp_path / "ald010",
                               "AL_D010_28_FORMAT_FIXTURE")
    res = load_file(dsn, shp, "public.test_buildings_al_d010")
    assert res.rows == 50
    row = query(dsn, "SELECT count(*) FILTER (WHERE use = '공동주택'), max(floors_above), min(source), "
                     "count(DISTINCT pnu) FROM public.test_buildings_al_d010")[0]
    assert row[1:] == (20, "al_d010", 50) and row[0] == 5


def test_cli_help() -> None:
    out = subprocess.run([sys.executable, "-m", "loaders", "--help"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    for cmd in ("csv", "file", "bundled", "readings"):
        assert cmd in out
