"""Dataset bike_stations: Sejong 어울링 public-bike stations from 전국자전거대여소표준데이터."""

from __future__ import annotations

from loaders.core import Meta, TableSpec
from loaders.csvload import CsvRecipe, Field
from loaders.recipes import Dataset, columns, csv_builder

FILE = "korea/bike-stations/전국자전거대여소표준데이터.csv"
TABLE = "public.bike_stations"
META = Meta(
    title="어울링 공공자전거 대여소 (세종) / Eoulling public bike stations",
    licence="KOGL Type 1 (공공누리 제1유형)",
    attribution="© 세종특별자치시, 공공데이터포털 전국자전거대여소표준데이터 (KOGL 제1유형)",
)
FIELDS = [
    Field("name", "자전거대여소명", required=True),
    Field("kind", "자전거대여소구분"),
    Field("address_road", "소재지도로명주소"),
    Field("address_jibun", "소재지지번주소"),
    Field("open_time", "운영시작시각"),
    Field("close_time", "운영종료시각"),
    Field("closed_days", "휴무일"),
    Field("fee_type", "요금구분"),
    Field("fee", "자전거이용요금"),
    Field("bikes", "자전거보유대수", "int"),
    Field("docks", "거치대수", "int"),
    Field("air_pump", "공기주입기비치여부"),
    Field("air_pump_type", "공기주입기유형"),
    Field("repair_stand", "수리대설치여부"),
    Field("phone", "관리기관전화번호"),
    Field("manager", "관리기관명"),
    Field("data_date", "데이터기준일자", "date"),
    Field("provider_code", "제공기관코드"),
    Field("provider", "제공기관명", required=True),
]
SPEC = TableSpec(TABLE, columns(FIELDS), "Point", indexes=["name"])


def recipe(region: str = "세종특별자치시") -> CsvRecipe:
    """CSV recipe filtered to one provider (세종특별자치시 by default)."""
    return CsvRecipe(fields=FIELDS, where={"제공기관명": {region}})


DATASETS = [Dataset(SPEC, [FILE], csv_builder(FILE, recipe()), META)]
