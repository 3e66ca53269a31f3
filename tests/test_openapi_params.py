"""/api cannot drift from the routes: every Flask route is documented, with exactly the query parameters it accepts."""

from __future__ import annotations

import re
from typing import Any

import mapbox_vector_tile
import pytest

from server.params_spec import ROUTES, openapi_path

SAMPLES = {"collection_id": "bike_stations", "layer_id": "bike_stations", "tms_id": "WebMercatorQuad",
           "z": "12", "row": "1601", "col": "3496", "x": "3496", "y": "1601", "style_id": "default",
           "fontstack": "Nanum Gothic Regular", "glyph_range": "0-255", "filename": "map.js",
           "process_id": "echo", "job_id": "no-such-job"}
UNKNOWN = re.compile(r"unknown query parameter '([^']+)'; this endpoint (?:accepts: (.*)|accepts no query parameters)$")


def _url(rule: str, feature_id: str) -> str:
    samples = {**SAMPLES, "feature_id": feature_id}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: samples[m.group(1)], rule)


def _call(client: Any, method: str, url: str, query: dict[str, str]) -> Any:
    return client.open(url, method=method, query_string=query, json={} if method == "POST" else None)


def _unknown_rejection(resp: Any) -> set[str] | None:
    """The accepted names a 400 'unknown query parameter' lists, or None when the response is not one."""
    if resp.status_code != 400 or not resp.is_json:
        return None
    match = UNKNOWN.match(resp.get_json().get("description", ""))
    if match is None:
        return None
    return set(match.group(2).split(", ")) if match.group(2) else set()


def _sample_value(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "array":
        item = schema.get("items", {})
        return str(item["enum"][0]) if "enum" in item else "1,1,2,2" if item.get("type") == "number" else "name"
    if "default" in schema:
        return str(schema["default"]).lower()
    return {"integer": "1", "number": "1", "boolean": "true"}.get(schema.get("type", ""), "x")


@pytest.fixture()
def api(client: Any) -> dict[str, Any]:
    resp = client.get("/api?f=json")
    assert resp.status_code == 200
    return resp.get_json()["paths"]


@pytest.fixture()
def feature_id(client: Any) -> str:
    return str(client.get("/collections/bike_stations/items?limit=1").get_json()["features"][0]["id"])


def test_every_route_is_documented_with_exactly_the_parameters_it_accepts(client: Any, api: dict[str, Any],
                                                                          feature_id: str) -> None:
    checked = 0
    for rule in client.application.url_map.iter_rules():
        template = openapi_path(rule.rule)
        assert template in api, f"{rule.rule} ({template}) is not in /api"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            op = api[template].get(method.lower())
            assert op is not None, f"{method} {template} is not in /api"
            url = _url(rule.rule, feature_id)
            concrete = template.replace("{collectionId}", SAMPLES["collection_id"])
            if concrete in api:  # a collection's own path also documents its queryables
                op = api[concrete][method.lower()]
            documented = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
            if ROUTES[template][method.lower()].files:
                assert not documented, f"{template} serves files; it documents no query parameters"
                continue
            accepts = _unknown_rejection(_call(client, method, url, {"zz-not-a-parameter": "1"}))
            assert accepts is not None, f"{method} {url} does not reject an unknown query parameter"
            assert accepts == set(documented), f"{method} {template}: accepted {accepts}, /api has {set(documented)}"
            for name, param in documented.items():
                resp = _call(client, method, url, {name: _sample_value(param["schema"])})
                assert _unknown_rejection(resp) is None, f"{method} {template} rejects its documented {name!r}"
            checked += 1
    assert checked >= 35  # every API route, not a vacuous loop


def test_known_drift_is_gone(api: dict[str, Any]) -> None:
    def names(path: str) -> set[str]:
        return {p["name"] for p in api[path]["get"]["parameters"] if p["in"] == "query"}

    assert "skipGeometry" in names("/collections/{collectionId}/items/{featureId}")
    assert "skipGeometry" in names("/collections/bike_stations/items/{featureId}")
    tile = "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
    assert {"filter", "filter-lang", "filter-crs", "f"} <= names(tile)
    from core.tms import TILE_MATRIX_SETS

    tms = next(p for p in api[tile]["get"]["parameters"] if p["name"] == "tileMatrixSetId")
    assert tms["schema"]["enum"] == list(TILE_MATRIX_SETS)


def test_tile_filter_binds_values_with_percent_and_quote(client: Any) -> None:
    """A tile filter whose string literals hold '%' and an apostrophe gives the same features as /items."""
    names = [f["properties"]["name"] for f in
             client.get("/collections/bike_stations/items?limit=10000&properties=name").get_json()["features"]]
    word = next(n[n.index("_") + 1:][:2] for n in names if "_" in n)  # a real fragment of station names
    cases = [f"name LIKE '%{word}%'", f"name = 'it''s 100%' OR name LIKE '{names[0][:3]}%'"]
    meta = client.get("/collections/bike_stations/tiles/WebMercatorQuad").get_json()
    lim = next(x for x in meta["tileMatrixSetLimits"] if x["tileMatrix"] == "9")
    tiles = [f"/collections/bike_stations/tiles/WebMercatorQuad/9/{row}/{col}"
             for row in range(lim["minTileRow"], lim["maxTileRow"] + 1)
             for col in range(lim["minTileCol"], lim["maxTileCol"] + 1)]
    for cql in cases:
        items = client.get("/collections/bike_stations/items", query_string={"filter": cql, "limit": "10000"})
        assert items.status_code == 200, items.get_data(as_text=True)
        expected = {f["id"] for f in items.get_json()["features"]}
        assert expected and len(expected) < len(names)  # the filter selects: not everything, not nothing
        got: set[int] = set()
        for url in tiles:
            tile = client.get(url, query_string={"filter": cql})
            assert tile.status_code == 200, tile.get_data(as_text=True)
            layer = mapbox_vector_tile.decode(tile.get_data()).get("bike_stations", {"features": []})
            got |= {f["id"] for f in layer["features"]}
        assert got == expected
