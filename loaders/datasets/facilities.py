"""Dataset facilities: libraries, urban parks, schools and public open facilities of one region (Sejong default)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Column, LoadResult, Meta, RowStats, SourceFile, TableSpec, load_table
from loaders.csvload import CsvRecipe, CsvRows, Field
from loaders.recipes import Dataset, sha256

TABLE = "public.facilities"
DEFAULT_REGION = "세종특별자치시"
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # kind: (Korean name, file, detail columns kept in `details`)
    "library": ("도서관", "korea/libraries/전국도서관표준데이터.csv",
                ("휴관일", "평일운영시작시각", "평일운영종료시각", "열람좌석수", "자료수(도서)", "운영기관명",
                 "홈페이지주소", "건물면적")),
    "park": ("도시공원", "korea/parks/전국도시공원정보표준데이터.csv",
             ("관리번호", "공원면적", "공원보유시설(운동시설)", "공원보유시설(유희시설)", "공원보유시설(편익시설)",
              "공원보유시설(교양시설)", "지정고시일", "관리기관명")),
    "school": ("초중등학교", "korea/schools/전국초중등학교위치표준데이터.csv",
               ("학교ID", "설립일자", "설립형태", "본교분교구분", "운영상태", "교육지원청명")),
    "public_open_facility": ("공공시설 개방", "korea/public-open-facilities/전국공공시설개방정보표준데이터.csv",
                             ("개방장소명", "휴관일", "유료사용여부", "사용료", "수용가능인원수", "면적",
                              "홈페이지주소", "관리기관명")),
}
FILES = [v[1] for v in KINDS.values()]
META = Meta(
    title="공공시설 (도서관·도시공원·초중등학교·개방 공공시설) / Public facilities",
    licence="KOGL Type 1 (공공누리 제1유형)",
    attribution="© 문화체육관광부·각 지자체·한국교육시설안전원, 공공데이터포털 표준데이터 (KOGL 제1유형)",
)
FIELDS = [
    Field("name", ("도서관명", "공원명", "학교명", "개방시설명"), required=True),
    Field("subtype", ("도서관유형", "공원구분", "학교급구분", "개방시설유형구분")),
    Field("address", ("소재지도로명주소",)),
    Field("address_jibun", ("소재지지번주소",)),
    Field("phone", ("도서관전화번호", "전화번호", "사용안내전화번호")),
    Field("data_date", ("데이터기준일자",), "date"),
    Field("provider", ("제공기관명",)),
]
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "일련번호"),
    Column("kind", "text", "시설종류 (library|park|school|public_open_facility)"),
    Column("kind_ko", "text", "시설종류"),
    Column("name", "text", "시설명 (도서관명/공원명/학교명/개방시설명)"),
    Column("subtype", "text", "유형 (도서관유형/공원구분/학교급구분/개방시설유형구분)"),
    Column("address", "text", "소재지도로명주소"),
    Column("address_jibun", "text", "소재지지번주소"),
    Column("phone", "text", "전화번호"),
    Column("region", "text", "지역 (적재 필터)"),
    Column("data_date", "date", "데이터기준일자"),
    Column("provider", "text", "제공기관명"),
    Column("details", "jsonb", "종류별 추가 항목 (원본 한글 열 이름)"),
], "Point", indexes=["kind"])


def region_filter(region: str) -> Callable[[dict[str, str]], bool]:
    """Row test for a region (세종특별자치시, 파주시): 시도/시군구, provider, education office or address."""
    stem = region
    for suffix in ("특별자치시", "특별자치도", "광역시", "특별시", "시", "군", "구"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break

    def keep(rec: dict[str, str]) -> bool:
        if region in (rec.get("시도명", "").strip(), rec.get("시군구명", "").strip()):
            return True
        if region in rec.get("제공기관명", "").split():
            return True
        if any(stem in rec.get(k, "") for k in ("시도교육청명", "교육지원청명")):
            return True
        return any(region in rec.get(k, "").split() for k in ("소재지도로명주소", "소재지지번주소"))
    return keep


def recipe(kind: str, region: str = DEFAULT_REGION) -> CsvRecipe:
    """CSV recipe of one facility kind for a region."""
    kind_ko, _, detail_cols = KINDS[kind]

    def extra(rec: dict[str, str]) -> dict[str, Any]:
        details = {k: rec[k].strip() for k in detail_cols if rec.get(k, "").strip()}
        return {"kind": kind, "kind_ko": kind_ko, "region": region, "details": details}
    return CsvRecipe(fields=FIELDS, row_filter=region_filter(region), extra=extra, id_column=None)


def rows(data_dir: Path, stats: RowStats, region: str = DEFAULT_REGION) -> Iterator[Mapping[str, Any]]:
    """All four files' rows for a region with consecutive ids."""
    counter = itertools.count(1)
    for kind, (_, rel, _) in KINDS.items():
        n = 0
        for row in CsvRows(data_dir / rel, recipe(kind, region), label=rel, stats=stats):
            n += 1
            yield {**row, "id": next(counter)}
        stats.per_source[rel] = n
        stats.notes.append(f"{kind}: {n}")


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder (Sejong)."""
    return rows(data_dir, stats)


def load_region(dsn: str, data_dir: Path, region: str, table: str = TABLE) -> LoadResult:
    """Load the facilities of another region (e.g. 파주시) into `table` (default public.facilities)."""
    spec = TableSpec(table, SPEC.columns, "Point", indexes=SPEC.indexes)
    stats = RowStats()
    sources = [SourceFile(f, sha256(data_dir / f)) for f in FILES]
    return load_table(dsn, spec, rows(data_dir, stats, region), label=f"facilities ({region})", sources=sources,
                      meta=META, stats=stats)


DATASETS = [Dataset(SPEC, FILES, build, META)]
