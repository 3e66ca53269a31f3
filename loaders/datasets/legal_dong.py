"""Dataset legal_dong: Sejong 법정동/읍면 boundaries (LSMD_ADM_SECT_UMD, 2023-09), the basemap's areas.

Shapefile in EPSG:5186 with a CP949 DBF and no .cpg.  EMD_POP, EMD_CAR and EMD_Tra were added by hand by a contest
team and are not official: they are not loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from core.config import load_config
from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.errors import LoadError
from loaders.recipes import Dataset
from loaders.vector import ewkb, read_vector

STEM = "sejong/umd-2023/LSMD_ADM_SECT_UMD_36_202309"
FILE = f"{STEM}.shp"
FILES = [FILE, f"{STEM}.shx", f"{STEM}.dbf", f"{STEM}.prj"]
TABLE = "public.legal_dong"
KINDS = ("읍", "면", "동")
META = Meta(
    title="세종시 법정동·읍면 경계 (2023-09) / Sejong legal dong, eup and myeon (2023-09)",
    licence="국가공간정보포털 (free use with attribution; KOGL type not stated)",
    attribution="© 국토교통부 국가공간정보포털 행정구역 읍면동 (LSMD_ADM_SECT_UMD, 2023-09)",
)
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "일련번호"),
    Column("code", "text", "법정동코드 (EMD_CD, 8자리)"),
    Column("name", "text", "법정동·읍면 이름 (EMD_NM)"),
    Column("kind", "text", "구분 (읍, 면, 동)"),
], "MultiPolygon", indexes=["code"])


def kind_of(name: str, label: str) -> str:
    """읍, 면 or 동 from the name's last syllable; anything else refuses the file."""
    if not name or name[-1] not in KINDS:
        raise LoadError(f"{label}: EMD_NM {name!r} does not end in 읍, 면 or 동 (a mis-decoded or renamed column?)")
    return name[-1]


def rows(path: Path, label: str, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """법정동 rows in EPSG:5186."""
    data = read_vector(path, label=label, region=load_config().data.region)  # a lying .prj is refused
    frame = data.frame
    missing = [c for c in ("EMD_CD", "EMD_NM") if c not in frame.columns]
    if missing:
        raise LoadError(f"{label}: not the LSMD_ADM_SECT_UMD layout: columns {', '.join(missing)} missing")
    for i, (rec, g) in enumerate(zip(frame.to_dict("records"), ewkb(frame.geometry.values), strict=True), start=1):
        name = str(rec["EMD_NM"]).strip()
        yield {"id": i, "code": str(rec["EMD_CD"]).strip(), "name": name, "kind": kind_of(name, label), "geom": g}
    stats.per_source[label] = len(frame)


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir / FILE, FILE, stats)


DATASETS = [Dataset(SPEC, FILES, build, META)]
