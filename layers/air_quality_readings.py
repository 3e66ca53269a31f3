"""Layer air_quality_readings: daily readings (Seoul 2018-2022, OA-2218) and the view air_quality_readings_geo."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.readings import POLLUTANTS, seoul_daily
from loaders.recipes import Dataset

FILES = [f"seoul/air-daily/{y}.csv" for y in range(2018, 2023)]
TABLE = "public.air_quality_readings"
VIEW = "public.air_quality_readings_geo"
META = Meta(
    title="대기질 측정값 / Air-quality readings",
    licence="KOGL (서울 열린데이터광장 OA-2218; 에어코리아 KOGL 제1유형)",
    attribution="서울 열린데이터광장, 일별평균대기오염도 (OA-2218); 한국환경공단 에어코리아",
)
_UNITS = {"pm10": "㎍/㎥", "pm25": "㎍/㎥", "o3": "ppm", "no2": "ppm", "co": "ppm", "so2": "ppm"}
_KO = {"pm10": "미세먼지", "pm25": "초미세먼지", "o3": "오존", "no2": "이산화질소", "co": "일산화탄소",
       "so2": "아황산가스"}
SPEC = TableSpec(TABLE, [
    Column("id", "bigserial", "측정값 번호"),
    Column("station_name", "text", "측정소명"),
    Column("measured_at", "timestamptz", "측정일시 (일평균은 해당일 00:00 KST)"),
    Column("period", "text", "집계 단위 (day | hour)"),
    *(Column(p, "numeric", f"{_KO[p]} ({_UNITS[p]})") for p in POLLUTANTS),
    *(Column(f"{p}_flag", "text", f"{_KO[p]} 결측/상태 플래그 (에어코리아 {p}Flag)") for p in POLLUTANTS),
    Column("source", "text", "출처 파일 (형식:파일명)"),
], None, generated_pk=True, replace_by="source", indexes=["station_name,measured_at", "source"])
PROPERTIES: dict[str, tuple[str, str]] = {
    "id": ("번호", "ID"),
    "station_name": ("측정소명", "Station"),
    "station_id": ("측정소 번호", "Station ID"),
    "measured_at": ("측정일시", "Measured at"),
    "period": ("집계 단위", "Period"),
    **{p: (f"{_KO[p]} ({_UNITS[p]})", f"{p.upper().replace('PM25', 'PM2.5')} ({_UNITS[p]})") for p in POLLUTANTS},
    **{f"{p}_flag": (f"{_KO[p]} 플래그", f"{p.upper()} flag") for p in POLLUTANTS},
    "pm10_grade": ("미세먼지 등급", "PM10 grade"),
    "pm25_grade": ("초미세먼지 등급", "PM2.5 grade"),
    "source": ("출처", "Source"),
}


def rows(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """All bundled Seoul daily files."""
    for rel in FILES:
        yield from seoul_daily(data_dir / rel, stats, label=rel)


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir, stats)


def _views(dsn: str) -> None:
    from layers.air_quality import ensure_views

    ensure_views(dsn)


DATASETS = [Dataset(SPEC, FILES, build, META, after=_views)]
