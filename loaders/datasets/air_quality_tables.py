"""The air-quality tables (stations, readings) and the two views the layers serve, created together."""

from __future__ import annotations

from loaders.core import Column, TableSpec, connect, prepare
from loaders.readings import POLLUTANTS

STATIONS = TableSpec("public.air_quality_stations", [
    Column("id", "integer", "일련번호"),
    Column("name", "text", "측정소명 (stationName)"),
    Column("sido", "text", "시도 (통계청 2018 시군구 경계로 판정)"),
    Column("sgg", "text", "시군구 (통계청 2018 시군구 경계로 판정)"),
    Column("lat", "double precision", "위도 (dmX)"),
    Column("lon", "double precision", "경도 (dmY)"),
], "Point", indexes=["name"])
_UNITS = {"pm10": "㎍/㎥", "pm25": "㎍/㎥", "o3": "ppm", "no2": "ppm", "co": "ppm", "so2": "ppm"}
_KO = {"pm10": "미세먼지", "pm25": "초미세먼지", "o3": "오존", "no2": "이산화질소", "co": "일산화탄소",
       "so2": "아황산가스"}
READINGS = TableSpec("public.air_quality_readings", [
    Column("id", "bigserial", "측정값 번호"),
    Column("station_name", "text", "측정소명"),
    Column("measured_at", "timestamptz", "측정일시 (일평균은 해당일 00:00 KST)"),
    Column("period", "text", "집계 단위 (day | hour)"),
    *(Column(p, "numeric", f"{_KO[p]} ({_UNITS[p]})") for p in POLLUTANTS),
    *(Column(f"{p}_flag", "text", f"{_KO[p]} 결측/상태 플래그 (에어코리아 {p}Flag)") for p in POLLUTANTS),
    Column("source", "text", "출처 파일 (형식:파일명)"),
], None, generated_pk=True, replace_by="source", indexes=["station_name,measured_at", "source"])

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
    prepare(dsn, [STATIONS, READINGS])
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('sejong-loaders-ddl'))")
            cur.execute(VIEWS_SQL)
        conn.commit()
    finally:
        conn.close()

