"""The map pages in a real browser: headless Debian Chromium (playwright-core, vendored at setup) on the live server.

One node script (tests/browser/run.mjs) drives /map and /citizen once and reports what it saw; these tests check
that report against the features API.  Nothing may be requested from another host (망분리).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from browser_helpers import ARTIFACTS, run_script

from server.app import close_app

CITY_HALL = (127.2890, 36.4800)


@pytest.fixture(scope="session")
def report(live_server: str) -> dict[str, Any]:
    """Run the browser script once for the whole module."""
    return run_script("run.mjs", live_server, "browser-report.json", timeout=600)


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
        assert count > 0 or count == -1, (layer, per_layer)  # -1: hidden until switched on in the layer list
    assert per_layer["roads"] > 0 and per_layer["legal_dong"] > 0, per_layer


def test_map_layer_list_comes_from_collections(report: dict[str, Any], live_server: str) -> None:
    listed = _api(live_server, "/collections")["collections"]
    ids = [c["id"] for c in listed if c.get("itemType") == "feature"]  # coverages (surfaces) have their own control
    assert all(c.get("dataType") == "coverage" for c in listed if c.get("itemType") != "feature"), listed
    basemap = report["map"]["basemapGroup"]  # the basemap's collections, listed last in their own group
    assert set(basemap) == {"roads", "legal_dong"}
    assert [x["id"] for x in report["map"]["layerList"]] == [i for i in ids if i not in basemap] + basemap
    checked = {x["id"] for x in report["map"]["layerList"] if x["checked"]}
    assert set(report["map"]["legend"]) == checked
    for coll in _api(live_server, "/collections")["collections"]:
        if coll.get("attribution"):
            assert any(coll["attribution"] in s for s in report["map"]["sources"]), coll["id"]
    assert "세종특별자치시" in report["map"]["attribution"]


def _names_in(base: str, collection: str, names: list[str]) -> set[str]:
    flt = "name IN (" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + ")"
    doc = _api(base, f"/collections/{collection}/items", filter=flt, limit=10000, properties="name",
               skipGeometry="true")
    return {f["properties"]["name"] for f in doc["features"]}


def test_map_draws_the_basemap_with_one_label_per_area(report: dict[str, Any], live_server: str) -> None:
    seen = report["map"]["basemap"]  # around 정부세종청사 at zoom 13
    assert seen["roads"] > 100 and seen["legalDong"] > 0, seen
    labels = seen["roadLabels"]
    assert len(labels) >= 10 and _names_in(live_server, "roads", labels) == set(labels)  # names along the roads
    assert {"한누리대로", "시청대로"} & set(labels)
    assert seen["sourceLayers"] == ["legal_dong_label"]
    dongs = seen["dongLabels"]
    assert len(dongs) >= 3 and set(dongs.values()) == {1}, dongs  # one label per area, not one per tile fragment
    # 세종동 (호수공원, the big area east of the complex) spans many tiles in this view and is named once
    assert dongs.get("세종동") == 1 and _names_in(live_server, "legal_dong", list(dongs)) == set(dongs)
    assert seen["adminLabels"] and set(seen["adminLabels"].values()) == {1}, seen["adminLabels"]
    off, on = report["map"]["basemapOff"], report["map"]["basemapOn"]
    assert off["roads"] == off["legalDong"] == 0 and not off["roadLabels"] and not off["dongLabels"]
    assert off["adminLabels"] == seen["adminLabels"]  # the thematic layers stay
    assert on["roads"] == seen["roads"] and on["dongLabels"] == dongs


def test_citizen_page_has_the_basemap(report: dict[str, Any], live_server: str) -> None:
    seen = report["citizen"]["basemap"]  # 1 km around 세종시청
    assert seen["roads"] > 20 and seen["legalDong"] > 0, seen
    assert len(seen["roadLabels"]) >= 5 and _names_in(live_server, "roads", seen["roadLabels"]) == set(
        seen["roadLabels"])
    assert "한누리대로" in seen["roadLabels"]
    assert set(seen["dongLabels"].values()) <= {1} and set(seen["adminLabels"].values()) <= {1}


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


SIGNIN_SUBJECT = "dept-browser"


@pytest.fixture(scope="module")
def signin_report(dsn: str, loaded: dict[str, int], oidc_provider: Any) -> dict[str, Any]:
    """/map with sign-in configured (served in a thread), driven once through the real test provider."""
    import socket
    import threading

    import werkzeug.serving

    from core.config import AuthConfig, load_config
    from server.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    cfg = load_config()
    app = create_app(cfg.model_copy(update={
        "server": cfg.server.model_copy(update={"url": base}),
        "auth": AuthConfig(enabled=True, issuer=oidc_provider.issuer, audience="sejong-map", client_id="sejong-map",
                           role_map={"gis-team": "department"})}))
    requests.put(f"{oidc_provider.issuer}/users/{SIGNIN_SUBJECT}", json={"roles": ["gis-team"], "name": "김부서"},
                 timeout=10).raise_for_status()
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        doc = run_script("signin.mjs", base, "browser-signin-report.json", SIGNIN_SUBJECT, timeout=180)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        close_app(app)
    doc["base"], doc["issuer"] = base, oidc_provider.issuer
    return doc


def test_map_signs_in_with_the_provider(signin_report: dict[str, Any]) -> None:
    from urllib.parse import parse_qs

    rep, base, issuer = signin_report, signin_report["base"], signin_report["issuer"]
    assert "cctv" not in rep["anonymous"]["layers"] and rep["anonymous"]["button"] == "로그인"
    assert rep["authorizeUrl"].startswith(f"{issuer}/oauth2/authorize?")
    query = parse_qs(urlsplit(rep["authorizeUrl"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["client_id"] == ["sejong-map"] and query["redirect_uri"] == [f"{base}/map"]
    assert query["response_type"] == ["code"] and query["state"][0]
    signed = rep["signedIn"]
    assert signed["layers"] == [*rep["anonymous"]["layers"][:signed["layers"].index("cctv")], "cctv",
                                *rep["anonymous"]["layers"][signed["layers"].index("cctv"):]]
    assert "김부서" in signed["who"]
    assert "code=" not in signed["url"] and signed["url"].startswith(f"{base}/map?lang=ko")
    assert signed["session"] and not signed["local"]  # the token lives in sessionStorage only
    assert signed["cctvRendered"] > 0
    assert "cctv" not in rep["signedOut"]["layers"] and rep["signedOut"]["button"] and not rep["signedOut"]["session"]
    assert not rep["failed"] and not rep["pageErrors"] and not rep["console"], (rep["failed"], rep["console"])


def test_map_sends_the_token_to_this_server_only(signin_report: dict[str, Any]) -> None:
    host = urlsplit(signin_report["base"]).netloc
    carried = [r["url"] for r in signin_report["requests"] if r["authorization"]]
    assert carried and {urlsplit(u).netloc for u in carried} == {host}
    for part in ("/collections?", "/map/layers.json", "/styles/default", "/tiles/WebMercatorQuad/"):
        assert any(part in u for u in carried), part
    provider = urlsplit(signin_report["issuer"]).netloc
    ours = [r["url"] for r in signin_report["requests"] if r["from"].startswith(signin_report["base"])]
    assert {urlsplit(u).netloc for u in ours} == {host, provider}  # (the provider's own form is not ours)
