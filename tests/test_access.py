"""Access per layer (config.yml `access:`), on the real internal layer `cctv` (1,318 Sejong CCTV points).

For every kind of path: an anonymous caller gets 401 with WWW-Authenticate (or does not see the layer in lists), a
caller with another role (OIDC token or API key) gets 404 (or does not see it), a `department` caller gets 200.
Tokens come from the real OpenID provider fixture and keys from server.apikeys; nothing is patched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import mapbox_vector_tile
import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.oidc import OIDCProvider
from core.config import AuthConfig, LayerConfig, load_config
from server import pmtiles_export
from server.apikeys import create_key
from server.app import close_app

LAYER = "cctv"
ROLE_MAP = {"gis-team": "department", "parks-team": "parks"}
TILE = "12/1601/3496"  # Sejong City Hall and Government Complex: CCTV, bike stations, street lights
Headers = dict[str, str]


@pytest.fixture(scope="module")
def app(dsn: str, loaded: dict[str, int], oidc_provider: OIDCProvider) -> Iterator[Flask]:
    """Auth on, trusting the test provider; the bundled data (cctv included) loaded."""
    from server.app import create_app

    assert loaded  # the bundled load ran (cctv is one of its datasets)
    cfg = load_config()
    application = create_app(cfg.model_copy(update={"auth": AuthConfig(
        enabled=True, issuer=oidc_provider.issuer, audience="sejong-map", role_map=ROLE_MAP)}))
    application.config["TESTING"] = True
    yield application
    close_app(application)


@pytest.fixture(scope="module")
def callers(dsn: str, oidc_provider: OIDCProvider) -> dict[str, Headers]:
    """Request headers of each kind of caller."""
    _, dept_key = create_key(dsn, "cctv-test department", ["department"])
    _, other_key = create_key(dsn, "cctv-test editor", ["editor"])
    dept_token = oidc_provider.token("dept-kim", {"roles": ["gis-team"]})
    other_token = oidc_provider.token("park-lee", {"roles": ["parks-team"]})
    return {
        "anonymous": {},
        "other-token": {"Authorization": f"Bearer {other_token}"},
        "other-key": {"X-API-Key": other_key},
        "department-token": {"Authorization": f"Bearer {dept_token}"},
        "department-key": {"Authorization": f"Bearer {dept_key}"},
    }


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


OTHERS = ("other-token", "other-key")
DEPARTMENT = ("department-token", "department-key")

PATHS = [
    f"/collections/{LAYER}",
    f"/collections/{LAYER}?f=html",
    f"/collections/{LAYER}/items?limit=5",
    f"/collections/{LAYER}/items/1",
    f"/collections/{LAYER}/queryables",
    f"/collections/{LAYER}/sortables",
    f"/collections/{LAYER}/tiles",
    f"/collections/{LAYER}/tiles/WebMercatorQuad",
    f"/collections/{LAYER}/tiles/WebMercatorQuad/{TILE}",
    f"/tiles/{LAYER}/12/3496/1600.mvt",
    f"/collections/{LAYER}/tilejson.json",
    f"/styles/{LAYER}",
    f"/map/download/{LAYER}.csv?limit=3",
    f"/tiles/WebMercatorQuad/{TILE}?collections={LAYER}",
]


def test_the_internal_layer_is_the_real_cctv_data(dsn: str, loaded: dict[str, int]) -> None:
    cfg = load_config().layers[LAYER]
    assert cfg.access == ["department"] and not cfg.public
    import psycopg2

    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT purpose), sum(cameras) FROM public.cctv")
        rows, purposes, cameras = cur.fetchone()
    conn.close()
    assert rows == 1318 and purposes > 1 and cameras >= rows


@pytest.mark.parametrize("path", PATHS)
def test_every_path_kind(client: FlaskClient, callers: dict[str, Headers], path: str) -> None:
    anon = client.get(path)
    assert anon.status_code == 401, anon.get_data(as_text=True)
    assert anon.headers["WWW-Authenticate"].startswith("Bearer realm=") and "error=" not in anon.headers[
        "WWW-Authenticate"]
    assert b"CCTV" not in anon.get_data() and "방범" not in anon.get_data(as_text=True)
    for who in OTHERS:
        resp = client.get(path, headers=callers[who])
        expected = 400 if "collections=" in path else 404  # as unknown as a typo in ?collections=
        assert resp.status_code == expected, (who, resp.get_data(as_text=True))
        assert "WWW-Authenticate" not in resp.headers
    for who in DEPARTMENT:
        resp = client.get(path, headers=callers[who])
        assert resp.status_code == 200, (who, resp.get_data(as_text=True))
        assert "private" in resp.headers.get("Cache-Control", "") and "public" not in resp.headers["Cache-Control"]
        assert "Authorization" in resp.headers.get("Vary", "")


def test_an_unknown_collection_looks_the_same_to_other_roles(client: FlaskClient,
                                                             callers: dict[str, Headers]) -> None:
    for who in OTHERS:
        hidden = client.get(f"/collections/{LAYER}/items", headers=callers[who])
        unknown = client.get("/collections/no_such_layer/items", headers=callers[who])
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.get_json()["description"].replace(LAYER, "X") == \
            unknown.get_json()["description"].replace("no_such_layer", "X")


def _ids(doc: dict[str, Any], key: str) -> set[str]:
    return {entry["id"] for entry in doc[key]}


LISTS: list[tuple[str, Callable[[FlaskClient, Headers], bool]]] = [
    ("/collections", lambda c, h: LAYER in _ids(c.get("/collections", headers=h).get_json(), "collections")),
    ("/collections?f=html", lambda c, h: f"/collections/{LAYER}" in c.get("/collections?f=html", headers=h)
     .get_data(as_text=True)),
    ("/map/layers.json", lambda c, h: LAYER in _ids(c.get("/map/layers.json", headers=h).get_json(), "layers")),
    ("/quality", lambda c, h: LAYER in _ids(c.get("/quality", headers=h).get_json(), "layers")),
    ("/styles", lambda c, h: LAYER in _ids(c.get("/styles", headers=h).get_json(), "styles")),
    ("/styles/default", lambda c, h: any(lyr.get("source-layer") == LAYER
                                         for lyr in c.get("/styles/default", headers=h).get_json()["layers"])),
    ("/tilejson.json", lambda c, h: LAYER in {v["id"] for v in c.get("/tilejson.json", headers=h)
                                              .get_json()["vector_layers"]}),
    ("/tiles/WebMercatorQuad", lambda c, h: LAYER in _ids(c.get("/tiles/WebMercatorQuad", headers=h).get_json(),
                                                          "layers")),
    ("/api", lambda c, h: f"/collections/{LAYER}/items" in c.get("/api", headers=h).get_json()["paths"]),
    ("/api enum", lambda c, h: LAYER in json.dumps(c.get("/api", headers=h).get_json())),
    ("/ (html)", lambda c, h: f"/collections/{LAYER}" in c.get("/?f=html", headers=h).get_data(as_text=True)),
]


@pytest.mark.parametrize(("name", "listed"), LISTS, ids=[n for n, _ in LISTS])
def test_lists_show_the_layer_only_to_its_role(client: FlaskClient, callers: dict[str, Headers], name: str,
                                               listed: Callable[[FlaskClient, Headers], bool]) -> None:
    assert not listed(client, callers["anonymous"])
    for who in OTHERS:
        assert not listed(client, callers[who]), who
    for who in DEPARTMENT:
        assert listed(client, callers[who]), who


def test_lists_with_the_layer_are_private(client: FlaskClient, callers: dict[str, Headers]) -> None:
    anon = client.get("/collections")
    assert "private" not in anon.headers.get("Cache-Control", "")
    dept = client.get("/collections", headers=callers["department-key"])
    assert dept.headers["Cache-Control"] == "private"
    api = client.get("/api", headers=callers["department-token"]).get_json()
    op = api["paths"][f"/collections/{LAYER}/items"]["get"]
    assert "401" in op["responses"] and op["security"]
    assert "securitySchemes" not in client.get("/api").get_json()["components"]  # the public document is unchanged


def _layers(data: bytes) -> dict[str, int]:
    return {name: len(layer["features"]) for name, layer in mapbox_vector_tile.decode(data).items()}


def test_dataset_tile_never_leaks_a_cached_internal_tile(app: Flask, callers: dict[str, Headers]) -> None:
    from server.services import of
    from server.tilecache import TileCache

    of(app).tile_cache = TileCache(64 * 1024 * 1024)  # empty: the department's request below fills it
    client = app.test_client()
    path = f"/tiles/WebMercatorQuad/{TILE}"
    dept = client.get(path, headers=callers["department-token"])  # warms the cache with the internal layer
    assert dept.status_code == 200 and "private" in dept.headers["Cache-Control"]
    dept_layers = _layers(dept.get_data())
    assert dept_layers.get(LAYER, 0) > 0 and dept_layers.get("bike_stations", 0) > 0
    again = client.get(path, headers=callers["department-key"])  # the same roles: the cached tile, same ETag
    assert again.headers["ETag"] == dept.headers["ETag"] and again.get_data() == dept.get_data()

    for who in ("anonymous", *OTHERS):
        resp = client.get(path, headers=callers[who])
        assert resp.status_code == 200
        assert resp.headers["ETag"] != dept.headers["ETag"]
        layers = _layers(resp.get_data())
        assert LAYER not in layers and layers.get("bike_stations") == dept_layers["bike_stations"], who
        assert b"cctv" not in resp.get_data() and "방범".encode() not in resp.get_data()
        # the department's ETag is not a validator for anyone else
        revalidated = client.get(path, headers={**callers[who], "If-None-Match": dept.headers["ETag"]})
        assert revalidated.status_code == 200 and LAYER not in _layers(revalidated.get_data())
    anon = client.get(path)
    assert anon.headers["Cache-Control"].startswith("public")  # public tiles are cached as before
    assert client.get(path, headers={"If-None-Match": anon.headers["ETag"]}).status_code == 304


def test_public_tiles_keep_their_key(client: FlaskClient, callers: dict[str, Headers]) -> None:
    path = f"/collections/bike_stations/tiles/WebMercatorQuad/{TILE}"
    anon = client.get(path)
    dept = client.get(path, headers=callers["department-token"])
    assert anon.status_code == dept.status_code == 200
    assert anon.headers["ETag"] == dept.headers["ETag"] and anon.get_data() == dept.get_data()


def test_collection_tile_of_the_internal_layer(client: FlaskClient, callers: dict[str, Headers]) -> None:
    path = f"/collections/{LAYER}/tiles/WebMercatorQuad/{TILE}"
    first = client.get(path, headers=callers["department-key"])
    assert _layers(first.get_data()).get(LAYER, 0) > 0
    assert client.get(path).status_code == 401  # after the cache holds it
    assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 401


def test_filtered_items_and_counts(client: FlaskClient, callers: dict[str, Headers]) -> None:
    doc = client.get(f"/collections/{LAYER}/items?limit=1", headers=callers["department-token"]).get_json()
    assert doc["numberMatched"] == 1318
    assert client.get(f"/collections/{LAYER}/items?filter=purpose='생활방범'").status_code == 401


def _execute(client: FlaskClient, headers: Headers, layer_id: str) -> Any:
    return client.post("/processes/accessibility/execution", headers=headers, json={"inputs": {
        "facilities": {"layer": layer_id}, "mode": "walk", "minutes": [5, 10],
        "demand": {"layer": "admin_areas", "weight": "voters", "cell_m": 500}, "network": "none",
        "outputs": ["summary"]}})


def test_process_inputs(client: FlaskClient, callers: dict[str, Headers]) -> None:
    anon = _execute(client, {}, LAYER)
    assert anon.status_code == 401 and "WWW-Authenticate" in anon.headers, anon.get_data(as_text=True)
    for who in OTHERS:
        resp = _execute(client, callers[who], LAYER)
        unknown = _execute(client, callers[who], "no_such_layer")
        assert resp.status_code == unknown.status_code == 400, resp.get_data(as_text=True)
        text = resp.get_json()["description"]
        assert "unknown layer 'cctv'" in text and text.count(LAYER) == 1  # not offered among the known layers
    for who in DEPARTMENT:
        resp = _execute(client, callers[who], LAYER)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json()["summary"]["facilities"]["count"] == 1318


def test_process_layer_check_uses_the_submitting_caller(app: Flask) -> None:
    """processes.inputs.layer reads the caller from the job's services, not from a request."""
    from core.errors import NotFound, OGCError
    from processes import inputs
    from processes.errors import InputError
    from server.auth import Identity
    from server.services import of

    svc = of(app)
    cfg = svc.config.processes
    base = {"registry": svc.registry, "read_db": svc.db}
    dept = Identity("dept", frozenset({"department"}), "api-key")
    assert inputs.layer({**base, "caller": dept}, LAYER, cfg, "facilities").id == LAYER
    with pytest.raises(OGCError) as err:
        inputs.layer(base, LAYER, cfg, "facilities")  # no caller captured: anonymous
    assert err.value.http_status == 401
    with pytest.raises(InputError):
        inputs.layer({**base, "caller": Identity("x", frozenset({"parks"}), "oidc")}, LAYER, cfg, "facilities")
    with pytest.raises(NotFound):
        svc.registry.get(LAYER, Identity("x", frozenset(), "oidc"))


def test_pmtiles_export_refuses_internal_layers(app: Flask, tmp_path: Any) -> None:
    with pytest.raises(pmtiles_export.ExportError, match="internal"):
        pmtiles_export.export(app, LAYER, 11, 11, tmp_path / "cctv.pmtiles")
    assert not (tmp_path / "cctv.pmtiles").exists()


def test_access_config() -> None:
    base = {"title": {"ko": "가", "en": "a"}, "table": "public.t"}
    assert LayerConfig.model_validate(base).access == "public"
    assert LayerConfig.model_validate({**base, "public": False}).access == []  # deprecated alias: nobody
    assert LayerConfig.model_validate({**base, "access": ["editor", "department", "editor"]}).access == [
        "department", "editor"]
    assert LayerConfig.model_validate({**base, "access": []}).readable_by(frozenset({"admin"})) is False
    for bad in ({"access": "internal"}, {"access": ["Department!"]}, {"public": True, "access": ["department"]}):
        with pytest.raises(ValueError):
            LayerConfig.model_validate({**base, **bad})
