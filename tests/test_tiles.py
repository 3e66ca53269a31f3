"""OGC API - Tiles: the CITE checklist items, MVT decoding, limits, cache versioning, ETag/304 and gzip."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from pyproj import Transformer
from shapely.geometry import box, shape

from core.config import LayerConfig, load_config
from server import services

REL_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
DATA = load_config().data.path()


def decode(data: bytes) -> dict[str, Any]:
    """Decode an MVT (an empty body is an empty tile)."""
    return mapbox_vector_tile.decode(data) if data else {}


def test_landing_links_to_dataset_tilesets(client: Any) -> None:
    links = client.get("/").get_json()["links"]
    tilesets = [lk for lk in links if lk["rel"].startswith("http://www.opengis.net/def/rel/ogc/1.0/tilesets-")]
    assert tilesets and all("/tiles" in lk["href"] and lk["href"].startswith("http") for lk in tilesets)
    conforms = client.get("/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in conforms


def test_openapi_has_get_tile_operation(client: Any) -> None:
    doc = client.get("/api").get_json()
    ops = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert any(".getTile" in op for op in ops)


def _check_tilesets(client: Any, url: str) -> list[dict[str, Any]]:
    resp = client.get(url)
    assert resp.status_code == 200
    entries = resp.get_json()["tilesets"]
    assert entries
    for entry in entries:
        assert entry["tileMatrixSetId"] and entry["tileMatrixSetLimits"]
        template = next(lk for lk in entry["links"] if lk["rel"] == "item")
        assert all(t in template["href"] for t in ("{tileMatrix}", "{tileRow}", "{tileCol}"))
    return entries


@pytest.mark.parametrize("base", ["/tiles", "/collections/bike_stations/tiles", "/collections/admin_areas/tiles"])
def test_tilesets_limits_are_enforced(client: Any, base: str) -> None:
    for entry in _check_tilesets(client, base):
        tms = entry["tileMatrixSetId"]
        meta = client.get(f"{base}/{tms}").get_json()
        self_link = next(lk for lk in meta["links"] if lk["rel"] == "self")
        assert self_link["type"] == "application/json"
        lim = meta["tileMatrixSetLimits"][0]
        z, row, col = lim["tileMatrix"], lim["maxTileRow"], lim["minTileCol"]
        assert client.get(f"{base}/{tms}/{z}/{row}/{col}").status_code in (200, 204)
        assert client.get(f"{base}/{tms}/{z}/{row + 1}/{col}").status_code in (400, 404)
        assert client.get(f"{base}/{tms}/{z}/{row}/{lim['maxTileCol'] + 1}").status_code in (400, 404)
        assert client.get(f"{base}/{tms}/{z}/2147483647/2147483647").status_code in (400, 404)
        assert client.get(f"{base}/{tms}/99/0/0").status_code in (400, 404)


def test_every_tile_in_range_is_200(client: Any) -> None:
    meta = client.get("/collections/admin_areas/tiles/WebMercatorQuad").get_json()
    lim = next(x for x in meta["tileMatrixSetLimits"] if x["tileMatrix"] == "10")
    for row in range(lim["minTileRow"], lim["maxTileRow"] + 1):
        for col in range(lim["minTileCol"], lim["maxTileCol"] + 1):
            resp = client.get(f"/collections/admin_areas/tiles/WebMercatorQuad/10/{row}/{col}")
            assert resp.status_code == 200
            assert resp.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
            decode(resp.get_data())  # valid MVT or empty


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    half = 20037508.342789244
    span = 2 * half / 2**z
    return int((half - y) // span), int((x + half) // span)


def test_dataset_tile_carries_all_layers(client: Any) -> None:
    row, col = _tile_of(127.289, 36.48, 12)  # Sejong City Hall
    tile = decode(client.get(f"/tiles/WebMercatorQuad/12/{row}/{col}").get_data())
    assert {"bike_stations", "admin_areas", "facilities", "street_lights"} <= set(tile)
    assert all(layer["extent"] == 4096 and layer["features"] for layer in tile.values())
    only = decode(client.get(f"/tiles/WebMercatorQuad/12/{row}/{col}?collections=bike_stations").get_data())
    assert set(only) == {"bike_stations"}
    assert client.get(f"/tiles/WebMercatorQuad/12/{row}/{col}?collections=nope").status_code == 400


def test_tile_features_match_items_bbox(client: Any) -> None:
    """The same features come out of tiles and items: tile ids ⊆ items in the tile's bbox (+ buffer)."""
    z = 14
    row, col = _tile_of(127.2890, 36.4800, z)
    resp = client.get(f"/collections/bike_stations/tiles/WebMercatorQuad/{z}/{row}/{col}")
    tile = decode(resp.get_data())["bike_stations"]
    ids = {f["id"] for f in tile["features"]}
    assert ids
    inv = Transformer.from_crs(3857, 4326, always_xy=True)
    half = 20037508.342789244
    span = 2 * half / 2**z
    buf = span * 64 / 4096
    x1, y2 = -half + col * span - buf, half - row * span + buf
    x2, y1 = x1 + span + 2 * buf, y2 - span - 2 * buf
    w, s, e, n = inv.transform_bounds(x1, y1, x2, y2)
    items = client.get(f"/collections/bike_stations/items?bbox={w},{s},{e},{n}&limit=1000").get_json()
    assert ids <= {f["id"] for f in items["features"]}
    feat = tile["features"][0]
    one = client.get(f"/collections/bike_stations/items/{feat['id']}").get_json()
    assert feat["properties"]["name"] == one["properties"]["name"]


def test_filter_on_tiles_uses_feature_filter(client: Any) -> None:
    row, col = _tile_of(127.289, 36.48, 12)
    url = f"/collections/facilities/tiles/WebMercatorQuad/12/{row}/{col}"
    everything = decode(client.get(url).get_data())["facilities"]["features"]
    libraries = decode(client.get(url + "?filter=kind%3D'library'").get_data()).get("facilities", {"features": []})
    kinds = {f["properties"]["kind"] for f in libraries["features"]}
    assert kinds <= {"library"} and len(libraries["features"]) < len(everything)
    assert client.get(url + "?filter=nosuch%3D1").status_code == 400


def test_empty_tile_is_200_empty(client: Any) -> None:
    meta = client.get("/collections/bike_stations/tiles/WebMercatorQuad").get_json()
    lim = meta["tileMatrixSetLimits"][-1]  # highest zoom: most tiles are empty
    resp = client.get(f"/collections/bike_stations/tiles/WebMercatorQuad/{lim['tileMatrix']}/"
                      f"{lim['minTileRow']}/{lim['minTileCol']}")
    assert resp.status_code == 200 and resp.get_data() == b""


def test_etag_304_and_gzip(client: Any) -> None:
    row, col = _tile_of(127.289, 36.48, 12)
    url = f"/tiles/WebMercatorQuad/12/{row}/{col}"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.get_data()) == first.get_data()


def test_other_tile_matrix_sets(client: Any) -> None:
    for tms in ("WorldCRS84Quad", "KoreanUTMK"):
        doc = client.get(f"/tileMatrixSets/{tms}").get_json()
        assert doc["tileMatrices"] and doc["crs"]
        meta = client.get(f"/collections/admin_areas/tiles/{tms}").get_json()
        lim = next(x for x in meta["tileMatrixSetLimits"] if x["tileMatrix"] == "7")
        got = 0
        for row in range(lim["minTileRow"], lim["maxTileRow"] + 1):
            for col in range(lim["minTileCol"], lim["maxTileCol"] + 1):
                data = client.get(f"/collections/admin_areas/tiles/{tms}/{lim['tileMatrix']}/{row}/{col}").get_data()
                got += len(decode(data).get("admin_areas", {"features": []})["features"])
        assert got > 0, tms


def test_tilejson(client: Any) -> None:
    doc = client.get("/tilejson.json").get_json()
    assert doc["tilejson"] == "3.0.0" and doc["tiles"][0].startswith("http")
    assert {v["id"] for v in doc["vector_layers"]} >= {"bike_stations", "admin_areas"}
    assert "KOGL" in doc["attribution"]


def test_reload_invalidates_cached_tiles(dsn: str, tmp_path: Path) -> None:
    """Load, fetch, reload changed data, fetch: the new content (the cache keys on the catalog's data version)."""
    from server.app import create_app

    src = DATA / "korea" / "bike-stations" / "전국자전거대여소표준데이터.csv"

    def load(region: str) -> None:
        cmd = [sys.executable, "-m", "loaders", "csv", str(src), "--table", "public.tile_reload_test",
               "--where", f"제공기관명={region}", "--replace", "--dsn", dsn]  # Daejeon has fewer stations
        subprocess.run(cmd, check=True, capture_output=True)

    cfg = load_config()
    layers = dict(cfg.layers)
    layers["tile_reload_test"] = LayerConfig.model_validate({
        "title": {"ko": "시험", "en": "test"}, "description": {"ko": "시험", "en": "test"},
        "table": "public.tile_reload_test", "tiles": {"minzoom": 5, "maxzoom": 16}})
    app = create_app(cfg.model_copy(update={"layers": layers}), dsn=dsn)
    client = app.test_client()
    load("세종특별자치시")
    services.of(app).registry.refresh()
    row, col = _tile_of(127.289, 36.48, 8)
    url = f"/collections/tile_reload_test/tiles/WebMercatorQuad/8/{row}/{col}"
    before = decode(client.get(url).get_data())["tile_reload_test"]["features"]
    assert len(before) > 600
    load("대전광역시")  # Daejeon's 타슈 stations: same tile at z8, other features
    after = decode(client.get(url).get_data())["tile_reload_test"]["features"]
    assert len(after) != len(before)
    names_after = {f["properties"].get("자전거대여소명") or f["properties"].get("name") for f in after}
    names_before = {f["properties"].get("자전거대여소명") or f["properties"].get("name") for f in before}
    assert not names_after & names_before
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE public.tile_reload_test")
        cur.execute("DELETE FROM meta.datasets WHERE table_name = 'public.tile_reload_test'")


def test_polygon_tile_geometry_is_generalised_but_placed(client: Any) -> None:
    row, col = _tile_of(127.289, 36.48, 9)
    tile = decode(client.get(f"/collections/admin_areas/tiles/WebMercatorQuad/9/{row}/{col}").get_data())
    feats = tile["admin_areas"]["features"]
    assert len(feats) >= 10
    assert all(shape(f["geometry"]).intersects(box(-64, -64, 4160, 4160)) for f in feats)


def test_properties_by_zoom(client: Any) -> None:
    """config.yml: street lights carry only lamp_type (and id) below z15, every property from z15."""
    tiles = {}
    for z in (13, 15):
        row, col = _tile_of(127.289, 36.48, z)
        feats = decode(client.get(f"/collections/street_lights/tiles/WebMercatorQuad/{z}/{row}/{col}").get_data())
        tiles[z] = feats["street_lights"]["features"]
    assert tiles[13] and tiles[15]
    assert {k for f in tiles[13] for k in f["properties"]} <= {"id", "lamp_type"}
    assert {"location", "address_jibun"} <= {k for f in tiles[15] for k in f["properties"]}
