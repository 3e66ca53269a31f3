"""Layer air_quality: AirKorea stations (530) and the view public.air_quality_latest (latest reading + grades)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from loaders import crs
from loaders.core import Column, Meta, RowStats, TableSpec, connect, prepare
from loaders.readings import parse_stations_js
from loaders.recipes import Dataset
from loaders.vector import read_vector

FILE = "korea/airkorea-stations/airKoreaStations.js"
SGG_FILE = "korea/boundaries-kostat-2018/skorea-municipalities-2018-topo-simple.json"
TABLE = "public.air_quality_stations"
VIEW = "public.air_quality_latest"
META = Meta(
    title="대기질 측정소 (에어코리아) / AirKorea stations",
    licence="KOGL Type 1 (station data, 한국환경공단 에어코리아); file MIT (github.com/minseok-lab/NicePlab)",
    attribution="© 한국환경공단 에어코리아 측정소정보 (KOGL 제1유형), via github.com/minseok-lab/NicePlab (MIT)",
)
# KOSTAT 2018 시도 code prefixes -> 시도 names
SIDO = {"11": "서울특별시", "21": "부산광역시", "22": "대구광역시", "23": "인천광역시",
        "24": "광주광역시", "25": "대전광역시", "26": "울산광역시", "29": "세종특별자치시",
        "31": "경기도", "32": "강원도", "33": "충청북도", "34": "충청남도", "35": "전라북도",
        "36": "전라남도", "37": "경상북도", "38": "경상남도", "39": "제주특별자치도"}
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "일련번호"),
    Column("name", "text", "측정소명 (stationName)"),
    Column("sido", "text", "시도 (통계청 2018 시군구 경계로 판정)"),
    Column("sgg", "text", "시군구 (통계청 2018 시군구 경계로 판정)"),
    Column("lat", "double precision", "위도 (dmX)"),
    Column("lon", "double precision", "경도 (dmY)"),
], "Point", indexes=["name"])
PROPERTIES: dict[str, tuple[str, str]] = {
    "id": ("번호", "ID"),
    "name": ("측정소명", "Station"),
    "sido": ("시도", "Province"),
    "sgg": ("시군구", "District"),
    "measured_at": ("측정일시", "Measured at"),
    "pm10": ("미세먼지 PM10 (㎍/㎥)", "PM10 (µg/m³)"),
    "pm25": ("초미세먼지 PM2.5 (㎍/㎥)", "PM2.5 (µg/m³)"),
    "o3": ("오존 O3 (ppm)", "Ozone O3 (ppm)"),
    "no2": ("이산화질소 NO2 (ppm)", "Nitrogen dioxide NO2 (ppm)"),
    "pm10_grade": ("미세먼지 등급", "PM10 grade"),
    "pm25_grade": ("초미세먼지 등급", "PM2.5 grade"),
}


def _locate(lon: np.ndarray, lat: np.ndarray, data_dir: Path) -> list[tuple[str | None, str | None]]:
    """(시도, 시군구) per point from the KOSTAT 2018 시군구 polygons (nearest polygon when on the coast)."""
    path = data_dir / SGG_FILE
    if not path.exists():
        return [(None, None)] * len(lon)
    frame = read_vector(path, label=SGG_FILE, multi=False).frame
    gx, gy = crs.transform(lon, lat, 4326, crs.STORAGE_SRID)
    pts = shapely.points(gx, gy)
    tree = shapely.STRtree(frame.geometry.values)
    idx = tree.query_nearest(pts, all_matches=False)[1]
    codes = frame["code"].astype(str).to_numpy()[idx]
    names = frame["name"].astype(str).to_numpy()[idx]
    return [(SIDO.get(c[:2]), n) for c, n in zip(codes, names, strict=True)]


def rows(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Station rows (id = position in the file)."""
    stations = parse_stations_js(data_dir / FILE, FILE)
    lat = np.array([s[1] for s in stations])
    lon = np.array([s[2] for s in stations])
    crs.check_in_korea(lon, lat, 4326, FILE, "lat/lon")
    gx, gy = crs.transform(lon, lat, 4326, crs.STORAGE_SRID)
    where = _locate(lon, lat, data_dir)
    for i, ((name, la, lo), x, y, (sido, sgg)) in enumerate(zip(stations, gx, gy, where, strict=True), start=1):
        yield {"id": i, "name": name, "sido": sido, "sgg": sgg, "lat": la, "lon": lo,
               "geom": f"SRID={crs.STORAGE_SRID};POINT({x:.3f} {y:.3f})"}
    stats.per_source[FILE] = len(stations)


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir, stats)


VIEWS_SQL = """
CREATE OR REPLACE VIEW public.air_quality_latest AS
SELECT s.id, s.name, s.sido, s.geom, r.measured_at, r.pm10, r.pm25, r.o3, r.no2,
       meta.pm10_grade(r.pm10) AS pm10_grade, meta.pm25_grade(r.pm25) AS pm25_grade
FROM public.air_quality_stations s
LEFT JOIN LATERAL (
  SELECT x.measured_at, x.pm10, x.pm25, x.o3, x.no2 FROM public.air_quality_readings x
  WHERE x.station_name = s.name ORDER BY x.measured_at DESC LIMIT 1) r ON true;
COMMENT ON VIEW public.air_quality_latest IS
  '측정소별 최신 측정값과 등급 (PM10 0-30 좋음, 31-80 보통, 81-150 나쁨, 151+ 매우나쁨; '
  'PM2.5 0-15, 16-35, 36-75, 76+)';
CREATE OR REPLACE VIEW public.air_quality_readings_geo AS
SELECT r.id, r.station_name, s.id AS station_id, r.measured_at, r.period,
       r.pm10, r.pm25, r.o3, r.no2, r.co, r.so2,
       r.pm10_flag, r.pm25_flag, r.o3_flag, r.no2_flag, r.co_flag, r.so2_flag,
       meta.pm10_grade(r.pm10) AS pm10_grade, meta.pm25_grade(r.pm25) AS pm25_grade, r.source, s.geom
FROM public.air_quality_readings r JOIN public.air_quality_stations s ON s.name = r.station_name;
COMMENT ON VIEW public.air_quality_readings_geo IS '측정값 시계열 + 측정소 위치';
"""


def ensure_views(dsn: str) -> None:
    """Create both tables (if missing) and the two air-quality views."""
    from layers.air_quality_readings import SPEC as READINGS

    prepare(dsn, [SPEC, READINGS])
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('sejong-loaders-ddl'))")
            cur.execute(VIEWS_SQL)
        conn.commit()
    finally:
        conn.close()


DATASETS = [Dataset(SPEC, [FILE, SGG_FILE], build, META, after=ensure_views)]
