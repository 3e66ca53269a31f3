"""Items query parameters on the real bundled data: sortby and sortables, properties, skipGeometry, offset, lang."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

SORTABLES = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
ALL = "10000"  # above every bundled layer's size: one page holds the whole collection


def _features(client: Any, collection: str, **query: str) -> list[dict[str, Any]]:
    resp = client.get(f"/collections/{collection}/items", query_string=query)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return list(resp.get_json()["features"])


def _key(value: Any) -> tuple[int, Any]:
    """PostgreSQL order of one value: NULL sorts as the largest (last ascending, first descending)."""
    return (1, 0) if value is None else (0, value)


def _is_ordered(rows: list[list[Any]], descending: list[bool]) -> bool:
    """Whether rows (one value per sort key) are in the order the keys ask for."""
    for a, b in pairwise(rows):
        for va, vb, desc in zip(a, b, descending, strict=True):
            ka, kb = _key(va), _key(vb)
            if ka == kb:
                continue
            if (ka > kb) != desc:
                return False
            break
    return True


def _sortables(client: Any, collection: str, lang: str = "en") -> dict[str, Any]:
    resp = client.get(f"/collections/{collection}/sortables", query_string={"lang": lang})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Type"].startswith("application/schema+json")
    doc = resp.get_json()
    assert doc["$schema"].startswith("https://json-schema.org/") and doc["type"] == "object"
    assert doc["$id"].endswith(f"/collections/{collection}/sortables")
    return dict(doc["properties"])


def test_collection_links_to_its_sortables(client: Any) -> None:
    doc = client.get("/collections/bike_stations?f=json").get_json()
    link = next(lk for lk in doc["links"] if lk["rel"] == SORTABLES)
    assert link["type"] == "application/schema+json"
    assert link["href"].endswith("/collections/bike_stations/sortables")
    assert client.get("/collections/no_such_layer/sortables").status_code == 404
    html = client.get("/collections/bike_stations/sortables?f=html&lang=en")
    assert html.status_code == 200 and "Sortables" in html.get_data(as_text=True)


@pytest.mark.parametrize("collection", ["bike_stations", "street_lights"])
def test_every_sortable_orders_the_items(client: Any, collection: str) -> None:
    props = _sortables(client, collection)
    assert "geom" not in props and "geometry" not in props
    assert {"id", "data_date"} <= set(props)
    distinct_keys = 0
    for name in props:
        for desc in (False, True):
            feats = _features(client, collection, sortby=f"{'-' if desc else '+'}{name}", limit=ALL)
            values = [f["id"] if name == "id" else f["properties"].get(name) for f in feats]
            assert _is_ordered([[v] for v in values], [desc]), f"sortby={'-' if desc else ''}{name} is not ordered"
        distinct_keys += len({repr(v) for v in values}) > 1
    assert distinct_keys >= 3  # the order was checked on real, varying values


def test_sortby_multiple_keys(client: Any) -> None:
    feats = _features(client, "street_lights", sortby="-lamp_type,location", limit=ALL)
    rows = [[f["properties"].get("lamp_type"), f["properties"].get("location")] for f in feats]
    assert _is_ordered(rows, [True, False])
    firsts = {r[0] for r in rows}
    assert len(firsts) > 1 and len(rows) > len(firsts)  # several groups, ties within them ordered by location
    ascending = _features(client, "street_lights", sortby="lamp_type,-location", limit=ALL)
    rows_asc = [[f["properties"].get("lamp_type"), f["properties"].get("location")] for f in ascending]
    assert _is_ordered(rows_asc, [False, True]) and rows_asc != rows


@pytest.mark.parametrize("sortby", ["no_such_property", "geom", "-name,nope"])
def test_sortby_unknown_property_is_400(client: Any, sortby: str) -> None:
    resp = client.get("/collections/bike_stations/items", query_string={"sortby": sortby})
    assert resp.status_code == 400
    assert "cannot sort by" in resp.get_json()["description"]


def test_properties_returns_only_those(client: Any) -> None:
    feats = _features(client, "bike_stations", properties="name,bikes", limit="50")
    assert len(feats) == 50
    assert all(set(f["properties"]) <= {"name", "bikes"} for f in feats)
    assert set().union(*(f["properties"] for f in feats)) == {"name", "bikes"}
    full = {f["id"]: f for f in _features(client, "bike_stations", limit="50")}
    assert all(f["properties"]["name"] == full[f["id"]]["properties"]["name"] for f in feats)
    one = client.get(f"/collections/bike_stations/items/{feats[0]['id']}", query_string={"properties": "name"})
    assert set(one.get_json()["properties"]) == {"name"}
    bad = client.get("/collections/bike_stations/items", query_string={"properties": "name,nope"})
    assert bad.status_code == 400


def test_skip_geometry_on_items_and_item(client: Any) -> None:
    skipped = _features(client, "street_lights", skipGeometry="true", limit="20")
    assert len(skipped) == 20 and all(f["geometry"] is None for f in skipped)
    kept = _features(client, "street_lights", skipGeometry="false", limit="20")
    assert all(f["geometry"]["type"] == "Point" for f in kept)
    assert [f["id"] for f in skipped] == [f["id"] for f in kept]
    fid = kept[0]["id"]
    one = client.get(f"/collections/street_lights/items/{fid}?skipGeometry=true").get_json()
    assert one["id"] == fid and one["geometry"] is None and one["properties"] == kept[0]["properties"]
    assert client.get(f"/collections/street_lights/items/{fid}").get_json()["geometry"]["type"] == "Point"
    assert client.get("/collections/street_lights/items?skipGeometry=yes").status_code == 400


@pytest.mark.parametrize("sortby", [None, "-units,location"])
def test_offset_pages_concatenate_to_one_page(client: Any, sortby: str | None) -> None:
    extra = {"sortby": sortby} if sortby else {}
    whole = [f["id"] for f in _features(client, "street_lights", limit="35", **extra)]
    assert len(whole) == 35
    pages = [[f["id"] for f in _features(client, "street_lights", limit="7", offset=str(o), **extra)]
             for o in range(0, 35, 7)]
    assert all(len(p) == 7 for p in pages)
    joined = [fid for page in pages for fid in page]
    assert joined == whole and len(set(joined)) == 35


def test_lang_changes_titles(client: Any) -> None:
    en = client.get("/collections/bike_stations?lang=en").get_json()
    ko = client.get("/collections/bike_stations?lang=ko").get_json()
    assert en["title"] == "Eoulling public bike stations" and ko["title"] == "어울링 공공자전거 대여소"
    q_en = client.get("/collections/bike_stations/queryables?lang=en").get_json()
    q_ko = client.get("/collections/bike_stations/queryables?lang=ko").get_json()
    assert q_en["properties"]["bikes"]["title"] == "Bikes" and q_ko["properties"]["bikes"]["title"] == "자전거보유대수"
    assert _sortables(client, "bike_stations", "en")["docks"]["title"] == "Docks"
    assert _sortables(client, "bike_stations", "ko")["docks"]["title"] == "거치대수"


def test_unsupported_lang_falls_back_to_korean(client: Any) -> None:
    """Any lang that is not English gets the Korean default (lang=en-US is English)."""
    fr = client.get("/collections/bike_stations?lang=fr")
    assert fr.status_code == 200 and fr.get_json()["title"] == "어울링 공공자전거 대여소"
    assert client.get("/collections/bike_stations?lang=en-US").get_json()["title"] == "Eoulling public bike stations"
