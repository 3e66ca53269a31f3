"""Dataset buildings: footprints, use, floors, height (bundled demo: Incheon OSM; AL_D010 / F_FAC_BUILDING loaders)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.layouts import building_rows
from loaders.recipes import Dataset
from loaders.vector import read_vector

FILE = "incheon/buildings-osm/buildings.geojson"
TABLE = "public.buildings"
META = Meta(
    title="건물 (OpenStreetMap, 인천 구월동 데모) / Buildings (OSM demo)",
    licence="ODbL 1.0",
    attribution="© OpenStreetMap contributors (ODbL)",
)
OFFICIAL_META = Meta(
    title="건물 (GIS건물통합정보) / Buildings (GIS building integrated data)",
    licence="KOGL Type 1 (공공누리 제1유형)",
    attribution="© 국토교통부 브이월드 / 국가공간정보포털 GIS건물통합정보 (KOGL 제1유형)",
)
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "일련번호"),
    Column("name", "text", "건물명 (AL_D010 A24+A25 / BLD_NM / OSM name)"),
    Column("use", "text", "주용도 (AL_D010 A9 / USABILITY / OSM building)"),
    Column("floors_above", "integer", "지상층수 (A26 / GRND_FLR / building:levels)"),
    Column("floors_below", "integer", "지하층수 (A27 / UGRND_FLR)"),
    Column("height", "double precision", "높이 m (A16 / HEIGHT / height)"),
    Column("pnu", "text", "고유번호 PNU (A2 / PNU)"),
    Column("source", "text", "출처 형식 (osm | al_d010 | f_fac_building)"),
    Column("source_id", "text", "원본 식별자 (A1 / UFID / OSM id)"),
    Column("updated", "timestamptz", "변경일자 (A28 / OSM 편집 시각)"),
], "MultiPolygon", indexes=["pnu"])


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled OSM buildings."""
    data = read_vector(data_dir / FILE, label=FILE)
    stats.skipped += data.skipped
    return building_rows(data.frame, "osm", FILE)


DATASETS = [Dataset(SPEC, [FILE], build, META)]
