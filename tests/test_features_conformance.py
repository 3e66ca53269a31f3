"""OGC API - Features Parts 1 and 2: the assertions of the CITE suite (../shared/conformance/CHECKLIST.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from pyproj import Transformer
from shapely.geometry import box, shape

from server import services

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
CRS_CONF = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"


def get(client: Any, url: str, accept: str = "application/json") -> Any:
    """GET through the test client, with the path taken from an absolute href."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.get(path, headers={"Accept": accept})


def rel(links: list[dict[str, Any]], name: str, type_: str | None = None) -> dict[str, Any] | None:
    """First link with rel (and type)."""
    return next((lk for lk in links if lk["rel"] == name and (type_ is None or lk.get("type") == type_)), None)


@pytest.fixture(scope="module")
def collections(app: Any) -> list[dict[str, Any]]:
    """The feature collections of /collections (itemType "feature"; the coverage collections have no items)."""
    with app.test_client() as c:
        listed = c.get("/collections", headers={"Accept": "application/json"}).get_json()["collections"]
    return [coll for coll in listed if coll.get("itemType") == "feature"]


def test_landing_page_links(client: Any) -> None:
    resp = client.get("/", headers={"Accept": "application/json"})
    assert resp.status_code == 200
    links = resp.get_json()["links"]
    desc = rel(links, "service-desc")
    assert desc is not None and desc["type"].replace(" ", "") == OPENAPI
    assert rel(links, "conformance") and rel(links, "data")
    assert all(lk["href"].startswith("http") for lk in links), "hrefs must be absolute"


def test_api_definition_is_openapi_30(client: Any) -> None:
    resp = client.get("/api", headers={"Accept": OPENAPI})
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.0")
    from openapi_spec_validator import validate

    validate(doc)
    for path in ("/conformance", "/collections", "/collections/{collectionId}",
                 "/collections/{collectionId}/items", "/collections/{collectionId}/items/{featureId}"):
        op = doc["paths"][path]["get"]
        assert "200" in op["responses"]
    params = {p["name"]: p for p in doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]}
    limit = params["limit"]
    assert (limit["in"], limit["required"], limit["style"], limit["explode"]) == ("query", False, "form", False)
    assert limit["schema"]["type"] == "integer" and limit["schema"]["minimum"] >= 0
    assert limit["schema"]["default"] >= 0
    bbox = params["bbox"]["schema"]
    assert (bbox["type"], bbox["minItems"], bbox["maxItems"], bbox["items"]["type"]) == ("array", 4, 6, "number")
    assert params["datetime"]["schema"]["type"] == "string"


def test_conformance_declares_core_and_crs(client: Any) -> None:
    resp = client.get("/conformance", headers={"Accept": "application/json"})
    assert resp.status_code == 200
    conforms = resp.get_json()["conformsTo"]
    assert isinstance(conforms, list) and all(isinstance(c, str) for c in conforms)
    assert CORE in conforms and CRS_CONF in conforms


def test_collections_links_and_alternates(client: Any, collections: list[dict[str, Any]]) -> None:
    doc = client.get("/collections", headers={"Accept": "application/json"}).get_json()
    assert rel(doc["links"], "self", "application/json")
    assert rel(doc["links"], "alternate", "text/html")
    assert doc["collections"], "collections must not be empty"
    ids = {c["id"] for c in collections}
    assert {"bike_stations", "street_lights", "admin_areas", "facilities"} <= ids
    for coll in collections:
        assert rel(coll["links"], "items", "application/geo+json"), coll["id"]
    for coll in doc["collections"]:  # every other entry is a coverage: coverage links, no items link
        if coll.get("itemType") != "feature":
            assert "itemType" not in coll and coll["dataType"] == "coverage", coll["id"]
            assert rel(coll["links"], "items") is None, coll["id"]
            assert rel(coll["links"], "http://www.opengis.net/def/rel/ogc/1.0/coverage"), coll["id"]


def test_collection_matches_collections_entry(client: Any, collections: list[dict[str, Any]]) -> None:
    for entry in collections:
        resp = client.get(f"/collections/{entry['id']}", headers={"Accept": "application/json"})
        assert resp.status_code == 200
        single = resp.get_json()
        for key in ("id", "title", "description", "extent"):
            assert single[key] == entry[key], (entry["id"], key)


def _items_url(coll: dict[str, Any]) -> str:
    link = rel(coll["links"], "items", "application/geo+json")
    assert link
    return link["href"]


def _check_page(doc: dict[str, Any]) -> None:
    assert doc["type"] == "FeatureCollection"
    assert isinstance(doc["features"], list)
    assert doc["numberReturned"] == len(doc["features"])
    datetime.fromisoformat(doc["timeStamp"].replace("Z", "+00:00"))
    assert rel(doc["links"], "self") and rel(doc["links"], "alternate", "text/html")
    for feat in doc["features"]:
        assert "id" in feat
        if feat["geometry"]:
            minx, miny, maxx, maxy = shape(feat["geometry"]).bounds
            assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def test_items_pages_and_number_matched(client: Any, collections: list[dict[str, Any]]) -> None:
    for coll in collections:
        resp = get(client, _items_url(coll), "application/geo+json")
        assert resp.status_code == 200, coll["id"]
        assert resp.headers["Content-Type"].startswith("application/geo+json")
        doc = json.loads(resp.get_data())
        _check_page(doc)
        if "numberMatched" not in doc or doc["numberMatched"] > 20000:
            continue
        reached = len(doc["features"])
        seen = {f["id"] for f in doc["features"]}
        nxt = rel(doc["links"], "next")
        while nxt:
            assert "?" in nxt["href"], "next href must carry a query string"
            page = json.loads(get(client, nxt["href"].replace("limit=10&", "limit=5000&"),
                                  "application/geo+json").get_data())
            _check_page(page)
            reached += len(page["features"])
            seen |= {f["id"] for f in page["features"]}
            nxt = rel(page["links"], "next")
        assert reached == doc["numberMatched"] == len(seen), coll["id"]


def test_limit_parameter(client: Any) -> None:
    for limit, most in ((1, 1), (5, 5), (100, 100), (10**7, 10000)):
        doc = client.get(f"/collections/street_lights/items?limit={limit}").get_json()
        assert len(doc["features"]) == min(most, 15460)
    assert client.get("/collections/street_lights/items?limit=0").status_code == 400
    assert client.get("/collections/street_lights/items?limit=unlimited").status_code == 400


@pytest.mark.parametrize("unknown", ["unknownQueryParameter12345=1", "bboxx=1,2,3,4", "LIMIT=3"])
def test_unknown_parameter_is_400(client: Any, unknown: str) -> None:
    resp = client.get(f"/collections/bike_stations/items?{unknown}")
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["code"] == "InvalidParameterValue" and "description" in body


ETS_BBOXES = ["-1.5,50,1.5,53", "-80,-5,-70,5", "177,65,-177,70", "-180,85,180,90", "-180,-90,180,-85",
              "127.25,36.47,127.3,36.52", "127.0,36.3,0,127.5,36.8,100"]


@pytest.mark.parametrize("bbox", ETS_BBOXES)
def test_bbox_results_intersect(client: Any, collections: list[dict[str, Any]], bbox: str) -> None:
    nums = [float(v) for v in bbox.split(",")]
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    boxes = ([box(nums[0], nums[1], 180, nums[3]), box(-180, nums[1], nums[2], nums[3])] if nums[0] > nums[2]
             else [box(*nums)])
    for coll in collections:
        resp = client.get(f"/collections/{coll['id']}/items?bbox={bbox}&limit=1000")
        assert resp.status_code == 200, (coll["id"], resp.get_data())
        for feat in resp.get_json()["features"]:
            geom = shape(feat["geometry"])
            assert any(geom.intersects(b) for b in boxes), (coll["id"], feat["id"])


def test_bbox_finds_what_is_there(client: Any) -> None:
    doc = client.get("/collections/bike_stations/items?bbox=127.2,36.4,127.4,36.7&limit=1000").get_json()
    assert doc["numberMatched"] > 300
    assert client.get("/collections/bike_stations/items?bbox=1,2,3").status_code == 400
    assert client.get("/collections/bike_stations/items?bbox=a,b,c,d").status_code == 400
    assert client.get("/collections/bike_stations/items?bbox=10,60,20,50").status_code == 400


def test_single_feature_links(client: Any, collections: list[dict[str, Any]]) -> None:
    for coll in collections:
        first = client.get(f"/collections/{coll['id']}/items?limit=1").get_json()["features"]
        if not first:
            continue
        resp = client.get(f"/collections/{coll['id']}/items/{first[0]['id']}",
                          headers={"Accept": "application/geo+json"})
        assert resp.status_code == 200
        feat = resp.get_json()
        assert feat["type"] == "Feature" and feat["id"] == first[0]["id"]
        assert rel(feat["links"], "self") and rel(feat["links"], "alternate", "text/html")
        assert rel(feat["links"], "collection", "application/json")


def test_not_found_is_ogc_exception(client: Any) -> None:
    for url in ("/collections/nope", "/collections/nope/items", "/collections/bike_stations/items/999999999",
                "/collections/bike_stations/items/abc"):
        resp = client.get(url)
        assert resp.status_code == 404, url
        body = resp.get_json()
        assert body["code"] == "NotFound" and body["description"]


# ---- Part 2: CRS ---------------------------------------------------------------------------------------


def test_crs_lists(collections: list[dict[str, Any]]) -> None:
    for coll in collections:
        assert CRS84 in coll["crs"]
        assert coll["storageCrs"] in coll["crs"]
        for uri in ("http://www.opengis.net/def/crs/EPSG/0/5186", "http://www.opengis.net/def/crs/EPSG/0/5179",
                    "http://www.opengis.net/def/crs/EPSG/0/4326", "http://www.opengis.net/def/crs/EPSG/0/3857",
                    "http://www.opengis.net/def/crs/EPSG/0/5174"):
            assert uri in coll["crs"]


def test_crs_parameter_and_content_crs(client: Any, collections: list[dict[str, Any]]) -> None:
    coll = next(c for c in collections if c["id"] == "bike_stations")
    resp = client.get("/collections/bike_stations/items?limit=2")
    assert resp.headers["Content-Crs"] == f"<{CRS84}>"
    fid = resp.get_json()["features"][0]["id"]
    for uri in coll["crs"][:20]:
        for url in (f"/collections/bike_stations/items?limit=2&crs={uri}",
                    f"/collections/bike_stations/items/{fid}?crs={uri}"):
            r = client.get(url)
            assert r.status_code == 200, (url, r.get_data())
            assert r.headers["Content-Crs"] == f"<{uri}>"
    assert client.get(f"/collections/bike_stations/items/{fid}").headers["Content-Crs"] == f"<{CRS84}>"
    bad = "http://www.opengis.net/def/crs/0/unsupported"
    assert client.get(f"/collections/bike_stations/items?crs={bad}").status_code == 400
    assert client.get(f"/collections/bike_stations/items/{fid}?crs={bad}").status_code == 400


def test_axis_order_per_crs(client: Any) -> None:
    fid = client.get("/collections/bike_stations/items?limit=1").get_json()["features"][0]["id"]

    def coords(uri: str = "") -> list[float]:
        q = f"?crs={uri}" if uri else ""
        return client.get(f"/collections/bike_stations/items/{fid}{q}").get_json()["geometry"]["coordinates"]

    lon, lat = coords()
    assert 126 < lon < 128 and 36 < lat < 37
    lat2, lon2 = coords("http://www.opengis.net/def/crs/EPSG/0/4326")
    assert (lat2, lon2) == pytest.approx((lat, lon), abs=1e-6)
    north, east = coords("http://www.opengis.net/def/crs/EPSG/0/5186")  # EPSG:5186 is northing, easting
    e, n = Transformer.from_crs(4326, 5186, always_xy=True).transform(lon, lat)
    assert (north, east) == pytest.approx((n, e), abs=0.05)
    x, y = coords("http://www.opengis.net/def/crs/EPSG/0/3857")
    ex, ey = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    assert (x, y) == pytest.approx((ex, ey), abs=0.05)


def _ids(client: Any, url: str) -> set[Any]:
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.get_data())
    return {f["id"] for f in resp.get_json()["features"]}


def test_bbox_crs_same_features(client: Any, collections: list[dict[str, Any]]) -> None:
    coll = next(c for c in collections if c["id"] == "bike_stations")
    w, s, e, n = 127.24, 36.46, 127.30, 36.52
    reference = _ids(client, f"/collections/bike_stations/items?limit=1000&bbox={w},{s},{e},{n}")
    assert reference
    assert _ids(client, f"/collections/bike_stations/items?limit=1000&bbox={w},{s},{e},{n}&bbox-crs={CRS84}") \
        == reference
    for uri in coll["crs"]:
        code = uri.rsplit("/", 1)[-1]
        if code == "CRS84":
            continue
        tr = Transformer.from_crs(4326, int(code), always_xy=True)
        # a bbox in the target CRS that contains the lon/lat bbox: the answer must hold every reference feature
        x1, y1, x2, y2 = tr.transform_bounds(w, s, e, n, densify_pts=21)
        if code in ("4326", "5186", "5179", "5174", "5181"):  # northing-first CRSs take (y, x) order
            x1, y1, x2, y2 = y1, x1, y2, x2
        got = _ids(client, f"/collections/bike_stations/items?limit=1000&bbox={x1},{y1},{x2},{y2}&bbox-crs={uri}")
        assert reference <= got, uri
        assert len(got) <= len(reference) * 1.5 + 5, uri
    bad = "http://www.opengis.net/def/crs/0/unsupported"
    assert client.get(f"/collections/bike_stations/items?bbox={w},{s},{e},{n}&bbox-crs={bad}").status_code == 400


def test_bbox_crs_storage_exact(client: Any, app: Any) -> None:
    """A bbox in the storage CRS selects exactly the points inside it (no reprojection at all)."""
    import psycopg2

    with psycopg2.connect(services.of(app).db.dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.bike_stations WHERE geom && ST_MakeEnvelope(220000, 425000, "
                    "228000, 433000, 5186)")
        expected = cur.fetchone()[0]
    assert expected > 10
    got = _ids(client, "/collections/bike_stations/items?limit=1000&bbox=425000,220000,433000,228000"
               "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/5186")
    assert len(got) == expected
