"""MapLibre styles: valid under gl-style-validate, every URL on our host, every source-layer in our tiles."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest

from server import assets, services, styles_api

REPO = Path(__file__).resolve().parent.parent
STYLE_FILES = sorted((REPO / "styles").glob("*.json"))
LAYER_STYLES = {"admin_areas", "air_quality", "bike_stations", "buildings", "bus_routes", "bus_stops", "cctv",
                "city_parks", "emd_2018", "facilities", "fuel_stations", "land", "legal_dong", "population",
                "public_institutions", "roads", "street_lights"}


@pytest.fixture(scope="module")
def sclient(dsn: str, loaded: dict[str, int]) -> Iterator[Any]:
    """A Flask client with the styles and map blueprints (registered here if the app does not yet)."""
    from server import maps
    from server.app import create_app

    application = create_app(dsn=dsn)
    for bp in (styles_api.BP, maps.BP):
        if bp.name not in application.blueprints:
            application.register_blueprint(bp)
    application.config["TESTING"] = True
    yield application.test_client()


@pytest.fixture(scope="module")
def validator() -> Path:
    assets.ensure_npm(REPO)
    return assets.assets_dir(REPO) / "node_modules" / ".bin" / "gl-style-validate"


def _base(client: Any) -> str:
    return str(services.of(client.application).config.server.url)


def test_every_layer_has_a_style() -> None:
    assert {p.stem for p in STYLE_FILES} == LAYER_STYLES | {"default"}


@pytest.mark.parametrize("path", STYLE_FILES, ids=lambda p: p.stem)
def test_style_file_validates(path: Path, validator: Path) -> None:
    res = subprocess.run([str(validator), str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_validator_rejects_a_bad_style(tmp_path: Path, validator: Path) -> None:
    bad = json.loads(STYLE_FILES[0].read_text())
    bad["layers"][0]["source"] = "nope"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = subprocess.run([str(validator), str(tmp_path / "bad.json")], capture_output=True, text=True, check=False)
    assert res.returncode != 0


def test_served_styles_validate_and_stay_on_our_host(sclient: Any, validator: Path, tmp_path: Path) -> None:
    base = _base(sclient)
    listing = sclient.get("/styles").get_json()
    ids = [s["id"] for s in listing["styles"]]
    assert ids[0] == "default" and "bike_stations" in ids
    assert "land" not in ids or sclient.get("/collections/land").status_code == 200
    for sid in ids:
        r = sclient.get(f"/styles/{sid}")
        assert r.status_code == 200 and r.mimetype == styles_api.STYLE_JSON
        assert "{{BASE}}" not in r.get_data(as_text=True)
        doc = r.get_json()
        (tmp_path / f"{sid}.json").write_text(json.dumps(doc))
        res = subprocess.run([str(validator), str(tmp_path / f"{sid}.json")], capture_output=True, text=True,
                             check=False)
        assert res.returncode == 0, res.stdout
        assert doc["glyphs"].startswith(base + "/fonts/")
        assert "sprite" not in doc
        for src in doc["sources"].values():
            for url in [src.get("url"), *src.get("tiles", [])]:
                if url:
                    assert url.startswith(base + "/"), url
        assert doc["layers"], sid
        assert sclient.get(f"/styles/{sid}?f=html").status_code == 200
    assert sclient.get("/styles/nope").status_code == 404
    assert sclient.get("/styles/..%2Fconfig").status_code == 404


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_every_source_layer_is_in_our_tiles(sclient: Any) -> None:
    base = _base(sclient)
    doc = sclient.get("/styles/default").get_json()
    src = doc["sources"]["sejong"]
    assert src["url"] == f"{base}/tilejson.json"
    tilejson = sclient.get("/tilejson.json").get_json()
    vector_layers = {v["id"]: v for v in tilejson["vector_layers"]}
    labels = {lyr["source-layer"] for lyr in doc["layers"] if lyr.get("source-layer", "").endswith("_label")}
    assert labels <= {v for v in vector_layers if v.endswith("_label")}, labels  # tiles: {labels: true}
    source_layers = {lyr["source-layer"] for lyr in doc["layers"] if "source-layer" in lyr} - labels
    assert source_layers <= set(vector_layers), source_layers - set(vector_layers)
    assert {"bike_stations", "air_quality", "admin_areas", "facilities"} <= source_layers
    for layer_id in sorted(source_layers):
        feats = sclient.get(f"/collections/{layer_id}/items?limit=1").get_json()["features"]
        coords: Any = feats[0]["geometry"]["coordinates"]
        while isinstance(coords[0], list):
            coords = coords[0]
        z = max(14, int(vector_layers[layer_id].get("minzoom", 0)))
        x, y = _tile_of(coords[0], coords[1], z)
        r = sclient.get(f"/tiles/WebMercatorQuad/{z}/{y}/{x}")
        assert r.status_code == 200
        tile = mapbox_vector_tile.decode(r.data)
        assert layer_id in tile and tile[layer_id]["features"], (layer_id, z, x, y, list(tile))
        props = tile[layer_id]["features"][0]["properties"]
        assert "id" in props, (layer_id, props)


def test_per_layer_styles_use_the_collection_tilejson(sclient: Any) -> None:
    base = _base(sclient)
    for s in sclient.get("/styles").get_json()["styles"]:
        if s["id"] == "default":
            continue
        doc = sclient.get(f"/styles/{s['id']}").get_json()
        url = doc["sources"]["sejong"]["url"]
        assert url == f"{base}/collections/{s['id']}/tilejson.json"
        assert sclient.get(url.removeprefix(base)).status_code == 200
        assert {lyr["source-layer"].removesuffix("_label") for lyr in doc["layers"]} == {s["id"]}


def test_thematic_rules() -> None:
    style = json.loads((REPO / "styles" / "default.json").read_text())
    by_id = {lyr["id"]: lyr for lyr in style["layers"]}
    air = json.dumps(by_id["air_quality-circle"]["paint"]["circle-color"], ensure_ascii=False)
    for grade in ("좋음", "보통", "나쁨", "매우나쁨"):
        assert grade in air
    bike = json.dumps(by_id["bike_stations-circle"]["paint"]["circle-radius"])
    assert bike.index('"docks"') < bike.index('"bikes"')
    assert "library" in json.dumps(by_id["facilities-circle"]["paint"]["circle-color"])
    assert '"jimok"' in json.dumps(by_id["land-fill"]["paint"]["fill-color"])
    assert '"voters"' in json.dumps(by_id["admin_areas-fill"]["paint"]["fill-color"])
    labels = [lyr for lyr in style["layers"] if lyr["type"] == "symbol"]
    assert labels and all("coalesce" in json.dumps(lyr["layout"]["text-field"]) for lyr in labels)


def test_glyphs_are_ours(sclient: Any) -> None:
    r = sclient.get("/fonts/Nanum%20Gothic%20Regular/44032-44287.pbf")  # 가..
    assert r.status_code == 200 and r.mimetype == "application/x-protobuf"
    assert len(r.data) > 10_000
    latin = sclient.get("/fonts/Nanum%20Gothic%20Regular/0-255.pbf")
    assert latin.status_code == 200 and len(latin.data) > 5_000
    empty = sclient.get("/fonts/Nanum%20Gothic%20Regular/19968-20223.pbf")  # a range we do not build
    assert empty.status_code == 200 and empty.data == assets.empty_glyphs("Nanum Gothic Regular", 19968)
    assert sclient.get("/fonts/Nanum%20Gothic%20Regular/1-256.pbf").status_code == 404
    assert sclient.get("/fonts/Nanum%20Gothic%20Regular/abc.pbf").status_code == 404


def test_style_links_for_collections(sclient: Any) -> None:
    with sclient.application.test_request_context():
        links = styles_api.style_links("bike_stations")
    rels = {(lk["rel"], lk["type"]) for lk in links}
    assert ("stylesheet", styles_api.STYLE_JSON) in rels and ("describedby", styles_api.STYLE_JSON) in rels
    assert all(lk["href"].startswith("http") for lk in links)


def test_map_layers_json_has_korean_titles(sclient: Any) -> None:
    doc = sclient.get("/map/layers.json").get_json()
    bikes = next(lyr for lyr in doc["layers"] if lyr["id"] == "bike_stations")
    titles = {p["name"]: p["ko"] for p in bikes["properties"]}
    assert titles["docks"] == "거치대수" and bikes["title"]["en"].startswith("Eoulling")
