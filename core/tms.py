"""Tile matrix sets (OGC TMS 2.0): WebMercatorQuad, WorldCRS84Quad and a Korean UTM-K grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyproj import Transformer

_WM_HALF = 20037508.342789244
_OGC_PIXEL = 0.00028  # metres per pixel in scale denominators


@dataclass(frozen=True)
class TileMatrixSet:
    """A regular tiling scheme: origin top-left, per-zoom cell size, matrix size at zoom 0."""

    id: str
    title: str
    uri: str | None
    crs: str
    srid: int
    origin: tuple[float, float]  # (x, y) = top-left corner, easting/longitude first
    cell_size0: float  # CRS units per pixel at zoom 0
    width0: int
    height0: int
    max_zoom: int
    bounds: tuple[float, float, float, float]  # full extent in CRS units, x/y order
    metres_per_unit: float = 1.0
    northing_first: bool = False
    tile_size: int = 256

    def cell_size(self, z: int) -> float:
        """CRS units per pixel at zoom z."""
        return self.cell_size0 / (2**z)

    def matrix_size(self, z: int) -> tuple[int, int]:
        """(columns, rows) at zoom z."""
        return self.width0 * 2**z, self.height0 * 2**z

    def tile_bounds(self, z: int, row: int, col: int) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of a tile in CRS units."""
        span = self.cell_size(z) * self.tile_size
        minx = self.origin[0] + col * span
        maxy = self.origin[1] - row * span
        return (minx, maxy - span, minx + span, maxy)

    def tile_range(self, z: int, bbox: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
        """(min_row, max_row, min_col, max_col) of tiles covering bbox (CRS units), clipped to the matrix."""
        span = self.cell_size(z) * self.tile_size
        cols, rows = self.matrix_size(z)
        min_col = max(0, math.floor((bbox[0] - self.origin[0]) / span))
        max_col = min(cols - 1, math.floor((bbox[2] - self.origin[0]) / span - 1e-9))
        min_row = max(0, math.floor((self.origin[1] - bbox[3]) / span))
        max_row = min(rows - 1, math.floor((self.origin[1] - bbox[1]) / span - 1e-9))
        if min_col > max_col or min_row > max_row:
            return None
        return (min_row, max_row, min_col, max_col)

    def lonlat_to_crs(self, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A lon/lat bbox in this CRS (x/y order), clipped to the set's bounds."""
        if self.srid == 4326:
            x1, y1, x2, y2 = bbox
        else:
            tr = _transformer(self.srid)
            x1, y1, x2, y2 = tr.transform_bounds(*bbox, densify_pts=21)
        b = self.bounds
        return (max(x1, b[0]), max(y1, b[1]), min(x2, b[2]), min(y2, b[3]))

    def document(self) -> dict[str, Any]:
        """TMS 2.0 JSON."""
        matrices = []
        for z in range(self.max_zoom + 1):
            cols, rows = self.matrix_size(z)
            origin = [self.origin[1], self.origin[0]] if self.northing_first else list(self.origin)
            matrices.append({
                "id": str(z),
                "scaleDenominator": self.cell_size(z) * self.metres_per_unit / _OGC_PIXEL,
                "cellSize": self.cell_size(z),
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": origin,
                "tileWidth": self.tile_size,
                "tileHeight": self.tile_size,
                "matrixWidth": cols,
                "matrixHeight": rows,
            })
        doc: dict[str, Any] = {"id": self.id, "title": self.title, "crs": self.crs, "tileMatrices": matrices}
        if self.uri:
            doc["uri"] = self.uri
        doc["orderedAxes"] = ["N", "E"] if self.northing_first and self.srid != 4326 else (
            ["Lat", "Lon"] if self.srid == 4326 and self.northing_first else
            (["Lon", "Lat"] if self.srid == 4326 else ["E", "N"]))
        return doc


@lru_cache(maxsize=8)
def _transformer(srid: int) -> Transformer:
    return Transformer.from_crs(4326, srid, always_xy=True)


WEB_MERCATOR_QUAD = TileMatrixSet(
    id="WebMercatorQuad", title="Google Maps Compatible for the World",
    uri="http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
    crs="http://www.opengis.net/def/crs/EPSG/0/3857", srid=3857, origin=(-_WM_HALF, _WM_HALF),
    cell_size0=2 * _WM_HALF / 256, width0=1, height0=1, max_zoom=24,
    bounds=(-_WM_HALF, -_WM_HALF, _WM_HALF, _WM_HALF),
)
WORLD_CRS84_QUAD = TileMatrixSet(
    id="WorldCRS84Quad", title="CRS84 for the World",
    uri="http://www.opengis.net/def/tilematrixset/OGC/1.0/WorldCRS84Quad",
    crs="http://www.opengis.net/def/crs/OGC/1.3/CRS84", srid=4326, origin=(-180.0, 90.0),
    cell_size0=180.0 / 256, width0=2, height0=1, max_zoom=22, bounds=(-180.0, -90.0, 180.0, 90.0),
    metres_per_unit=6378137.0 * 2 * math.pi / 360,
)
# UTM-K (EPSG:5179) grid used by Korean national basemaps (NGII): origin (-200000, 4000000), 2088.96 m/px at 0
KOREA_UTMK = TileMatrixSet(
    id="KoreanUTMK", title="Korea UTM-K (EPSG:5179) grid for Korean desktop clients",
    uri=None, crs="http://www.opengis.net/def/crs/EPSG/0/5179", srid=5179, origin=(-200000.0, 4000000.0),
    cell_size0=2088.96, width0=5, height0=6, max_zoom=14,
    bounds=(-200000.0, 4000000.0 - 6 * 534773.76, -200000.0 + 5 * 534773.76, 4000000.0),
    northing_first=True,
)

TILE_MATRIX_SETS = {t.id: t for t in (WEB_MERCATOR_QUAD, WORLD_CRS84_QUAD, KOREA_UTMK)}
