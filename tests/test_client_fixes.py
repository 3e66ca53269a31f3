"""What desktop-client and API users ran into (issue 11): items links, readings count, attribution, page size,
the City Hall tile, the latest existing air-quality reading."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mapbox_vector_tile
import morecantile
import pytest
from db_helpers import query

from core.config import load_config
from loaders.textio import decode_bytes, member_names

REPO = Path(__file__).resolve().parent.parent
GEOJSON = "application/geo+json"
PUBLIC_DATA = "sejong/public-data-2023/세종시데이터.zip"
INSTITUTIONS = "세종특별자치시_공공기관현황"


def path_of(href: str) -> str:
    """The path and query of an absolute href (for the test client)."""
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def collection(client: Any, cid: str) -> dict[str, Any]:
    resp = client.get(f"/collections/{cid}", headers={"Accept": "application/json"})
    assert resp.status_code == 200
    return dict(resp.get_json())


# ------------------------------------------------------------------ items links a client may extend with /{fid}

@pytest.mark.parametrize("cid", ["bike_stations", "street_lights", "air_quality_readings"])
def test_items_link_takes_a_feature_id(client: Any, cid: str) -> None:
    links = collection(client, cid)["links"]
    items = [lk for lk in links if lk["rel"] == "items" and lk["type"] == GEOJSON]
    assert len(items) == 1
    href = items[0]["href"]
    assert "?" not in href, f"{href}: GDAL appends /{{fid}} to this href"
    html = [lk for lk in links if lk["rel"] == "items" and lk["type"] == "text/html"]
    assert html and html[0]["href"].endswith("?f=html")  # a browser needs f=html: it sends Accept: text/html anyway
    first = client.get(path_of(href) + "?limit=3", headers={"Accept": GEOJSON}).get_json()["features"][2]
    one = client.get(path_of(href) + f"/{first['id']}", headers={"Accept": GEOJSON})
    assert one.status_code == 200 and one.headers["Content-Type"].startswith(GEOJSON)
    assert one.get_json()["properties"] == first["properties"]


# ------------------------------------------------------------------ every reading is served

def test_readings_collection_serves_every_row(client: Any, dsn: str) -> None:
    stored = query(dsn, "SELECT count(*) FROM public.air_quality_readings")[0][0]
    doc = client.get("/collections/air_quality_readings/items?limit=1").get_json()
    assert doc["numberMatched"] == stored
    # a roadside station has no position in the AirKorea list: its readings are served without geometry
    name, n = query(dsn, "SELECT r.station_name, count(*) FROM public.air_quality_readings r "
                         "LEFT JOIN public.air_quality_stations s ON s.name = r.station_name WHERE s.id IS NULL "
                         "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")[0]
    page = client.get("/collections/air_quality_readings/items", query_string={"station_name": name, "limit": 10000})
    doc = page.get_json()
    assert doc["numberMatched"] == n == len(doc["features"])
    assert all(f["geometry"] is None and f["properties"]["station_id"] is None for f in doc["features"])
    # and a district station keeps its position
    doc = client.get("/collections/air_quality_readings/items", query_string={"station_name": "강남구", "limit": 1})
    feat = doc.get_json()["features"][0]
    assert feat["geometry"]["type"] == "Point" and feat["properties"]["station_id"] is not None


# ------------------------------------------------------------------ attribution and provenance

@pytest.mark.parametrize(("cid", "sources", "credit"), [
    ("air_quality", ["korea/airkorea-stations/airKoreaStations.js"], ["한국환경공단", "에어코리아"]),
    ("air_quality_readings", ["seoul/air-daily/2018.csv", "seoul/air-daily/2022.csv",
                              "korea/airkorea-stations/airKoreaStations.js"], ["서울 열린데이터광장", "한국환경공단"]),
])
def test_air_quality_collections_credit_their_sources(client: Any, dsn: str, cid: str, sources: list[str],
                                                      credit: list[str]) -> None:
    doc = collection(client, cid)
    assert all(c in doc["attribution"] for c in credit), doc.get("attribution")
    files = {s["file"]: s["sha256"] for p in doc["provenance"] for s in p["sources"]}
    for f in sources:
        recorded = query(dsn, "SELECT s->>'sha256' FROM meta.datasets, jsonb_array_elements(sources) s "
                              "WHERE s->>'file' = %s", (f,))
        assert recorded and files[f] == recorded[0][0]
    assert any("KOGL" in (p["licence"] or "") for p in doc["provenance"])
    assert any(lk["rel"] == "license" for lk in doc["links"])
    page = client.get(f"/collections/{cid}?f=html").get_data(as_text=True)
    assert credit[0] in page and sources[0] in page


# ------------------------------------------------------------------ page size

def test_default_page_size_is_the_advertised_one(client: Any) -> None:
    api = client.get("/api?f=json").get_json()
    params = {p["name"]: p for p in api["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]}
    schema = params["limit"]["schema"]
    server = load_config().server
    assert schema["default"] == server.limit_default and schema["maximum"] == server.limit_max
    assert schema["default"] >= 1000  # GDAL's whole-layer download: 10 per page took 117 s for the readings
    doc = client.get("/collections/street_lights/items").get_json()
    assert doc["numberMatched"] > schema["default"]
    assert doc["numberReturned"] == len(doc["features"]) == schema["default"]
    nxt = next(lk for lk in doc["links"] if lk["rel"] == "next")
    assert f"limit={schema['default']}" in nxt["href"]
    html = client.get("/collections/street_lights/items?f=html").get_data(as_text=True)
    assert html.count("<tr>") - 1 == schema["default"]


# ------------------------------------------------------------------ City Hall tile

def city_hall() -> tuple[float, float]:
    """세종특별자치시청 (lon, lat) from the city's own list of public institutions."""
    zpath = load_config().data.path() / PUBLIC_DATA
    member = next(info for name, info in member_names(zpath).items() if INSTITUTIONS in name)
    with zipfile.ZipFile(zpath) as zf:
        text, _ = decode_bytes(zf.read(member), "auto", member.filename)
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["구분"] == "세종특별자치시청")
    return float(row["경도"]), float(row["위도"])


def test_city_hall_tile(client: Any) -> None:
    lon, lat = city_hall()
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 12)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"WebMercatorQuad/12/(\d+)/(\d+)", readme))
    assert shown == {(str(tile.y), str(tile.x))}, f"City Hall is in 12/{tile.y}/{tile.x}; README shows {shown}"
    resp = client.get(f"/collections/bike_stations/tiles/WebMercatorQuad/12/{tile.y}/{tile.x}")
    assert resp.status_code == 200
    names = {f["properties"].get("name") for f in mapbox_vector_tile.decode(resp.get_data())
             .get("bike_stations", {"features": []})["features"]}
    assert "보람동_세종시청 후문" in names


# ------------------------------------------------------------------ latest existing reading per station

def test_latest_is_the_latest_existing_reading(dsn: str) -> None:
    source = "test:latest-existing"
    station = query(dsn, "SELECT name FROM public.air_quality_stations WHERE sido = '세종특별자치시' "
                         "ORDER BY name LIMIT 1")[0][0]
    rows = [("2023-03-31 14:00+09", 35, 12, None), ("2023-04-01 09:00+09", None, None, "통신장애")]
    try:
        for when, pm10, pm25, flag in rows:
            query(dsn, "INSERT INTO public.air_quality_readings (station_name, measured_at, period, pm10, pm25, "
                       "pm10_flag, pm25_flag, source) VALUES (%s, %s, 'hour', %s, %s, %s, %s, %s)",
                  (station, when, pm10, pm25, flag, flag, source))
        got = query(dsn, "SELECT pm10, pm25, pm10_grade, pm25_grade, measured_at FROM public.air_quality_latest "
                         "WHERE name = %s", (station,))[0]
        assert got[:4] == (35, 12, "보통", "좋음")
        assert got[4] == datetime(2023, 3, 31, 5, 0, tzinfo=UTC)
    finally:
        query(dsn, "DELETE FROM public.air_quality_readings WHERE source = %s", (source,))
    none = query(dsn, "SELECT pm10, measured_at FROM public.air_quality_latest WHERE name = %s", (station,))[0]
    assert none == (None, None)



CITIZEN_SCRIPT = """
import { createRequire } from 'node:module';
import path from 'node:path';
const [base, assetsDir, lang] = process.argv.slice(2);
const require = createRequire(path.resolve(assetsDir, 'package.json'));
const { chromium } = require('playwright-core');
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'] });
try {
  const page = await browser.newPage();
  await page.goto(`${base}/citizen?lang=${lang}`);
  await page.waitForFunction(() => window.__ready === true, null, { timeout: 60000 });
  const text = await page.$eval('#sec-air_quality .body', (x) => x.textContent);
  const fid = await page.evaluate(() => window.__results.air_quality);
  console.log(JSON.stringify({ text, fid }));
} finally {
  await browser.close();
}
"""


def citizen_air_panel(base: str, tmp_path: Path, lang: str) -> dict[str, Any]:
    """The /citizen air-quality panel as headless Chromium shows it (picked point: City Hall)."""
    import shutil
    import subprocess

    from server.assets import assets_dir, ensure_assets

    node = shutil.which("node")
    assert node, "node not found: the browser check drives Chromium with playwright-core from node"
    ensure_assets(REPO)
    script = tmp_path / "citizen.mjs"
    script.write_text(CITIZEN_SCRIPT, encoding="utf-8")
    res = subprocess.run([node, str(script), base, str(assets_dir(REPO)), lang], capture_output=True, text=True,
                         timeout=180, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return dict(json.loads(res.stdout))


def test_citizen_panel_shows_the_latest_reading_with_date_and_age(live_server: str, dsn: str,
                                                                   tmp_path: Path) -> None:
    source = "test:citizen-panel"
    station_id, station = query(dsn, "SELECT id, name FROM public.air_quality_stations ORDER BY geom <-> "
                                     "ST_Transform(ST_SetSRID(ST_MakePoint(127.289, 36.48), 4326), 5186) LIMIT 1")[0]
    taken = datetime(2023, 3, 31, 5, 0, tzinfo=UTC)  # 14:00 KST
    try:
        query(dsn, "INSERT INTO public.air_quality_readings (station_name, measured_at, period, pm10, pm25, source) "
                   "VALUES (%s, %s, 'hour', 35, 12, %s)", (station, taken, source))
        before = (datetime.now(UTC) - taken).days
        ko = citizen_air_panel(live_server, tmp_path, "ko")
        en = citizen_air_panel(live_server, tmp_path, "en")
        after = (datetime.now(UTC) - taken).days
    finally:
        query(dsn, "DELETE FROM public.air_quality_readings WHERE source = %s", (source,))
    assert ko["fid"] == en["fid"] == station_id
    assert station in ko["text"] and "보통 35 ㎍/㎥" in ko["text"] and "좋음 12 ㎍/㎥" in ko["text"]
    assert any(f"2023-03-31 14:00 측정, {d}일 전" in ko["text"] for d in {before, after}), ko["text"]
    assert any(f"measured 2023-03-31 14:00, {d} days ago" in en["text"] for d in {before, after}), en["text"]
