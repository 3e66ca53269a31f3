"""Dataset fuel_stations: Sejong fuel stations (세종특별자치시 주유소현황, 2022-10-13) from the 세종시 data pack."""

from __future__ import annotations

from loaders import transit
from loaders.coords import Coords
from loaders.core import Meta, TableSpec
from loaders.csvload import CsvRecipe, Field
from loaders.recipes import Dataset, columns

TABLE = "public.fuel_stations"
META = Meta(title="세종시 주유소 / Sejong fuel stations", licence="KOGL (공공누리)", attribution=transit.PUBLISHER)
FIELDS = [
    Field("name", "상호", required=True),
    Field("address", "주소"),
    Field("brand", "상표"),
    Field("self_service", "셀프여부"),
    Field("phone", "전화번호"),
    Field("data_date", "등록기준일", "date"),
]
SPEC = TableSpec(TABLE, columns(FIELDS), "Point", indexes=["brand"])
RECIPE = CsvRecipe(fields=FIELDS, coords=Coords("경도", "위도", 4326, latlon=True, dm=False))
DATASETS = [Dataset(SPEC, [transit.ZIP], transit.pack_csv_builder("_주유소현황_", RECIPE), META)]
