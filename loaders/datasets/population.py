"""Dataset population: Sejong resident population per 행정동 per month (2020-12 … 2023-08), on polygons dissolved
from the 2023-09 법정동 boundaries by each month's own grouping (the sheets' footnotes).

A 행정동 (or a 법정동 named in a footnote) that matches no 법정동 polygon is never dropped: its row is stored with a
NULL geometry and the unmatched names in the `unmatched` column, counted in the catalog's quality report
(validity.emptyGeometries, shown at /quality) and listed in the load output.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.errors import LoadError
from loaders.hangjeongdong import Dissolver, MonthSheet, parse_workbook
from loaders.recipes import Dataset
from loaders.textio import member_names
from loaders.vector import ewkb, read_vector

FILE = "sejong/public-data-2023/세종시데이터.zip"
MEMBER = "인구현황"
UMD = "sejong/umd-2023/LSMD_ADM_SECT_UMD_36_202309.shp"
UMD_FILES = [UMD, *(UMD[:-4] + s for s in (".shx", ".dbf", ".prj"))]
TABLE = "public.population_monthly"
META = Meta(
    title="세종시 행정동별 월별 인구 (2020-12 ~ 2023-08) / Sejong monthly population per administrative dong",
    licence="KOGL (공공누리); 법정동 경계: 국가공간정보포털 (KOGL type not stated)",
    attribution="인구현황: © 세종특별자치시, 공공데이터포털 (KOGL); 경계: 국가공간정보포털 LSMD_ADM_SECT_UMD 2023-09 "
                "(행정동 = 법정동 합, 각 월 주석 기준)",
)
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "일련번호"),
    Column("month", "date", "기준월 (월 1일)"),
    Column("name", "text", "행정동"),
    Column("legal_dongs", "text", "포함 법정동 (쉼표 목록, 해당 월 주석 기준)"),
    Column("population", "integer", "전체인구 (내국인+외국인)"),
    Column("male", "integer", "남 (내국인 남 + 외국인 남)"),
    Column("female", "integer", "여 (내국인 여 + 외국인 여)"),
    Column("korean", "integer", "내국인 계"),
    Column("foreigners", "integer", "외국인 계"),
    Column("households", "integer", "세대수 (외국인 제외)"),
    Column("change", "integer", "전월 대비 증감 (같은 행정동·같은 법정동 구성일 때)"),
    Column("change_pct", "double precision", "전월 대비 증감률 (%)"),
    Column("area_km2", "double precision", "면적 (km², EPSG:5186)"),
    Column("density", "double precision", "인구밀도 (명/km²)"),
    Column("unmatched", "text", "법정동 경계에 없는 이름 (있으면 geom NULL)"),
], "MultiPolygon", indexes=["month", "name"])


def legal_polygons(data_dir: Path, path: str = UMD) -> dict[str, shapely.Geometry]:
    """법정동/읍면 name (EMD_NM) -> polygon in EPSG:5186 (EMD_POP/EMD_CAR/EMD_Tra are not official: unused)."""
    data = read_vector(data_dir / path, label=path)
    if "EMD_NM" not in data.frame.columns:
        raise LoadError(f"{path}: no EMD_NM column (columns: {', '.join(map(str, data.frame.columns))})")
    out: dict[str, shapely.Geometry] = {}
    for name, geom in zip(data.frame["EMD_NM"], data.frame.geometry.values, strict=True):
        key = str(name).strip()
        out[key] = shapely.union_all([out[key], geom]) if key in out else geom
    return out


def workbook_bytes(zip_path: Path) -> tuple[bytes, str]:
    """The population xlsx member of the data zip (its CP949 name decoded) and its label."""
    hits = [(n, i) for n, i in member_names(zip_path).items() if MEMBER in n and n.endswith(".xlsx")]
    if len(hits) != 1:
        raise LoadError(f"{FILE}: expected one .xlsx member named like {MEMBER!r}, found {[n for n, _ in hits]}")
    with zipfile.ZipFile(zip_path) as zf:
        return zf.read(hits[0][1]), f"{FILE}/{hits[0][0]}"


def population_rows(months: list[MonthSheet], legal: Mapping[str, shapely.Geometry],
                    stats: RowStats) -> Iterator[dict[str, Any]]:
    """One row per 행정동 per month, with its dissolved polygon, density and change against the month before."""
    dissolver = Dissolver(legal)
    previous: dict[str, tuple[int, str]] = {}
    uncovered: dict[str, list[date]] = {}
    rid = 0
    for m in months:
        grouping = m.grouping()
        current: dict[str, tuple[int, str]] = {}
        covered: set[str] = set()
        for u in m.units:
            members = grouping[u.name]
            shape = dissolver.unit(members)
            legal_list = ", ".join(members)
            before = previous.get(u.name)
            comparable = before is not None and before[1] == legal_list
            change = u.population - before[0] if comparable and before else None
            area = shape.geom.area / 1e6 if shape.geom is not None else None
            c = u.counts
            rid += 1
            yield {
                "id": rid, "month": m.month, "name": u.name, "legal_dongs": legal_list,
                "population": u.population, "male": c["male_korean"] + c["male_foreign"],
                "female": c["female_korean"] + c["female_foreign"], "korean": c["korean"],
                "foreigners": c["foreigners"], "households": c["households"], "change": change,
                "change_pct": round(change / before[0] * 100, 3) if change is not None and before and before[0]
                else None,
                "area_km2": round(area, 4) if area is not None else None,
                "density": round(u.population / area, 1) if area else None,
                "unmatched": ", ".join(shape.unmatched) or None,
                "geom": ewkb(np.array([shape.geom]))[0] if shape.geom is not None else None,
            }
            if shape.unmatched:
                stats.notes.append(f"population {m.month:%Y-%m} sheet {m.sheet!r} line {u.line}: 행정동 {u.name!r}: "
                                   f"no 법정동 polygon named {', '.join(shape.unmatched)}; kept with no geometry")
            current[u.name] = (u.population, legal_list)
            covered.update(members)
        uncovered.setdefault(", ".join(sorted(set(legal) - covered)), []).append(m.month)
        previous = current
    for names, when in uncovered.items():
        if names:
            stats.notes.append(f"population: 법정동 in no 행정동 (no residents listed) in {len(when)} month(s) "
                               f"{when[0]:%Y-%m}…{when[-1]:%Y-%m}: {names}")


def build_from(xlsx: bytes, label: str, legal: Mapping[str, shapely.Geometry], stats: RowStats
               ) -> Iterator[dict[str, Any]]:
    """Rows of a population workbook (parsed in full first, so a bad sheet refuses the load before any row)."""
    months = parse_workbook(xlsx, label)
    for m in months:
        unit_sum = sum(u.population for u in m.units)
        if unit_sum != m.total.population:
            raise LoadError(f"{label} sheet {m.sheet!r}: the 행정동 rows sum to {unit_sum:,}, the sheet's total row "
                            f"(계) says {m.total.population:,}")
    stats.per_source[FILE] = sum(len(m.units) for m in months)
    return population_rows(months, legal, stats)


def build(data_dir: Path, stats: RowStats) -> Iterator[dict[str, Any]]:
    """Bundled builder: the xlsx member of the data zip on the 2023-09 법정동 polygons."""
    xlsx, label = workbook_bytes(data_dir / FILE)
    return build_from(xlsx, label, legal_polygons(data_dir), stats)


DATASETS = [Dataset(SPEC, [FILE, *UMD_FILES], build, META)]
