"""Dataset public_institutions: Sejong public institutions (세종특별자치시 공공기관현황, 2022-11-07), and the city's
disability welfare facilities (세종특별자치시 장애인복지시설, 2022-11-03) as a table WITHOUT geometry.

The welfare file has addresses only. They are not geocoded and no position is invented: the 21 rows go to
`public.welfare_facilities` (no geometry column, so in no spatial table or layer), each with `not_placed_reason`,
and the load prints how many were listed unplaced; the catalog (meta.datasets) keeps their load and quality report.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from loaders import transit
from loaders.coords import Coords
from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.csvload import CsvRecipe, Field
from loaders.recipes import Dataset, columns
from loaders.values import integer, to_date

TABLE = "public.public_institutions"
META = Meta(title="세종시 공공기관 / Sejong public institutions", licence="KOGL (공공누리)",
            attribution=transit.PUBLISHER)
FIELDS = [
    Field("name", "구분", required=True),
    Field("address", "도로명주소"),
    Field("address_jibun", "지번주소"),
    Field("phone", "전화번호"),
    Field("homepage", "홈페이지"),
    Field("data_date", "등록기준일", "date"),
]
SPEC = TableSpec(TABLE, columns(FIELDS), "Point")
RECIPE = CsvRecipe(fields=FIELDS, coords=Coords("경도", "위도", 4326, latlon=True, dm=False))

WELFARE = "_장애인복지시설_"
WELFARE_TABLE = "public.welfare_facilities"
NOT_PLACED = "주소만 있음 (좌표 없음): 지오코딩하지 않아 지도에 표시하지 않음 / address only, not geocoded, not mapped"
WELFARE_META = Meta(title="세종시 장애인복지시설 (좌표 없음) / Sejong disability welfare facilities (no positions)",
                    licence="KOGL (공공누리)", attribution=transit.PUBLISHER)
WELFARE_SPEC = TableSpec(WELFARE_TABLE, [
    Column("id", "integer", "일련번호"),
    Column("category", "text", "구분"),
    Column("facility_type", "text", "시설유형"),
    Column("name", "text", "시설명"),
    Column("address", "text", "소재지"),
    Column("staff", "integer", "종사자수"),
    Column("users", "integer", "이용자수 (입소자)"),
    Column("registered", "date", "설치 신고일"),
    Column("phone", "text", "전화번호"),
    Column("data_date", "date", "등록기준일"),
    Column("not_placed_reason", "text", "지도에 없는 이유"),
], geom_type=None)


def welfare_rows(path: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Every welfare facility as a row without geometry, with the reason it is not placed."""
    label, text = transit.member_text(path, WELFARE)
    n = 0
    for n, (_, r) in enumerate(transit.records(text, label, ("구분", "시설유형", "시설명", "소재지")), start=1):
        yield {"id": n, "category": r["구분"], "facility_type": r["시설유형"], "name": r["시설명"],
               "address": r["소재지"], "staff": integer(r.get("종사자수", "")),
               "users": integer(r.get("이용자수 (입소자)", "")), "registered": to_date(r.get("설치 신고일", "")),
               "phone": r.get("전화번호") or None, "data_date": to_date(r.get("등록기준일", "")),
               "not_placed_reason": NOT_PLACED}
    stats.notes.append(f"{label}: {n} welfare facilities listed without a position in {WELFARE_TABLE} "
                       f"(addresses only; not geocoded, in no map layer)")


def build_welfare(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Rows of the bundled zip's welfare member."""
    return welfare_rows(data_dir / transit.ZIP, stats)


DATASETS = [
    Dataset(SPEC, [transit.ZIP], transit.pack_csv_builder("_공공기관현황_", RECIPE), META),
    Dataset(WELFARE_SPEC, [transit.ZIP], build_welfare, WELFARE_META),
]
