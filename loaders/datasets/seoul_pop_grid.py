"""Dataset seoul_pop_grid: 국토통계 100 m population grids around Gwanak-gu and Gangdong-gu (EPSG:5179 -> 5186).

Empty cells (no residents, or suppressed) keep a NULL population, never 0; a cell in both files is kept once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.recipes import Dataset
from loaders.vector import ewkb, read_vector

GRIDS = ("seoul/pop-grid-gwanak", "seoul/pop-grid-gangdong")
FILES = [f"{g}/nlsp_021001001{ext}" for g in GRIDS for ext in (".shp", ".shx", ".dbf", ".prj")]
META = Meta(
    title="서울 관악·강동 100 m 격자 인구 (국토통계) / Seoul Gwanak and Gangdong 100 m population grids",
    licence="국토정보플랫폼 국토통계지도 (KOGL type not stated)",
    attribution="© 국토지리정보원 국토정보플랫폼, 격자 인구 100 m (nlsp_021001001)",
)
SPEC = TableSpec("public.seoul_pop_grid", [
    Column("id", "integer", "일련번호"),
    Column("gid", "text", "국가지점번호 격자 (gid)"),
    Column("population", "integer", "인구 (val; NULL: 거주자 없음 또는 비공개)"),
    Column("source", "text", "출처 격자 파일"),
], "MultiPolygon", indexes=["gid"])


def rows(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Grid cells of both files, each gid once."""
    seen: set[str] = set()
    n = 0
    for grid in GRIDS:
        label = f"{grid}/nlsp_021001001.shp"
        frame = read_vector(data_dir / label, label=label).frame
        kept = 0
        for rec, g in zip(frame.to_dict("records"), ewkb(frame.geometry.values), strict=True):
            gid = str(rec["gid"])
            if gid in seen:
                continue
            seen.add(gid)
            val = rec.get("val")
            n += 1
            kept += 1
            yield {"id": n, "gid": gid, "population": None if val is None or val != val else int(val),
                   "source": grid, "geom": g}
        stats.per_source[label] = kept


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir, stats)


DATASETS = [Dataset(SPEC, FILES, build, META)]
