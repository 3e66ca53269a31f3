"""Dataset air_quality: AirKorea stations (530) and the view public.air_quality_latest (latest reading + grades)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from loaders import crs
from loaders.core import Meta, RowStats
from loaders.datasets import air_quality_tables as tables
from loaders.readings import parse_stations_js
from loaders.recipes import Dataset
from loaders.vector import read_vector

FILE = "korea/airkorea-stations/airKoreaStations.js"
SGG_FILE = "korea/boundaries-kostat-2018/skorea-municipalities-2018-topo-simple.json"
TABLE = "public.air_quality_stations"
VIEW = "public.air_quality_latest"
META = Meta(
    title="대기질 측정소 (에어코리아) / AirKorea stations",
    licence="KOGL Type 1 (station data, 한국환경공단 에어코리아); file MIT (github.com/minseok-lab/NicePlab)",
    attribution="© 한국환경공단 에어코리아 측정소정보 (KOGL 제1유형), via github.com/minseok-lab/NicePlab (MIT)",
)
# KOSTAT 2018 시도 code prefixes -> 시도 names
SIDO = {"11": "서울특별시", "21": "부산광역시", "22": "대구광역시", "23": "인천광역시",
        "24": "광주광역시", "25": "대전광역시", "26": "울산광역시", "29": "세종특별자치시",
        "31": "경기도", "32": "강원도", "33": "충청북도", "34": "충청남도", "35": "전라북도",
        "36": "전라남도", "37": "경상북도", "38": "경상남도", "39": "제주특별자치도"}
SPEC = tables.STATIONS


def _locate(lon: np.ndarray, lat: np.ndarray, data_dir: Path) -> list[tuple[str | None, str | None]]:
    """(시도, 시군구) per point from the KOSTAT 2018 시군구 polygons (nearest polygon when on the coast)."""
    path = data_dir / SGG_FILE
    if not path.exists():
        return [(None, None)] * len(lon)
    frame = read_vector(path, label=SGG_FILE, multi=False).frame
    gx, gy = crs.transform(lon, lat, 4326, crs.STORAGE_SRID)
    pts = shapely.points(gx, gy)
    tree = shapely.STRtree(frame.geometry.values)
    idx = tree.query_nearest(pts, all_matches=False)[1]
    codes = frame["code"].astype(str).to_numpy()[idx]
    names = frame["name"].astype(str).to_numpy()[idx]
    return [(SIDO.get(c[:2]), n) for c, n in zip(codes, names, strict=True)]


def rows(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Station rows (id = position in the file)."""
    stations = parse_stations_js(data_dir / FILE, FILE)
    lat = np.array([s[1] for s in stations])
    lon = np.array([s[2] for s in stations])
    crs.check_in_korea(lon, lat, 4326, FILE, "lat/lon")
    gx, gy = crs.transform(lon, lat, 4326, crs.STORAGE_SRID)
    where = _locate(lon, lat, data_dir)
    for i, ((name, la, lo), x, y, (sido, sgg)) in enumerate(zip(stations, gx, gy, where, strict=True), start=1):
        yield {"id": i, "name": name, "sido": sido, "sgg": sgg, "lat": la, "lon": lo,
               "geom": f"SRID={crs.STORAGE_SRID};POINT({x:.3f} {y:.3f})"}
    stats.per_source[FILE] = len(stations)


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Bundled builder."""
    return rows(data_dir, stats)


DATASETS = [Dataset(SPEC, [FILE, SGG_FILE], build, META, after=tables.ensure_views)]
