"""Tile matrix sets: the morecantile-backed grids give the same tiles as the definitions they replace."""

from __future__ import annotations

import math

import morecantile
import pytest
from pyproj import Transformer

from core.tms import KOREA_UTMK, TILE_MATRIX_SETS, WEB_MERCATOR_QUAD, WORLD_CRS84_QUAD, TileMatrixSet

CITY_HALL = (127.289, 36.48)  # 세종특별자치시청, lon/lat
WM_HALF = 20037508.342789244
# The previous hand-written definitions: (top-left origin easting/northing, CRS units per pixel at z0, matrix at z0)
PREVIOUS = {
    "WebMercatorQuad": ((-WM_HALF, WM_HALF), 2 * WM_HALF / 256, (1, 1), 24),
    "WorldCRS84Quad": ((-180.0, 90.0), 180.0 / 256, (2, 1), 22),
    "KoreanUTMK": ((-200000.0, 4000000.0), 2088.96, (5, 6), 14),
}


def previous_bounds(tms_id: str, z: int, row: int, col: int) -> tuple[float, float, float, float]:
    """Tile bounds as core/tms.py computed them before morecantile."""
    (ox, oy), cell0, _, _ = PREVIOUS[tms_id]
    span = cell0 / 2**z * 256
    minx, maxy = ox + col * span, oy - row * span
    return (minx, maxy - span, minx + span, maxy)


def sample_tiles(tms: TileMatrixSet) -> list[tuple[int, int, int]]:
    """(z, row, col): the corners of several matrices and the tile of Sejong City Hall at each zoom."""
    out = []
    _, _, _, max_zoom = PREVIOUS[tms.id]
    hall = tms.lonlat_to_crs((*CITY_HALL, *CITY_HALL))
    for z in (0, 1, 5, 8, 12, 14, max_zoom):
        cols, rows = tms.matrix_size(z)
        out += [(z, 0, 0), (z, rows - 1, cols - 1), (z, rows // 2, cols // 3)]
        rng = tms.tile_range(z, hall)
        assert rng is not None and rng[0] == rng[1] and rng[2] == rng[3]
        out.append((z, rng[0], rng[2]))
    return out


@pytest.mark.parametrize("tms_id", list(PREVIOUS))
def test_bounds_are_morecantiles_and_the_previous_ones(tms_id: str) -> None:
    tms = TILE_MATRIX_SETS[tms_id]
    (_, _, (w0, h0), max_zoom) = PREVIOUS[tms_id]
    assert tms.max_zoom >= max_zoom  # every address served before still exists
    for z, row, col in sample_tiles(tms):
        assert tms.matrix_size(z) == (w0 * 2**z, h0 * 2**z)
        got = tms.tile_bounds(z, row, col)
        assert got == tuple(tms.grid.xy_bounds(morecantile.Tile(col, row, z)))
        span = PREVIOUS[tms_id][1] / 2**z * 256
        # WorldCRS84Quad's registry cellSizes are 15-digit decimals: < 1e-6 of a tile off exact powers of two
        assert got == pytest.approx(previous_bounds(tms_id, z, row, col), rel=0, abs=1e-6 * span), (z, row, col)


def test_web_mercator_tile_of_city_hall() -> None:
    lon, lat = CITY_HALL
    n = 2**12
    col = math.floor((lon + 180) / 360 * n)
    row = math.floor((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    assert (col, row) == (3496, 1601)
    assert morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 12) == morecantile.Tile(col, row, 12)
    span = 2 * WM_HALF / n
    expected = (-WM_HALF + col * span, WM_HALF - (row + 1) * span, -WM_HALF + (col + 1) * span, WM_HALF - row * span)
    assert WEB_MERCATOR_QUAD.tile_bounds(12, row, col) == pytest.approx(expected, rel=0, abs=1e-6)
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    x1, y1, x2, y2 = WEB_MERCATOR_QUAD.tile_bounds(12, row, col)
    assert x1 <= x < x2 and y1 < y <= y2


def test_crs84_tile_of_city_hall() -> None:
    lon, lat = CITY_HALL
    col, row = math.floor((lon + 180) / (180 / 2**10)), math.floor((90 - lat) / (180 / 2**10))
    assert WORLD_CRS84_QUAD.tile_range(10, (lon, lat, lon, lat)) == (row, row, col, col)
    x1, y1, x2, y2 = WORLD_CRS84_QUAD.tile_bounds(10, row, col)
    assert x1 <= lon < x2 and y1 < lat <= y2


def test_korean_utmk_is_northing_first_with_the_ngii_origin() -> None:
    """EPSG:5179 names its axes X (north), Y (east): the grid must still read them northing first."""
    doc = KOREA_UTMK.document()
    assert doc["orderedAxes"] == ["N", "E"]
    assert doc["crs"] == "http://www.opengis.net/def/crs/EPSG/0/5179"
    top = doc["tileMatrices"][0]
    assert top["pointOfOrigin"] == [4000000.0, -200000.0]
    assert (top["cellSize"], top["matrixWidth"], top["matrixHeight"]) == (2088.96, 5, 6)
    assert KOREA_UTMK.tile_bounds(0, 0, 0) == (-200000.0, 4000000.0 - 534773.76, -200000.0 + 534773.76, 4000000.0)
    e, n = Transformer.from_crs(4326, 5179, always_xy=True).transform(*CITY_HALL)
    assert 900000 < e < 1000000 and 1800000 < n < 1900000  # UTM-K: easting ~ 1e6, northing ~ 1.8e6 at Sejong
    rng = KOREA_UTMK.tile_range(7, (e, n, e, n))
    assert rng is not None
    x1, y1, x2, y2 = KOREA_UTMK.tile_bounds(7, rng[0], rng[2])
    assert x1 <= e < x2 and y1 < n <= y2


@pytest.mark.parametrize("tms", list(TILE_MATRIX_SETS.values()), ids=list(TILE_MATRIX_SETS))
def test_document_is_tms_2_json(tms: TileMatrixSet) -> None:
    doc = tms.document()
    assert doc["id"] == tms.id and doc["crs"] == tms.crs
    assert [m["id"] for m in doc["tileMatrices"]] == [str(z) for z in range(tms.max_zoom + 1)]
    again = morecantile.TileMatrixSet.model_validate(doc)  # round-trips through the TMS 2.0 model
    tile = morecantile.Tile(3, 2, 5)
    assert again.xy_bounds(tile) == tms.grid.xy_bounds(tile)
    for m in doc["tileMatrices"]:
        assert m["cornerOfOrigin"] == "topLeft" and m["tileWidth"] == m["tileHeight"] == 256
        assert m["scaleDenominator"] == pytest.approx(m["cellSize"] * tms.metres_per_unit / 0.00028, rel=1e-12)
