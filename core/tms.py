"""Tile matrix sets (OGC TMS 2.0): WebMercatorQuad, WorldCRS84Quad and a Korean UTM-K grid, built with morecantile.

morecantile (the grid library of titiler/tipg) holds the definitions, the tile bounds and the served TMS 2.0 JSON;
`TileMatrixSet` below is the small facade the server and the SQL builders use (ids, PostGIS SRID, row/col order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import morecantile
from morecantile.utils import meters_per_unit
from pyproj import CRS, Transformer


@dataclass(frozen=True, eq=False)
class TileMatrixSet:
    """A morecantile grid plus what it does not carry: the PostGIS SRID of its CRS (CRS84 is 4326 there)."""

    grid: morecantile.TileMatrixSet
    srid: int
    metres_per_unit: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metres_per_unit", meters_per_unit(self.grid.crs._pyproj_crs))

    @property
    def id(self) -> str:
        """Identifier, as in /tileMatrixSets/{id}."""
        return str(self.grid.id)

    @property
    def title(self) -> str:
        """Human title."""
        return str(self.grid.title or self.grid.id)

    @property
    def uri(self) -> str | None:
        """The OGC registered URI, for the well-known sets only."""
        return str(self.grid.uri) if self.grid.uri else None

    @property
    def crs(self) -> str:
        """CRS URI."""
        return str(self.grid.crs.root)

    @property
    def max_zoom(self) -> int:
        """Deepest tile matrix."""
        return int(self.grid.maxzoom)

    @property
    def tile_size(self) -> int:
        """Tile width (= height) in pixels."""
        return int(self.grid.matrix(0).tileWidth)

    @property
    def northing_first(self) -> bool:
        """Whether the CRS lists northing (latitude) first, as pointOfOrigin in the document does."""
        return bool(self.grid._invert_axis)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Full extent in CRS units, x/y (easting first) order."""
        b = self.grid.xy_bbox
        return (b.left, b.bottom, b.right, b.top)

    @property
    def origin(self) -> tuple[float, float]:
        """Top-left corner, easting first."""
        return (self.bounds[0], self.bounds[3])

    def cell_size(self, z: int) -> float:
        """CRS units per pixel at zoom z."""
        return float(self.grid.matrix(z).cellSize)

    def matrix_size(self, z: int) -> tuple[int, int]:
        """(columns, rows) at zoom z."""
        m = self.grid.matrix(z)
        return int(m.matrixWidth), int(m.matrixHeight)

    def tile_bounds(self, z: int, row: int, col: int) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of a tile in CRS units, easting first."""
        b = self.grid.xy_bounds(morecantile.Tile(col, row, z))
        return (b.left, b.bottom, b.right, b.top)

    def tile_range(self, z: int, bbox: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
        """(min_row, max_row, min_col, max_col) of tiles covering bbox (CRS units), clipped to the matrix.

        Not morecantile's `tiles()`: that takes a lon/lat box and re-projects it corner by corner, while the
        callers hold a densified CRS box already (its `_tile` for CRS coordinates is private).
        """
        span = self.cell_size(z) * self.tile_size
        cols, rows = self.matrix_size(z)
        ox, oy = self.origin
        min_col = max(0, math.floor((bbox[0] - ox) / span))
        max_col = min(cols - 1, math.floor((bbox[2] - ox) / span - 1e-9))
        min_row = max(0, math.floor((oy - bbox[3]) / span))
        max_row = min(rows - 1, math.floor((oy - bbox[1]) / span - 1e-9))
        if min_col > max_col or min_row > max_row:
            return None
        return (min_row, max_row, min_col, max_col)

    def lonlat_to_crs(self, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A lon/lat bbox in this CRS (x/y order), clipped to the set's bounds.

        pyproj directly: morecantile only projects points (`xy`), and a box needs densified edges.
        """
        if self.srid == 4326:
            x1, y1, x2, y2 = bbox
        else:
            x1, y1, x2, y2 = _transformer(self.srid).transform_bounds(*bbox, densify_pts=21)
        b = self.bounds
        return (max(x1, b[0]), max(y1, b[1]), min(x2, b[2]), min(y2, b[3]))

    def document(self) -> dict[str, Any]:
        """TMS 2.0 JSON, as morecantile models it."""
        doc: dict[str, Any] = self.grid.model_dump(mode="json", exclude_none=True)
        return doc


@lru_cache(maxsize=8)
def _transformer(srid: int) -> Transformer:
    return Transformer.from_crs(4326, srid, always_xy=True)


WEB_MERCATOR_QUAD = TileMatrixSet(morecantile.tms.get("WebMercatorQuad"), srid=3857)
# morecantile's WorldCRS84Quad goes to zoom 23 (the OGC registry's definition); its cellSize values are the
# registry's 15-digit decimals, so bounds differ from exact powers of two by < 1e-6 of a tile (~1e-11 degrees).
WORLD_CRS84_QUAD = TileMatrixSet(morecantile.tms.get("WorldCRS84Quad"), srid=4326)

# UTM-K (EPSG:5179) grid used by Korean national basemaps (NGII): origin (E -200000, N 4000000), 2088.96 m/px at
# zoom 0, 5 x 6 tiles. EPSG:5179 lists northing first but names its axes "X" (north) and "Y" (east), which
# morecantile's axis check reads as easting first; so the order is given explicitly. `ordered_axes` sets the
# pointOfOrigin order, `orderedAxes` is stored on the model (custom() does not store the former; morecantile 7.1).
_UTMK_SPAN = 256 * 2088.96
KOREA_UTMK = TileMatrixSet(
    morecantile.TileMatrixSet.custom(
        [-200000.0, 4000000.0 - 6 * _UTMK_SPAN, -200000.0 + 5 * _UTMK_SPAN, 4000000.0], CRS.from_epsg(5179),
        matrix_scale=[5, 6], minzoom=0, maxzoom=14, id="KoreanUTMK",
        title="Korea UTM-K (EPSG:5179) grid for Korean desktop clients",
        ordered_axes=["N", "E"], orderedAxes=["N", "E"],
    ),
    srid=5179,
)

TILE_MATRIX_SETS = {t.id: t for t in (WEB_MERCATOR_QUAD, WORLD_CRS84_QUAD, KOREA_UTMK)}
