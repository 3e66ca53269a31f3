"""Dataset roads: every Sejong road centreline (도로명주소 도로구간 KAIS TL_SPRD_MANAGE, August 2023), the basemap.

The Shapefile is EPSG:5181 (per its .prj) with a CP949 DBF and no .cpg: the loaders' vector reader detects the
encoding by content and moves the lines to EPSG:5186.  The routing network built from the same file lives in
network.sejong_* (loaders/osm_network.py), not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import load_config
from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.errors import LoadError
from loaders.recipes import Dataset
from loaders.vector import ewkb, read_vector

STEM = "sejong/roads-kais-2023/Z_KAIS_TL_SPRD_MANAGE_36110"
FILE = f"{STEM}.shp"
FILES = [FILE, f"{STEM}.shx", f"{STEM}.dbf", f"{STEM}.prj"]
TABLE = "public.roads"
# ROA_CLS_SE, 도로위계 (도로명주소 전자지도 layout)
CLASS_NAMES = {1: "고속도로", 2: "대로", 3: "로", 4: "길"}
NEEDED = ("RN", "ENG_RN", "RN_CD", "ROA_CLS_SE", "ROAD_BT", "ROAD_LT")
META = Meta(
    title="세종시 도로 중심선 (도로명주소 도로구간 2023-08) / Sejong road centrelines",
    licence="행정안전부 도로명주소 전자지도 (free use with attribution; KOGL type not stated)",
    attribution="© 행정안전부 도로명주소 전자지도 (도로구간 TL_SPRD_MANAGE, 2023-08)",
)
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "도로구간일련번호 (RDS_MAN_NO)"),
    Column("name", "text", "도로명 (RN)"),
    Column("name_en", "text", "영문 도로명 (ENG_RN)"),
    Column("road_code", "text", "도로명코드 (RN_CD)"),
    Column("road_class", "integer", "도로위계 (ROA_CLS_SE: 1 고속도로, 2 대로, 3 로, 4 길)"),
    Column("class_name", "text", "도로위계 이름"),
    Column("width_m", "double precision", "도로폭 m (ROAD_BT)"),
    Column("length_m", "double precision", "도로길이 m (ROAD_LT, 도로명 전체)"),
    Column("start_address", "text", "기점 (RBP_CN)"),
    Column("end_address", "text", "종점 (REP_CN)"),
], "MultiLineString", indexes=["road_class", "road_code"])


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) or not str(value).strip() else str(value).strip()


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _road_class(value: Any, line: int, label: str) -> int:
    """ROA_CLS_SE as 1-4; anything else refuses the file (a renamed or shifted column)."""
    text = _text(value)
    if text is None or not text.isdigit() or int(text) not in CLASS_NAMES:
        raise LoadError(f"{label}: feature {line}: ROA_CLS_SE {value!r} is not a road class 1-4 "
                        f"(1 고속도로, 2 대로, 3 로, 4 길)")
    return int(text)


def rows(path: Path, label: str, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Road rows in EPSG:5186 with Korean names decoded and the class named."""
    data = read_vector(path, label=label, region=load_config().data.region)  # a lying .prj is refused
    frame = data.frame
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        raise LoadError(f"{label}: not the 도로구간 (TL_SPRD_MANAGE) layout: columns {', '.join(missing)} missing "
                        f"(found {', '.join(map(str, frame.columns[:12]))})")
    ids = frame["RDS_MAN_NO"] if "RDS_MAN_NO" in frame.columns else pd.Series(range(1, len(frame) + 1))
    for i, (rec, g, fid) in enumerate(zip(frame.to_dict("records"), ewkb(frame.geometry.values), ids, strict=True),
                                      start=1):
        cls = _road_class(rec["ROA_CLS_SE"], i, label)
        yield {"id": int(fid), "name": _text(rec["RN"]), "name_en": _text(rec["ENG_RN"]),
               "road_code": _text(rec["RN_CD"]), "road_class": cls, "class_name": CLASS_NAMES[cls],
               "width_m": _number(rec["ROAD_BT"]), "length_m": _number(rec["ROAD_LT"]),
               "start_address": _text(rec.get("RBP_CN")), "end_address": _text(rec.get("REP_CN")), "geom": g}
    stats.per_source[label] = len(frame)
    stats.notes.append(f"roads: {len(frame):,} lines from EPSG:{data.source_epsg}, DBF read as {data.encoding}")


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir / FILE, FILE, stats)


DATASETS = [Dataset(SPEC, FILES, build, META)]
