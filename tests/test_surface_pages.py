"""The air-quality surfaces as coverage collections in /collections, on /map (layer, date slider, legend) and on
/citizen (the estimate at a point beside the nearest station's measurement).

tests/browser/surface_pages.mjs drives headless Debian Chromium on the live server and reports what it saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from browser_helpers import run_script
from db_helpers import query
from process_helpers import wait_for
from test_hourly_surfaces import build_hourly, readings_restored

COLLECTION = "pm10_seoul"
HOURLY = "pm10_seoul_hourly"
SEOUL_CITY_HALL = (126.9780, 37.5665)
OGC = "http://www.opengis.net/def/rel/ogc/1.0/"


def _rels(coll: dict[str, Any]) -> set[str]:
    return {lk["rel"] for lk in coll["links"]}


def _newest_validation(dsn: str) -> dict[str, Any]:
    (validation,), *_ = query(dsn, "SELECT validation FROM meta.surfaces WHERE collection_id = %s "
                                   "ORDER BY valid_at DESC LIMIT 1", (COLLECTION,))
    found: dict[str, Any] = validation
    return found


def test_collections_lists_surfaces_as_coverages(client: Any, dsn: str) -> None:
    doc = client.get("/collections", headers={"Accept": "application/json"}).get_json()
    entries = {c["id"]: c for c in doc["collections"]}
    assert {COLLECTION, "pm25_seoul"} <= set(entries)
    coll = entries[COLLECTION]
    assert coll["dataType"] == "coverage" and "itemType" not in coll
    rels = _rels(coll)
    assert "items" not in rels, rels
    assert {f"{OGC}coverage", f"{OGC}coverage-domainset", f"{OGC}coverage-rangetype", f"{OGC}tilesets-map"} <= rels
    for lk in coll["links"]:  # every link answers
        assert client.get(lk["href"]).status_code == 200, lk
    # the layers come first and stay feature collections
    kinds = [c.get("itemType") for c in doc["collections"]]
    assert kinds.index(None) == kinds.count("feature") and set(kinds) == {"feature", None}
    single = client.get(f"/collections/{COLLECTION}").get_json()
    assert single == coll


def test_collection_metadata_carries_the_loo_errors_of_meta_surfaces(client: Any, dsn: str) -> None:
    coll = next(c for c in client.get("/collections").get_json()["collections"] if c["id"] == COLLECTION)
    stored = _newest_validation(dsn)
    surface = coll["surface"]
    assert surface["validation"]["scheme"] == "leave-one-station-out"
    assert surface["validation"]["pooled"] == stored["pooled"]
    assert set(stored["pooled"]) == {"idw", "kriging", "nearest"}
    english = client.get(f"/collections/{COLLECTION}?lang=en").get_json()["description"]
    assert "교차검증" in coll["description"] and "leave-one-station-out" in english
    for method, err in stored["pooled"].items():
        assert f"{method} RMSE {err['rmse']} / MAE {err['mae']}" in coll["description"], method
        assert f"{method} RMSE {err['rmse']} / MAE {err['mae']}" in english, method
    assert surface["method"] == stored["default"] and surface["cell_m"] > 0 and surface["max_distance_m"] > 0
    (days,), *_ = query(dsn, "SELECT count(*) FROM meta.surfaces WHERE collection_id = %s", (COLLECTION,))
    assert len(coll["extent"]["temporal"]["values"]) == days == surface["validation"]["days"]


def test_collections_page_marks_coverages(client: Any) -> None:
    for lang, word in (("ko", "커버리지"), ("en", "coverage")):
        html = client.get(f"/collections?f=html&lang={lang}").get_data(as_text=True)
        assert f"/collections/{COLLECTION}?f=html" in html and word in html, lang


def test_position_gives_estimate_and_station(client: Any) -> None:
    lon, lat = SEOUL_CITY_HALL
    p = client.get(f"/collections/{COLLECTION}/position?coords=POINT({lon} {lat})").get_json()["properties"]
    assert p["estimated"] is True and p["estimate"] is not None
    assert p["nearest_station"]["measured"] is True and p["cv_rmse"] is not None


@pytest.fixture(scope="module")
def pages(live_server: str) -> dict[str, Any]:
    """Run the browser script once for the module."""
    lon, lat = SEOUL_CITY_HALL
    doc = run_script("surface_pages.mjs", live_server, "surface-pages-report.json", COLLECTION, str(lon), str(lat))
    assert not doc["pageErrors"], doc["pageErrors"]
    assert not doc["offsite"], doc["offsite"]
    return doc


def test_map_surface_layer_toggles_and_renders_tiles(pages: dict[str, Any]) -> None:
    m = pages["map"]
    assert COLLECTION not in m["layerList"]  # its own control, not the feature layer list
    assert m["visibleBefore"] == "none" and m["tilesBeforeToggle"] == 0  # off by default
    assert m["visibleAfter"] == "visible"
    ok = [t for t in m["tilesAfterToggle"] if t["status"] == 200 and t["type"].startswith("image/png")]
    assert ok, m["tilesAfterToggle"]
    assert all(t["status"] in (200, 304) for t in m["tilesAfterToggle"]), m["tilesAfterToggle"]
    assert 0 <= m["order"]["raster"] < m["order"]["stations"], m["order"]  # under the station layer


def test_map_surface_legend_says_how_it_was_made(pages: dict[str, Any], dsn: str) -> None:
    legend = pages["map"]["legend"]
    stored = _newest_validation(dsn)
    err = stored["pooled"][stored["default"]]
    assert f"RMSE {err['rmse']}" in legend and f"MAE {err['mae']}" in legend, legend
    for word in ("좋음", "보통", "나쁨", "매우나쁨", "교차검증", "격자", "추정값"):
        assert word in legend, (word, legend)


def test_map_date_slider_changes_the_day(pages: dict[str, Any], dsn: str) -> None:
    m = pages["map"]
    days = [str(d) for (d,) in query(dsn, "SELECT (valid_at AT TIME ZONE 'Asia/Seoul')::date FROM meta.surfaces "
                                          "WHERE collection_id = %s ORDER BY valid_at", (COLLECTION,))]
    assert m["slider"] == {"min": "0", "max": str(len(days) - 1), "value": str(len(days) - 1)}
    assert days[-1] in m["label"] and m["day"] == days[0] and days[0] in m["labelAfter"]
    assert m["tilesAfterSlide"], m
    assert all(f"datetime={days[0]}" in t["url"] and t["status"] == 200 for t in m["tilesAfterSlide"])


def test_citizen_shows_the_estimate_beside_the_station(pages: dict[str, Any], client: Any) -> None:
    c = pages["citizen"]
    assert c["sejongHidden"] is True  # 세종시청: no surface there
    assert c["hidden"] is False and "추정값" in c["text"], c
    entry = next(e for e in c["entries"] if e["collection"] == COLLECTION)
    lon, lat = SEOUL_CITY_HALL
    p = client.get(f"/collections/{COLLECTION}/position?coords=POINT({lon} {lat})").get_json()["properties"]
    assert entry["estimate"].startswith(f"추정값 {p['estimate']:g} ") and p["grade"] in entry["estimate"]
    station = p["nearest_station"]
    assert entry["measured"].startswith(f"측정값: {station['name']} {station['value']:g} "), entry


@pytest.fixture(scope="module")
def hourly_pages(live_server: str, dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The same script on an hourly surface: three hours of 최종확정 readings (made from the real Seoul file) built
    as pm10_seoul_hourly; readings and hourly surfaces removed afterwards."""
    with readings_restored(dsn):
        assert build_hourly(dsn, tmp_path_factory.mktemp("hourly")) == 3
        wait_for(lambda: requests.get(f"{live_server}/collections/{HOURLY}?f=json", timeout=10).status_code,
                 lambda status: status == 200, 15, f"the live server listing {HOURLY}")
        lon, lat = SEOUL_CITY_HALL
        yield run_script("surface_pages.mjs", live_server, "surface-hourly-report.json", HOURLY, str(lon), str(lat))


def test_map_hour_slider_steps_through_hours(hourly_pages: dict[str, Any]) -> None:
    m = hourly_pages["map"]
    assert not hourly_pages["pageErrors"], hourly_pages["pageErrors"]
    assert m["visibleAfter"] == "visible" and m["slider"] == {"min": "0", "max": "2", "value": "2"}, m
    assert "2022-03-03 00:00 (KST)" in m["label"], m["label"]  # the newest hour, 24시 of 03-02 in the file
    assert m["day"] == "2022-03-02T22:00:00+09:00" and "2022-03-02 22:00 (KST)" in m["labelAfter"], m
    assert m["tilesAfterSlide"], m
    assert all("datetime=2022-03-02T22%3A00%3A00%2B09%3A00" in t["url"] and t["status"] == 200
               and t["type"].startswith("image/png") for t in m["tilesAfterSlide"]), m["tilesAfterSlide"]
