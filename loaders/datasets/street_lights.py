"""Dataset street_lights: Sejong street lights (세종특별자치시 가로등 현황, 2023-06-09)."""

from __future__ import annotations

from loaders.core import Meta, TableSpec
from loaders.csvload import CsvRecipe, Field
from loaders.recipes import Dataset, columns, csv_builder

FILE = "sejong/street-lights/세종_가로등현황.csv"
TABLE = "public.street_lights"
META = Meta(
    title="세종시 가로등 / Sejong street lights",
    licence="KOGL (공공누리)",
    attribution="© 세종특별자치시 도로관리사업소, 공공데이터포털 (KOGL)",
)
FIELDS = [
    Field("location", "가로등위치명", required=True),
    Field("units", "설치대수", "int"),
    Field("address_jibun", "소재지지번주소"),
    Field("lamp_type", "설치형태"),
    Field("phone", "관리기관전화번호"),
    Field("manager", "관리기관명"),
    Field("data_date", "데이터기준일자", "date"),
]
SPEC = TableSpec(TABLE, columns(FIELDS), "Point")
RECIPE = CsvRecipe(fields=FIELDS)
DATASETS = [Dataset(SPEC, [FILE], csv_builder(FILE, RECIPE), META)]
