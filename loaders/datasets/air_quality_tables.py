"""The air-quality tables (stations, readings) and the two views the layers serve, created together."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions
from psycopg2 import sql

from loaders.core import Column, Meta, TableSpec, connect, prepare
from loaders.flat_runs import flag_stored_flat_runs
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
  WHERE x.station_name = s.name AND num_nonnulls(x.pm10, x.pm25, x.o3, x.no2) > 0
  ORDER BY x.measured_at DESC LIMIT 1) r ON true;
COMMENT ON VIEW public.air_quality_latest IS
  '측정소별 최신 측정값(값이 하나라도 있는 가장 최근 측정)과 그 측정일시, 등급 (PM10 0-30 좋음, 31-80 보통, '
  '81-150 나쁨, 151+ 매우나쁨; PM2.5 0-15, 16-35, 36-75, 76+)';
CREATE OR REPLACE VIEW public.air_quality_readings_geo AS
SELECT r.id, r.station_name, s.id AS station_id, r.measured_at, r.period,
       r.pm10, r.pm25, r.o3, r.no2, r.co, r.so2,
       r.pm10_flag, r.pm25_flag, r.o3_flag, r.no2_flag, r.co_flag, r.so2_flag,
       meta.pm10_grade(r.pm10) AS pm10_grade, meta.pm25_grade(r.pm25) AS pm25_grade, r.source, s.geom
FROM public.air_quality_readings r LEFT JOIN public.air_quality_stations s ON s.name = r.station_name;
COMMENT ON VIEW public.air_quality_readings_geo IS
  '측정값 시계열 + 측정소 위치 (에어코리아 측정소 목록에 없는 도로변·배경 측정소는 위치 없음)';
"""


@dataclass(frozen=True)
class ViewCatalog:
    """The catalog row of a served view: its own credit text, the sources and load times of its tables."""

    view: str
    tables: tuple[str, ...]  # the first one's data-quality report is the view's
    meta: Meta


VIEW_CATALOG = (
    ViewCatalog("public.air_quality_latest", (STATIONS.qualified, READINGS.qualified), Meta(
        title="대기질 측정소와 최신 측정값 (에어코리아) / AirKorea stations with the latest readings",
        licence="KOGL Type 1 (한국환경공단 에어코리아 측정소정보·대기오염정보; 서울 열린데이터광장 OA-2218); "
                "station list file MIT (github.com/minseok-lab/NicePlab)",
        attribution="© 한국환경공단 에어코리아 측정소정보·대기오염정보 (KOGL 제1유형), "
                    "via github.com/minseok-lab/NicePlab (MIT); "
                    "서울 열린데이터광장 일별평균대기오염도 (OA-2218, KOGL)")),
    ViewCatalog("public.air_quality_readings_geo", (READINGS.qualified, STATIONS.qualified), Meta(
        title="대기질 측정값 (측정소 위치 포함) / Air-quality readings with station positions",
        licence="KOGL (서울 열린데이터광장 OA-2218; 한국환경공단 에어코리아 KOGL Type 1); "
                "station list file MIT (github.com/minseok-lab/NicePlab)",
        attribution="서울 열린데이터광장, 일별평균대기오염도 (OA-2218, KOGL); "
                    "측정소 위치·실시간 측정값: © 한국환경공단 에어코리아 (KOGL 제1유형), "
                    "via github.com/minseok-lab/NicePlab (MIT)")),
)

# one catalog row per view: the sources of its tables, their newest load; the version moves when they change
_SYNC_SQL = """
INSERT INTO meta.datasets AS d (table_name, title, licence, attribution, sources, loaded_at, rows_loaded,
                                rows_skipped, geometries_repaired, data_version, quality)
SELECT %(view)s, %(title)s, %(licence)s, %(attribution)s,
       COALESCE((SELECT jsonb_agg(s.src ORDER BY s.ord, s.n) FROM (
                 SELECT b.src, array_position(%(tables)s::text[], m.table_name) AS ord, b.n
                 FROM meta.datasets m, jsonb_array_elements(COALESCE(m.sources, '[]'::jsonb))
                      WITH ORDINALITY AS b(src, n)
                 WHERE m.table_name = ANY(%(tables)s)) s), '[]'::jsonb),
       COALESCE((SELECT max(loaded_at) FROM meta.datasets WHERE table_name = ANY(%(tables)s)), now()),
       {rows}, 0, 0, 1,
       (SELECT quality FROM meta.datasets WHERE table_name = (%(tables)s::text[])[1])
ON CONFLICT (table_name) DO UPDATE SET title = EXCLUDED.title, licence = EXCLUDED.licence,
  attribution = EXCLUDED.attribution, sources = EXCLUDED.sources, loaded_at = EXCLUDED.loaded_at,
  rows_loaded = EXCLUDED.rows_loaded, quality = EXCLUDED.quality,
  data_version = d.data_version + CASE WHEN d.loaded_at IS DISTINCT FROM EXCLUDED.loaded_at
                                         OR d.sources IS DISTINCT FROM EXCLUDED.sources
                                         OR d.rows_loaded IS DISTINCT FROM EXCLUDED.rows_loaded THEN 1 ELSE 0 END
"""


def sync_view_catalog(cur: psycopg2.extensions.cursor) -> None:
    """Catalog rows of the two views (attribution, licence, sources, version), in the caller's transaction."""
    for vc in VIEW_CATALOG:
        rows = sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(*vc.view.split(".")))
        cur.execute(sql.SQL(_SYNC_SQL).format(rows=rows),
                    {"view": vc.view, "tables": list(vc.tables), "title": vc.meta.title,
                     "licence": vc.meta.licence, "attribution": vc.meta.attribution})


def ensure_views(dsn: str) -> None:
    """Create both tables (if missing), the two air-quality views and their catalog rows; re-judge the stored
    hourly series for stuck PM sensors (a run spanning two loaded files)."""
    prepare(dsn, [STATIONS, READINGS])
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('sejong-loaders-ddl'))")
            cur.execute(VIEWS_SQL)
            rejudge_hourly_flat_runs(cur)
            sync_view_catalog(cur)
        conn.commit()
    finally:
        conn.close()


def rejudge_hourly_flat_runs(cur: psycopg2.extensions.cursor) -> int:
    """Flag 'flat' runs over the whole stored hourly series of every station (loaders.flat_runs)."""
    cur.execute(sql.SQL("SELECT DISTINCT station_name FROM {} WHERE period = 'hour'").format(
        sql.Identifier(*READINGS.qualified.split("."))))
    return flag_stored_flat_runs(cur, READINGS.qualified, [r[0] for r in cur.fetchall()])
