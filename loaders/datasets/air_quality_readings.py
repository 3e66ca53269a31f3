"""Dataset air_quality_readings: daily readings (Seoul 2018-2022, OA-2218) and the view air_quality_readings_geo."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Meta, RowStats
from loaders.datasets import air_quality_tables as tables
from loaders.readings import seoul_daily
from loaders.recipes import Dataset

FILES = [f"seoul/air-daily/{y}.csv" for y in range(2018, 2023)]
TABLE = "public.air_quality_readings"
VIEW = "public.air_quality_readings_geo"
META = Meta(
    title="대기질 측정값 / Air-quality readings",
    licence="KOGL (서울 열린데이터광장 OA-2218; 에어코리아 KOGL 제1유형)",
    attribution="서울 열린데이터광장, 일별평균대기오염도 (OA-2218); 한국환경공단 에어코리아",
)
SPEC = tables.READINGS


def rows(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """All bundled Seoul daily files."""
    for rel in FILES:
        yield from seoul_daily(data_dir / rel, stats, label=rel)


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir, stats)


DATASETS = [Dataset(SPEC, FILES, build, META, after=tables.ensure_views)]
