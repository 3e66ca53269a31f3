"""Dataset land: 연속지적도 parcels (LSMD_CONT_LDREG / AL_D002) with 개별공시지가; no real parcels are bundled."""

from __future__ import annotations

from loaders.core import Column, Meta, TableSpec
from loaders.recipes import Dataset

TABLE = "public.land_parcels"
META = Meta(
    title="연속지적도 필지 / Cadastral parcels",
    licence="KOGL Type 1 (공공누리 제1유형)",
    attribution="© 국토교통부 국가공간정보포털 연속지적도·개별공시지가 (KOGL 제1유형)",
)
SPEC = TableSpec(TABLE, [
    Column("pnu", "text", "고유번호 PNU (19자리)"),
    Column("jibun", "text", "지번 (JIBUN, 지번+지목부호)"),
    Column("lot_number", "text", "지번 (본번-부번)"),
    Column("jimok", "text", "지목"),
    Column("bchk", "text", "BCHK"),
    Column("price", "bigint", "개별공시지가 (원/㎡)"),
    Column("price_year", "integer", "공시지가 기준연도"),
], "MultiPolygon", pk="pnu", indexes=["jimok"])
DATASETS = [Dataset(SPEC, [], None, META)]
