"""The map pages in a real browser: headless Debian Chromium (playwright-core, vendored at setup) on the live server.

One node script (tests/browser/run.mjs) drives /map and /citizen once and reports what it saw; these tests check
that report against the features API.  Nothing may be requested from another host (망분리).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from server.assets import assets_dir, ensure_assets

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CITY_HALL = (127.2890, 36.4800)


@pytest.fixture(scope="session")
def report(live_server: str) -> dict[str, Any]:
    """Run the browser script once for the whole module."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y --no-install-recommends chromium")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: the browser tests drive Chromium with playwright-core from node")
    ensure_assets(REPO)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([node, str(REPO / "tests" / "browser" / "run.mjs"), live_server, str(ARTIFACTS),
                          str(assets_dir(REPO))], capture_output=True, text=True, timeout=180, check=False)
    (ARTIFACTS / "browser-report.json").write_text(res.stdout)
    assert res.returncode == 0, res.stderr[-3000:]
    doc: dict[str, Any] = json.loads(res.stdout)
    assert "error" not in doc, doc["error"]
    return doc


def _api(base: str, path: str, **params: Any) -> Any:
    r = requests.get(f"{base}{path}", params={"f": "json", **params}, timeout=30)
    r.raise_for_status()
    return r.json()


def _same(shown: str, value: Any) -> bool:
    if isinstance(value, bool):
        return shown == ("true" if value else "false")
    if isinstance(value, int | float):
        return float(shown) == float(value)
    if isinstance(value, dict | list):
        return json.loads(shown) == value
    return shown == str(value)


def _check_popup(base: str, popup: dict[str, Any]) -> None:
    feature = _api(base, f"/collections/{popup['collection']}/items/{popup['fid']}")
    layers = {lyr["id"]: lyr for lyr in _api(base, "/map/layers.json")["layers"]}
    titles = {p["name"]: p["ko"] for p in layers[popup["collection"]]["properties"]}
    props = dict(feature["properties"])
    id_name = layers[popup["collection"]]["idProperty"]
    props.setdefault(id_name, feature["id"])
    shown = popup["rows"]
    assert shown, "the popup shows no attributes"
    for name, row in shown.items():
        assert _same(row["value"], props[name]), (name, row, props[name])
        assert row["title"] == titles[name], (name, row["title"], titles[name])
    missing = {k for k, v in props.items() if v not in (None, "") and k in titles} - set(shown)
    assert not missing, f"attributes not shown: {missing}"


def test_no_request_leaves_the_host(report: dict[str, Any], live_server: str) -> None:
    host = urlsplit(live_server).netloc
    hosts = {urlsplit(u).netloc for u in report["requests"] if not u.startswith(("data:", "blob:"))}
    assert hosts == {host}, hosts
    assert any("/tiles/WebMercatorQuad/" in u for u in report["requests"]), "the map did not use our vector tiles"
    assert any("/fonts/" in u for u in report["requests"]), "no glyphs were loaded from us"
    assert not report["failed"], report["failed"]
    assert not report["pageErrors"], report["pageErrors"]
    assert not report["console"], report["console"]


def test_map_renders_every_layer(report: dict[str, Any]) -> None:
    initial = report["map"]["initial"]
    for layer in ("bike_stations", "air_quality", "admin_areas", "emd_2018", "facilities"):
        assert initial[layer] > 0, (layer, initial)
    per_layer = report["map"]["perLayer"]
    assert set(per_layer) >= {"bike_stations", "air_quality", "admin_areas", "emd_2018", "buildings", "facilities",
                              "street_lights"}
    for layer, count in per_layer.items():
        assert count > 0, (layer, per_layer)


def test_map_layer_list_comes_from_collections(report: dict[str, Any], live_server: str) -> None:
    ids = [c["id"] for c in _api(live_server, "/collections")["collections"]]
    assert [x["id"] for x in report["map"]["layerList"]] == ids
    checked = {x["id"] for x in report["map"]["layerList"] if x["checked"]}
    assert set(report["map"]["legend"]) == checked
    for coll in _api(live_server, "/collections")["collections"]:
        if coll.get("attribution"):
            assert any(coll["attribution"] in s for s in report["map"]["sources"]), coll["id"]
    assert "세종특별자치시" in report["map"]["attribution"]


def test_map_popup_matches_features_api(report: dict[str, Any], live_server: str) -> None:
    clicks = report["map"]["clicks"]
    assert {c["collection"] for c in clicks} == {"bike_stations", "admin_areas"}
    for click in clicks:
        assert "error" not in click, click
        assert click["popup"]["collection"] == click["collection"]
        assert str(click["popup"]["fid"]) == str(click["clicked"])
        _check_popup(live_server, click["popup"])


def test_map_downloads_follow_the_view(report: dict[str, Any], live_server: str) -> None:
    links = report["map"]["downloads"]
    csv_link = next(u for u in links if "/map/download/bike_stations.csv" in u)
    geo_link = next(u for u in links if "/collections/bike_stations/items" in u and "bbox=" in u)
    geo = requests.get(geo_link, timeout=30).json()
    r = requests.get(csv_link, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id,") and lines[0].endswith(",wkt")
    assert len(lines) - 1 == geo["numberReturned"] > 0


def test_map_english_switch_keeps_the_position(report: dict[str, Any]) -> None:
    eng = report["map"]["english"]
    assert eng["heading"] == "Layers"
    assert eng["firstLayer"] == "Eoulling public bike stations"
    assert abs(eng["zoom"] - 12) < 0.01


def test_citizen_page_finds_what_is_near(report: dict[str, Any], live_server: str) -> None:
    res = report["citizen"]["results"]
    lon, lat = res["point"]
    assert (lon, lat) == CITY_HALL and res["radius"] == 1000
    for coll in ("bike_stations", "facilities"):
        flt = f"S_DWITHIN(geom, POINT({lon:.6f} {lat:.6f}), {res['radius']}, meters)"
        api = _api(live_server, f"/collections/{coll}/items", filter=flt, limit=1000)
        assert sorted(res[coll]) == sorted(f["id"] for f in api["features"]), coll
        assert res[coll], coll
    assert res["air_quality"] is not None
    lists = report["citizen"]["lists"]
    assert lists["bike_stations"] == min(15, len(res["bike_stations"]))
    assert lists["facilities"] == min(15, len(res["facilities"]))
    rendered = report["citizen"]["rendered"]
    assert rendered["bike_stations"] > 0 and rendered["facilities"] > 0
    assert report["citizen"]["renderedCity"]["air_quality"] > 0


def test_citizen_page_is_keyboard_usable(report: dict[str, Any], live_server: str) -> None:
    popup = report["citizen"]["keyboardPopup"]
    assert popup["collection"] == "bike_stations"
    assert int(popup["fid"]) == report["citizen"]["results"]["bike_stations"][0]
    _check_popup(live_server, popup)
    moved = report["citizen"]["movedPoint"]
    assert moved[0] > CITY_HALL[0] + 1e-4, "arrow keys + 'search at the map centre' did not pick a new point"


def test_citizen_page_on_a_phone(report: dict[str, Any]) -> None:
    mobile = report["citizen"]["mobile"]
    assert mobile["scrollWidth"] <= 390, "horizontal scrolling on a 390 px wide screen"
    assert mobile["lang"] == "en" and mobile["heading"].startswith("Sejong")


@pytest.mark.parametrize("name", ["map.png", "map-popup.png", "citizen.png", "citizen-mobile.png"])
def test_screenshots_are_not_blank(report: dict[str, Any], name: str) -> None:
    from PIL import Image

    with Image.open(ARTIFACTS / name) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, name
