"""OGC API - Coverages and PNG map tiles of the air-quality surfaces, checked against the COG files with rasterio."""

from __future__ import annotations

import io
from typing import Any

import morecantile
import numpy as np
import pytest
import rasterio
from db_helpers import query
from PIL import Image
from pyproj import Transformer
from rasterio.io import MemoryFile

# the grade bands and colours, written out here (PM10: 좋음 <=30, 보통 <=80, 나쁨 <=150, 매우나쁨 above)
PM10_COLOURS = [(30, (0x1E, 0x6F, 0xD9)), (80, (0x2E, 0x9E, 0x44)), (150, (0xF2, 0x92, 0x00)),
                (float("inf"), (0xD7, 0x26, 0x1E))]


def expected_colour(value: float) -> tuple[int, int, int]:
    """The PM10 grade colour of a value."""
    return next(c for top, c in PM10_COLOURS if value <= top)


@pytest.fixture(scope="module")
def newest(dsn: str, loaded: dict[str, int]) -> dict[str, Any]:
    """The newest pm10_seoul surface: its day, path, values and transform (read from the COG itself)."""
    (day, path), *_ = query(dsn, "SELECT (valid_at AT TIME ZONE 'Asia/Seoul')::date, path FROM meta.surfaces "
                                 "WHERE collection_id = 'pm10_seoul' ORDER BY valid_at DESC LIMIT 1")
    with rasterio.open(path) as ds:
        return {"day": day, "path": path, "values": ds.read(1), "transform": ds.transform, "nodata": ds.nodata}


def open_tiff(data: bytes) -> tuple[Any, np.ndarray, Any]:
    """CRS, values and transform of a GeoTIFF body."""
    with MemoryFile(data) as mem, mem.open() as ds:
        return ds.crs, ds.read(1), ds.transform


def test_surface_collection_describes_method_and_validation(client: Any) -> None:
    one = client.get("/collections/pm10_seoul")
    assert one.status_code == 200
    doc = one.get_json()
    assert doc["storageCrs"].endswith("/5186") and doc["dataType"] == "coverage"
    surface = doc["surface"]
    assert set(surface["validation"]["pooled"]) == {"idw", "kriging", "nearest"}
    assert surface["method"] == min(surface["validation"]["pooled"],
                                    key=lambda m: surface["validation"]["pooled"][m]["rmse"])
    assert "RMSE" in doc["description"] and [g["ko"] for g in surface["legend"]] == ["좋음", "보통", "나쁨", "매우나쁨"]
    assert client.get("/collections/pm10_seoul?bogus=1").status_code == 400


def test_coverage_geotiff_has_crs_transform_and_values(client: Any, newest: dict[str, Any]) -> None:
    r = client.get("/collections/pm10_seoul/coverage?f=tif")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/tiff")
    crs, values, transform = open_tiff(r.data)
    assert crs.to_epsg() == 5186
    assert transform == newest["transform"]
    assert np.array_equal(values, newest["values"])
    assert r.headers["X-Surface-Date"] == newest["day"].isoformat()


def test_coverage_subset_and_bbox(client: Any, newest: dict[str, Any]) -> None:
    t = newest["transform"]
    x0, y1 = t.c + 100 * t.a, t.f + 80 * t.e  # cell (row 80, col 100) is the subset's top-left
    r = client.get(f"/collections/pm10_seoul/coverage?subset=E({x0 + 1}:{x0 + 3000}),N({y1 - 2000}:{y1 - 1})"
                   f"&datetime={newest['day']}")
    assert r.status_code == 200
    _, values, transform = open_tiff(r.data)
    assert (transform.c, transform.f) == (x0, y1)
    assert np.array_equal(values, newest["values"][80:100, 100:130])
    lon, lat = Transformer.from_crs(5186, 4326, always_xy=True).transform(x0 + 50, y1 - 50)
    r = client.get(f"/collections/pm10_seoul/coverage?bbox={lon},{lat},{lon + 0.01},{lat + 0.01}")
    _, values, transform = open_tiff(r.data)
    col, row = ~newest["transform"] @ (transform.c, transform.f)
    assert np.array_equal(values, newest["values"][int(row):int(row) + values.shape[0],
                                                   int(col):int(col) + values.shape[1]])


@pytest.mark.parametrize(("query_string", "status"), [
    ("subset=E(0:10)", 400), ("subset=Q(1:2)", 400), ("subset=E(a:b)", 400), ("datetime=yesterday", 400),
    ("datetime=1999-01-01", 404), ("f=jpeg", 400), ("bogus=1", 400), ("bbox=1,2,3", 400),
])
def test_coverage_errors_are_ogc_json(client: Any, query_string: str, status: int) -> None:
    r = client.get(f"/collections/pm10_seoul/coverage?{query_string}")
    assert r.status_code == status and r.get_json()["code"]
    assert client.get("/collections/no_such_surface/coverage").status_code == 404


def test_domainset_and_rangetype(client: Any, newest: dict[str, Any]) -> None:
    dom = client.get("/collections/pm10_seoul/coverage/domainset").get_json()["generalGrid"]
    e_axis = dom["axis"][0]
    assert e_axis["lowerBound"] == newest["transform"].c and e_axis["resolution"] == newest["transform"].a
    assert dom["axis"][2]["coordinate"][-1] == newest["day"].isoformat()
    assert dom["gridLimits"]["axis"][0]["upperBound"] == newest["values"].shape[1] - 1
    rng = client.get("/collections/pm10_seoul/coverage/rangetype").get_json()
    assert rng["field"][0]["nilValues"][0]["value"] == -9999


def test_png_tile_decodes_to_grade_colours(client: Any, newest: dict[str, Any]) -> None:
    tms = morecantile.tms.get("WebMercatorQuad")
    t = newest["transform"]
    z = 12
    to_merc = Transformer.from_crs(5186, 3857, always_xy=True)
    to_5186 = Transformer.from_crs(3857, 5186, always_xy=True)
    cx, cy = to_merc.transform(t.c + 190 * t.a, t.f + 170 * t.e)  # the middle of Seoul
    tile = tms._tile(cx, cy, z)
    r = client.get(f"/collections/pm10_seoul/map/tiles/WebMercatorQuad/{z}/{tile.y}/{tile.x}")
    assert r.status_code == 200 and r.mimetype == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.data)).convert("RGBA"))
    b = tms.xy_bounds(tile)
    size = (b.right - b.left) / 256
    checked = 0
    for py in range(8, 256, 16):
        for px in range(8, 256, 16):
            x, y = to_5186.transform(b.left + (px + 0.5) * size, b.top - (py + 0.5) * size)
            col, row = ~t @ (x, y)
            if min(col % 1, 1 - col % 1, row % 1, 1 - row % 1) < 0.1:
                continue  # too near a cell edge to say which cell the pixel samples
            value = newest["values"][int(row), int(col)]
            if value == newest["nodata"]:
                assert img[py, px, 3] == 0
            else:
                assert tuple(img[py, px, :3]) == expected_colour(float(value)), (px, py, value)
                assert img[py, px, 3] > 0
            checked += 1
    assert checked > 100
    etag = r.headers["ETag"]
    again = client.get(f"/collections/pm10_seoul/map/tiles/WebMercatorQuad/{z}/{tile.y}/{tile.x}",
                       headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_tile_outside_and_unknown_sets(client: Any) -> None:
    far = client.get("/collections/pm10_seoul/map/tiles/WebMercatorQuad/10/0/0")
    assert far.status_code == 200
    assert np.asarray(Image.open(io.BytesIO(far.data)).convert("RGBA"))[..., 3].max() == 0
    assert client.get("/collections/pm10_seoul/map/tiles/NoSuchTMS/1/0/0").status_code == 404
    assert client.get("/collections/pm10_seoul/map/tiles/WebMercatorQuad/3/99/0").status_code == 404
    assert client.get("/collections/pm10_seoul/map/tiles").get_json()["tilesets"]


def test_position_is_an_estimate_beside_the_nearest_station(client: Any, dsn: str, newest: dict[str, Any]) -> None:
    (lon, lat, name, measured), *_ = query(
        dsn, "SELECT s.lon, s.lat, s.name, r.pm10::float8 FROM public.air_quality_stations s "
             "JOIN public.air_quality_readings r ON r.station_name = s.name AND r.period = 'day' "
             "WHERE s.name = '중구' AND s.sido = '서울특별시' AND (r.measured_at AT TIME ZONE 'Asia/Seoul')::date = %s",
        (newest["day"],))
    r = client.get(f"/collections/pm10_seoul/position?coords=POINT({lon} {lat})")
    assert r.status_code == 200
    props = r.get_json()["properties"]
    assert props["estimated"] is True and props["date"] == newest["day"].isoformat()
    x, y = Transformer.from_crs(4326, 5186, always_xy=True).transform(lon, lat)
    col, row = ~newest["transform"] @ (x, y)
    assert props["estimate"] == round(float(newest["values"][int(row), int(col)]), 1)
    assert props["nearest_station"]["name"] == name and props["nearest_station"]["distance_m"] == 0
    assert props["nearest_station"]["value"] == round(measured, 1)
    far = client.get("/collections/pm10_seoul/position?coords=POINT(127.289 36.48)").get_json()["properties"]
    assert far["estimate"] is None and far["reason"] == "outside the surface"  # Sejong City Hall
    assert client.get("/collections/pm10_seoul/position?coords=POINT(x y)").status_code == 400


def test_surface_collection_html_page(client: Any) -> None:
    doc = client.get("/collections/pm10_seoul?f=json").get_json()
    r = client.get("/collections/pm10_seoul?f=html")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert f"<h1>{doc['title']}</h1>" in page and "교차검증" in page
    for method, v in doc["surface"]["validation"]["pooled"].items():
        assert f'<tr data-method="{method}"><td>{method}' in page
        assert f"<td>{v['rmse']}</td><td>{v['mae']}</td>" in page
    assert page.count("<li><a ") == len(doc["extent"]["temporal"]["values"])
    assert "/collections/pm10_seoul/coverage?f=tif" in page
    en = client.get("/collections/pm10_seoul?f=html&lang=en").get_data(as_text=True)
    assert "Cross-validation" in en
    assert client.get("/collections/pm10_seoul?f=xml").status_code == 400
