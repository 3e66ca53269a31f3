"""OGC API - Features Part 4 (create, replace, update, delete) on a copy of the real bike stations, with real
credentials (API keys from server.apikeys, tokens from the test OpenID provider): what is stored is read back from the
database, concurrent edits with one ETag give one 412, the next tile shows the edit, and the audit row holds it."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import psycopg2
import pytest
from conftest import OIDCProvider
from flask import Flask
from flask.testing import FlaskClient

from core.config import AuthConfig, LayerConfig, load_config
from server.apikeys import create_key
from server.app import close_app
from server.editing import CONFORMANCE

LAYER = "edit_test"
INTERNAL = "edit_test_internal"  # the same table, readable by `department` only
ITEMS = f"/collections/{LAYER}/items"
EPSG5186 = "http://www.opengis.net/def/crs/EPSG/0/5186"
Headers = dict[str, str]


def _sql(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.fixture(scope="module")
def app(dsn: str, loaded: dict[str, int], oidc_provider: OIDCProvider) -> Iterator[Flask]:
    """A copy of public.bike_stations (primary key, GiST index, catalog row), editable by `editor`."""
    from server.app import create_app

    assert loaded
    _sql(dsn, "DROP TABLE IF EXISTS public.edit_test")
    _sql(dsn, "CREATE TABLE public.edit_test AS SELECT * FROM public.bike_stations")
    _sql(dsn, "ALTER TABLE public.edit_test ADD PRIMARY KEY (id)")
    _sql(dsn, "CREATE INDEX edit_test_geom_idx ON public.edit_test USING gist (geom)")
    _sql(dsn, "INSERT INTO meta.datasets (table_name, title) VALUES ('public.edit_test', 'edit test') "
              "ON CONFLICT (table_name) DO UPDATE SET data_version = meta.datasets.data_version + 1")
    cfg = load_config()
    layers = dict(cfg.layers)
    base = {"title": {"ko": "편집 시험", "en": "edit test"}, "table": "public.edit_test",
            "description": {"ko": "시험", "en": "test"}, "tiles": {"minzoom": 5, "maxzoom": 16}}
    layers[LAYER] = LayerConfig.model_validate({**base, "editable": ["editor"]})
    layers[INTERNAL] = LayerConfig.model_validate({**base, "access": ["department"], "editable": ["editor"]})
    application = create_app(cfg.model_copy(update={"layers": layers, "auth": AuthConfig(
        enabled=True, issuer=oidc_provider.issuer, audience="sejong-map",
        role_map={"gis-editors": "editor", "gis-team": "department"})}))
    application.config["TESTING"] = True
    yield application
    close_app(application)
    _sql(dsn, "DROP TABLE IF EXISTS public.edit_test")
    _sql(dsn, "DELETE FROM meta.datasets WHERE table_name = 'public.edit_test'")


@pytest.fixture(scope="module")
def callers(dsn: str, oidc_provider: OIDCProvider) -> dict[str, Headers]:
    _, editor_key = create_key(dsn, "edit-test editor", ["editor"])
    _, reader_key = create_key(dsn, "edit-test reader", ["department"])
    token = oidc_provider.token("editor-park", {"roles": ["gis-editors"], "name": "박편집"})
    return {"anonymous": {}, "editor-key": {"X-API-Key": editor_key},
            "editor-token": {"Authorization": f"Bearer {token}"}, "reader": {"X-API-Key": reader_key}}


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _feature(lon: float, lat: float, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": "편집 시험 대여소", "docks": 12, **props}}


def _stored(dsn: str, fid: int) -> tuple[Any, ...] | None:
    rows = _sql(dsn, "SELECT name, docks, ST_SRID(geom), ST_X(ST_Transform(geom, 4326)), "
                     "ST_Y(ST_Transform(geom, 4326)) FROM public.edit_test WHERE id = %s", (fid,))
    return rows[0] if rows else None


def _etag(client: FlaskClient, fid: Any, headers: Headers) -> str:
    resp = client.get(f"{ITEMS}/{fid}", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["ETag"].startswith('"')
    return resp.headers["ETag"]


def _version(dsn: str) -> int:
    return int(_sql(dsn, "SELECT data_version FROM meta.datasets WHERE table_name = 'public.edit_test'")[0][0])


def test_conformance_declares_part_4(client: FlaskClient) -> None:
    assert set(CONFORMANCE) <= set(client.get("/conformance").get_json()["conformsTo"])


def test_create_replace_update_delete_round_trip(client: FlaskClient, callers: dict[str, Headers], dsn: str) -> None:
    editor = callers["editor-key"]
    version = _version(dsn)
    created = client.post(ITEMS, json=_feature(127.2891, 36.4801), headers=editor)
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    fid = int(location.rsplit("/", 1)[1])
    assert location.endswith(f"{ITEMS}/{fid}")
    assert _stored(dsn, fid) == ("편집 시험 대여소", 12, 5186, pytest.approx(127.2891), pytest.approx(36.4801))
    assert _version(dsn) == version + 1
    assert created.headers["ETag"] == _etag(client, fid, editor)

    # replace, with the geometry in EPSG:5186 (northing, easting) as the Content-Crs header says
    northing, easting = _sql(dsn, "SELECT ST_Y(g), ST_X(g) FROM ST_Transform(ST_SetSRID(ST_MakePoint(127.30, 36.50), "
                                  "4326), 5186) g")[0]
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [northing, easting]},
            "properties": {"name": "바뀐 대여소", "docks": 20}}
    replaced = client.put(f"{ITEMS}/{fid}", json=body, headers={
        **editor, "If-Match": created.headers["ETag"], "Content-Crs": f"<{EPSG5186}>"})
    assert replaced.status_code == 200, replaced.get_data(as_text=True)
    assert _stored(dsn, fid) == ("바뀐 대여소", 20, 5186, pytest.approx(127.30), pytest.approx(36.50))
    assert _sql(dsn, "SELECT kind, provider FROM public.edit_test WHERE id = %s", (fid,)) == [(None, None)]

    # update: a JSON merge patch of one property; the others stay
    patched = client.patch(f"{ITEMS}/{fid}", json={"properties": {"docks": 25}},
                           headers={**editor, "If-Match": replaced.headers["ETag"],
                                    "Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert _stored(dsn, fid) == ("바뀐 대여소", 25, 5186, pytest.approx(127.30), pytest.approx(36.50))
    assert patched.get_json()["properties"]["docks"] == 25

    deleted = client.delete(f"{ITEMS}/{fid}", headers={**editor, "If-Match": patched.headers["ETag"]})
    assert deleted.status_code == 204, deleted.get_data(as_text=True)
    assert _stored(dsn, fid) is None
    assert client.get(f"{ITEMS}/{fid}", headers=editor).status_code == 404
    assert _version(dsn) == version + 4

    audit = _sql(dsn, "SELECT operation, subject, via, before->'properties'->>'docks', after->'properties'->>'docks' "
                      "FROM meta.feature_changes WHERE layer_id = %s AND feature_id = %s ORDER BY change_id",
                 (LAYER, str(fid)))
    assert [(op, via, b, a) for op, _, via, b, a in audit] == [
        ("create", "api-key", None, "12"), ("replace", "api-key", "12", "20"), ("update", "api-key", "20", "25"),
        ("delete", "api-key", "25", None)]
    assert all(subject for _, subject, *_ in audit)
    feed = client.get(f"/collections/{LAYER}/changes?limit=4", headers=editor)
    assert feed.status_code == 200
    entries = feed.get_json()["changes"]
    assert [e["operation"] for e in entries] == ["delete", "update", "replace", "create"]  # newest first
    assert entries[1]["before"]["properties"]["docks"] == 20 and entries[1]["after"]["properties"]["docks"] == 25


def test_two_editors_one_etag_one_wins(app: Flask, callers: dict[str, Headers], dsn: str) -> None:
    fid = _sql(dsn, "SELECT min(id) FROM public.edit_test")[0][0]
    etag = _etag(app.test_client(), fid, callers["editor-key"])
    results: dict[str, int] = {}
    start = threading.Barrier(2)

    def edit(who: str, docks: int) -> None:
        start.wait()
        resp = app.test_client().patch(f"{ITEMS}/{fid}", json={"properties": {"docks": docks}},
                                       headers={**callers[who], "If-Match": etag})
        results[who] = resp.status_code

    threads = [threading.Thread(target=edit, args=("editor-key", 101)),
               threading.Thread(target=edit, args=("editor-token", 202))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == [200, 412], results
    winner = next(who for who, status in results.items() if status == 200)
    assert _sql(dsn, "SELECT docks FROM public.edit_test WHERE id = %s", (fid,)) == [
        (101 if winner == "editor-key" else 202,)]
    if winner == "editor-token":
        assert _sql(dsn, "SELECT subject_name FROM meta.feature_changes WHERE layer_id = %s AND feature_id = %s "
                         "ORDER BY change_id DESC LIMIT 1", (LAYER, str(fid))) == [("박편집",)]


def _tile(lon: float, lat: float, z: int) -> str:
    n = 2**z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/collections/{LAYER}/tiles/WebMercatorQuad/{z}/{row}/{col}"


def test_an_edit_is_in_the_next_tile(client: FlaskClient, callers: dict[str, Headers], dsn: str) -> None:
    fid, lon, lat = _sql(dsn, "SELECT id, ST_X(ST_Transform(geom, 4326)), ST_Y(ST_Transform(geom, 4326)) "
                              "FROM public.edit_test ORDER BY id DESC LIMIT 1")[0]
    url = _tile(lon, lat, 14)

    def names() -> set[str]:
        resp = client.get(url)
        assert resp.status_code == 200
        layer = mapbox_vector_tile.decode(resp.get_data()).get(LAYER, {"features": []})
        return {f["properties"].get("name") for f in layer["features"]}

    assert "타일에 보이는 새 이름" not in names()  # rendered and cached before the edit
    resp = client.patch(f"{ITEMS}/{fid}", json={"properties": {"name": "타일에 보이는 새 이름"}},
                        headers={**callers["editor-key"], "If-Match": _etag(client, fid, callers["editor-key"])})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "타일에 보이는 새 이름" in names()


@pytest.mark.parametrize(("body", "crs", "why"), [
    ({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[127.28, 36.48], [127.29, 36.49]]},
      "properties": {"name": "선"}}, None, "Point"),
    (_feature(129.0, 35.1), None, "region"),  # Busan
    (_feature(36.48, 127.28), None, "region"),  # lat/lon swapped
    (_feature(127.28, 36.48), EPSG5186, "region"),  # degrees sent as EPSG:5186 metres
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": ["a", "b"]}, "properties": {}}, None,
     "finite numbers"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [127.28]}, "properties": {}}, None, "position"),
    ({"type": "Feature", "geometry": {"type": "Circle", "coordinates": [127.28, 36.48]}, "properties": {}}, None,
     "GeoJSON geometry"),
    ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "properties": {}},
     None, "Point"),
    ({"type": "Feature", "geometry": None, "properties": {"name": "x"}}, None, "geometry"),
    (_feature(127.28, 36.48, docks="many"), None, "docks"),
    (_feature(127.28, 36.48, docks=1.5), None, "docks"),
    (_feature(127.28, 36.48, no_such_column=1), None, "unknown properties"),
    (_feature(127.28, 36.48, data_date="not a date"), None, "refused"),
    ({"type": "FeatureCollection", "features": []}, None, "Feature"),
])
def test_bad_bodies_are_400(client: FlaskClient, callers: dict[str, Headers], dsn: str, body: dict[str, Any],
                            crs: str | None, why: str) -> None:
    before = _sql(dsn, "SELECT count(*) FROM public.edit_test")
    headers = {**callers["editor-key"], **({"Content-Crs": f"<{crs}>"} if crs else {})}
    resp = client.post(ITEMS, json=body, headers=headers)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert why in resp.get_json()["description"]
    assert _sql(dsn, "SELECT count(*) FROM public.edit_test") == before


def test_if_match_is_required_and_checked(client: FlaskClient, callers: dict[str, Headers], dsn: str) -> None:
    fid = _sql(dsn, "SELECT max(id) FROM public.edit_test")[0][0]
    editor = callers["editor-key"]
    for method in ("put", "patch", "delete"):
        resp = getattr(client, method)(f"{ITEMS}/{fid}", json=_feature(127.28, 36.48), headers=editor)
        assert resp.status_code == 428, (method, resp.get_data(as_text=True))
    stale = client.delete(f"{ITEMS}/{fid}", headers={**editor, "If-Match": '"0123456789abcdef"'})
    assert stale.status_code == 412
    assert _sql(dsn, "SELECT count(*) FROM public.edit_test WHERE id = %s", (fid,)) == [(1,)]


def test_who_may_edit(client: FlaskClient, callers: dict[str, Headers], dsn: str) -> None:
    fid = _sql(dsn, "SELECT max(id) FROM public.edit_test")[0][0]
    etag = _etag(client, fid, {})
    attempts = [("post", ITEMS), ("put", f"{ITEMS}/{fid}"), ("patch", f"{ITEMS}/{fid}"),
                ("delete", f"{ITEMS}/{fid}"), ("get", f"/collections/{LAYER}/changes")]
    for method, url in attempts:
        anon = getattr(client, method)(url, json=_feature(127.28, 36.48), headers={"If-Match": etag})
        assert anon.status_code == 401 and anon.headers["WWW-Authenticate"].startswith("Bearer"), (method, url)
        reader = getattr(client, method)(url, json=_feature(127.28, 36.48), headers={**callers["reader"],
                                                                                       "If-Match": etag})
        assert reader.status_code == 403, (method, url, reader.get_data(as_text=True))
        hidden = getattr(client, method)(url.replace(LAYER, INTERNAL), json=_feature(127.28, 36.48),
                                         headers={**callers["editor-key"], "If-Match": etag})
        assert hidden.status_code == 404, (method, url)  # an editor who may not read the layer: it does not exist
    assert _etag(client, fid, {}) == etag  # nothing changed


def test_layers_without_editable_are_read_only(client: FlaskClient, callers: dict[str, Headers]) -> None:
    resp = client.post("/collections/bike_stations/items", json=_feature(127.28, 36.48),
                       headers=callers["editor-key"])
    assert resp.status_code == 403
