"""Dataset emd_2018: KOSTAT 2018 읍면동 for Sejong (and the Sejong 시군구 outline as public.sgg_2018)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.recipes import Dataset
from loaders.vector import ewkb, read_vector

EMD_FILE = "korea/boundaries-kostat-2018/skorea-submunicipalities-2018-topo.json"
SGG_FILE = "korea/boundaries-kostat-2018/skorea-municipalities-2018-topo-simple.json"
SEJONG_CODE = "29010"
META = Meta(
    title="세종시 읍면동 (통계청 2018) / Sejong eup-myeon-dong (KOSTAT 2018)",
    licence="KOGL Type 1 (공공누리 제1유형)",
    attribution="© 통계청 통계지리정보서비스(SGIS) 2018, via github.com/southkorea/southkorea-maps (KOGL 제1유형)",
)
SGG_META = Meta(title="세종시 시군구 경계 (통계청 2018) / Sejong outline (KOSTAT 2018)", licence=META.licence,
                attribution=META.attribution)


def _spec(table: str) -> TableSpec:
    return TableSpec(table, [
        Column("id", "integer", "일련번호"),
        Column("code", "text", "통계청 행정구역코드"),
        Column("name", "text", "이름"),
        Column("name_eng", "text", "영문 이름"),
        Column("base_year", "text", "기준연도"),
    ], "MultiPolygon", indexes=["code"])


SPEC = _spec("public.emd_2018")
SGG_SPEC = _spec("public.sgg_2018")


def rows(path: Path, label: str, stats: RowStats, prefix: str = SEJONG_CODE) -> Iterator[Mapping[str, Any]]:
    """Features whose KOSTAT code starts with prefix."""
    data = read_vector(path, label=label)
    frame = data.frame[data.frame["code"].astype(str).str.startswith(prefix)].reset_index(drop=True)
    for i, (rec, g) in enumerate(zip(frame.to_dict("records"), ewkb(frame.geometry.values), strict=True), start=1):
        yield {"id": i, "code": rec["code"], "name": rec["name"], "name_eng": rec.get("name_eng"),
               "base_year": rec.get("base_year"), "geom": g}
    stats.per_source[label] = len(frame)


def build_emd(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Sejong 읍면동 rows."""
    return rows(data_dir / EMD_FILE, EMD_FILE, stats)


def build_sgg(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Sejong 시군구 row."""
    return rows(data_dir / SGG_FILE, SGG_FILE, stats)


DATASETS = [Dataset(SPEC, [EMD_FILE], build_emd, META), Dataset(SGG_SPEC, [SGG_FILE], build_sgg, SGG_META)]
