"""Coordinate reference systems we serve (OGC API Features Part 2), with each CRS's own axis order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pyproj import CRS, Transformer

from core.errors import InvalidParameterValue

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
SUPPORTED_EPSG = (4326, 3857, 5179, 5186, 5174, 5181)
STORAGE_SRID = 5186  # Korea 2000 / Central Belt 2010 (metres): every table the loaders write


@dataclass(frozen=True)
class CrsInfo:
    """A served CRS: its URI, the SRID PostGIS uses, and whether the first axis is northing/latitude."""

    uri: str
    srid: int
    northing_first: bool
    geographic: bool

    @property
    def decimals(self) -> int:
        """Coordinate decimals that keep centimetre precision."""
        return 7 if self.geographic else 2


def epsg_uri(code: int) -> str:
    """OGC URI of an EPSG code."""
    return _EPSG_URI.format(code=code)


@lru_cache(maxsize=32)
def crs_info(srid: int, uri: str | None = None) -> CrsInfo:
    """CrsInfo for an EPSG code (axis order read from the EPSG definition by pyproj)."""
    crs = CRS.from_epsg(srid)
    first = crs.axis_info[0].direction.lower() if crs.axis_info else "east"
    return CrsInfo(uri=uri or epsg_uri(srid), srid=srid, northing_first=first in ("north", "south"),
                   geographic=crs.is_geographic)


def crs84() -> CrsInfo:
    """OGC CRS84: WGS 84 in longitude, latitude order."""
    return CrsInfo(uri=CRS84, srid=4326, northing_first=False, geographic=True)


def supported(storage_srid: int) -> list[CrsInfo]:
    """CRSs offered for every collection: CRS84 first, then the EPSG list (storage CRS included)."""
    codes = list(SUPPORTED_EPSG)
    if storage_srid not in codes:
        codes.append(storage_srid)
    return [crs84(), *[crs_info(c) for c in codes]]


_URI_RE = re.compile(r"^(?:https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)|\[?EPSG:(\d+)\]?)$", re.I)


def parse_crs(value: str, storage_srid: int, param: str = "crs") -> CrsInfo:
    """Parse a crs/bbox-crs parameter: only the supported URIs (or their [EPSG:n] CURIEs)."""
    value = value.strip()
    if value in (CRS84, "[OGC:CRS84]", "OGC:CRS84"):
        return crs84()
    match = _URI_RE.match(value)
    if match:
        code = int(match.group(1) or match.group(2))
        if code in SUPPORTED_EPSG or code == storage_srid:
            return crs_info(code)
    offered = ", ".join(c.uri for c in supported(storage_srid))
    raise InvalidParameterValue(f"{param} {value!r} is not supported; use one of: {offered}")


@lru_cache(maxsize=64)
def _to_lonlat(srid: int) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(srid), CRS.from_epsg(4326), always_xy=True)


@lru_cache(maxsize=16)
def area_of_use(srid: int) -> tuple[float, float, float, float]:
    """Lon/lat bounds in which a CRS is valid (world for global CRSs)."""
    aou = CRS.from_epsg(srid).area_of_use
    if aou is None:
        return (-180.0, -90.0, 180.0, 90.0)
    return (aou.west, aou.south, aou.east, aou.north)


def bbox_to_lonlat(bbox: tuple[float, float, float, float], crs: CrsInfo) -> tuple[float, float, float, float]:
    """A bbox given in crs (in that CRS's axis order) as lon/lat bounds (minx may exceed maxx at the antimeridian)."""
    a, b, c, d = bbox
    if crs.northing_first:
        a, b, c, d = b, a, d, c
    if crs.srid == 4326:
        return (a, b, c, d)
    west, south, east, north = _to_lonlat(crs.srid).transform_bounds(a, b, c, d, densify_pts=21)
    return (max(west, -180.0), max(south, -90.0), min(east, 180.0), min(north, 90.0))
