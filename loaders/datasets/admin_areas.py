"""Dataset admin_areas: Sejong 행정동 (2021-04) boundaries with 2022 registered voters as a population proxy."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.recipes import Dataset
from loaders.textio import decode_file
from loaders.vector import ewkb, read_vector

FILE = "sejong/admin-dong-2021/hangjeongdong_세종특별자치시.geojson"
VOTERS = "korea/voters-2022/vote_emd.tsv"
TABLE = "public.admin_areas"
META = Meta(
    title="세종시 행정동 (2021) / Sejong administrative dong (2021)",
    licence="free use with attribution (SGIS-derived); voters: 중앙선거관리위원회",
    attribution="행정동 경계: github.com/vuski/admdongkor (ver20210401, 통계청 SGIS 기반); "
                "선거인수: 중앙선거관리위원회 제20대 대선 (vuski/admdongkor ver20220309)",
)
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "일련번호"),
    Column("adm_cd", "text", "행정동 코드 (통계청 7자리)"),
    Column("adm_cd2", "text", "행정기관코드 (10자리)"),
    Column("adm_nm", "text", "행정동 전체 이름"),
    Column("name", "text", "행정동 이름"),
    Column("voters", "integer", "선거인수 (2022 대선, 인구 대용값)"),
], "MultiPolygon", indexes=["adm_cd"])


def voters_by_name(path: Path, sido: str = "세종특별자치시") -> dict[str, int]:
    """읍면동 name -> registered voters (POPU_ALL) for one 시도 from vote_emd.tsv."""
    text, _ = decode_file(path, "auto", VOTERS)
    out: dict[str, int] = {}
    for rec in csv.DictReader(io.StringIO(text), delimiter="\t"):
        if rec.get("ELEC_SIDO", "").strip() == sido:
            out[rec["ELEC_EMD"].strip()] = int(rec["POPU_ALL"])
    return out


def rows(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Admin-area rows joined to voters by 행정동 name."""
    data = read_vector(data_dir / FILE, label=FILE)
    voters = voters_by_name(data_dir / VOTERS)
    geoms = ewkb(data.frame.geometry.values)
    matched = 0
    for i, (rec, g) in enumerate(zip(data.frame.to_dict("records"), geoms, strict=True), start=1):
        name = str(rec["adm_nm"]).split()[-1]
        v = voters.get(name)
        matched += v is not None
        yield {"id": i, "adm_cd": rec.get("adm_cd"), "adm_cd2": rec.get("adm_cd2"), "adm_nm": rec.get("adm_nm"),
               "name": name, "voters": v, "geom": g}
    stats.notes.append(f"admin_areas: voters matched {matched}/{len(data.frame)} (vote_emd Sejong rows: {len(voters)})")
    stats.per_source[FILE] = len(data.frame)


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir, stats)


DATASETS = [Dataset(SPEC, [FILE, VOTERS], build, META)]
