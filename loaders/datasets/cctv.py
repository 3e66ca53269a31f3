"""Dataset cctv: Sejong CCTV cameras (세종특별자치시 CCTV, 2023-07-04), an internal layer (config.yml `access:`).

The CSV is a member of the 세종시 공공데이터 zip (CP949 member names and text); its 위도/경도 columns are found by
the loaders' coordinate detection.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Meta, RowStats, TableSpec
from loaders.csvload import CsvRecipe, CsvRows, Field
from loaders.errors import LoadError
from loaders.recipes import Dataset, columns
from loaders.textio import decode_bytes, member_names

FILE = "sejong/public-data-2023/세종시데이터.zip"
MEMBER = "세종특별자치시_CCTV_"
TABLE = "public.cctv"
META = Meta(
    title="세종시 CCTV / Sejong CCTV cameras",
    licence="KOGL (공공누리)",
    attribution="© 세종특별자치시, 공공데이터포털 (KOGL)",
)
FIELDS = [
    Field("purpose", "설치목적구분", required=True),
    Field("cameras", "카메라대수", "int"),
    Field("resolution", "카메라화소수", "int"),
    Field("direction", "촬영방면정보"),
    Field("retention_days", "보관일수", "int"),
    Field("address_jibun", "소재지지번주소"),
    Field("phone", "관리기관전화번호"),
    Field("manager", "관리기관명"),
    Field("data_date", "데이터기준일자", "date"),
]
SPEC = TableSpec(TABLE, columns(FIELDS), "Point", indexes=["purpose"])
RECIPE = CsvRecipe(fields=FIELDS)


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Typed rows of the CCTV member of the zip (its CP949 name and text decoded)."""
    path = data_dir / FILE
    hits = [(name, info) for name, info in member_names(path).items() if MEMBER in name and name.endswith(".csv")]
    if len(hits) != 1:
        raise LoadError(f"{FILE}: expected one CSV member named like {MEMBER!r}, found {[n for n, _ in hits]}")
    name, info = hits[0]
    label = f"{FILE}/{name}"
    with zipfile.ZipFile(path) as zf:
        text, _ = decode_bytes(zf.read(info), "auto", label)
    return CsvRows(path, RECIPE, label=label, stats=stats, text=text)


DATASETS = [Dataset(SPEC, [FILE], build, META)]
