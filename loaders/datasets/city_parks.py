"""Dataset city_parks: the city's own list of urban parks (세종특별자치시 도시공원정보, loaded 2023-07) from the
세종시 data pack; the `facilities` layer has Sejong's parks from the national standard data instead."""

from __future__ import annotations

from loaders import transit
from loaders.coords import Coords
from loaders.core import Meta, TableSpec
from loaders.csvload import CsvRecipe, Field
from loaders.recipes import Dataset, columns

TABLE = "public.city_parks"
META = Meta(title="세종시 도시공원 (시 자료) / Sejong urban parks (city list)", licence="KOGL (공공누리)",
            attribution=transit.PUBLISHER)
FIELDS = [
    Field("park_no", "공원 관리번호", required=True),
    Field("name", "공원 명칭", required=True),
    Field("park_type", "공원 구분자 정보"),
    Field("address", "공원 위치 도로명주소정보"),
    Field("address_jibun", "공원 위치 지번주소정보"),
    Field("area_m2", "공원 면적 정보", "number"),
    Field("sports", "공원 보유 시설 중 운동시설"),
    Field("play", "공원 보유 시설 중 유희시설"),
    Field("amenities", "공원 보유 시설 중 편익시설"),
    Field("culture", "공원 보유 시설 중 교양시설"),
    Field("other_facilities", "기타 공원 보유 시설"),
    Field("designated", "공원 지정일자 정보", "date"),
    Field("manager", "공원 관리기관명"),
    Field("phone", "공원 관리기관 전화번호"),
    Field("data_date", "공원 데이터 기준일자", "date"),
]
SPEC = TableSpec(TABLE, columns(FIELDS), "Point", indexes=["park_type"])
RECIPE = CsvRecipe(fields=FIELDS, coords=Coords("공원 위치 경도 좌표정보", "공원 위치 위도 좌표정보", 4326,
                                               latlon=True, dm=False))
DATASETS = [Dataset(SPEC, [transit.ZIP], transit.pack_csv_builder("_도시공원정보", RECIPE), META)]
