"""Result layers (`"store": true`) belong to their job's owner: readable by the owner and admin only, everywhere.

A department's accessibility analysis of the internal `cctv` layer must not turn into a public collection. Callers
are real API keys (server.apikeys.create_key) checked by the server's own authenticator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.config import AuthConfig, load_config
from server import services
from server.apikeys import create_key
from server.app import close_app

Headers = dict[str, str]
TILE = "12/1601/3496"  # Sejong City Hall and Government Complex: CCTV points nearby


@pytest.fixture(scope="module")
def app(dsn: str, loaded: dict[str, int]) -> Iterator[Flask]:
    """Authentication on (API keys), the bundled data (cctv included) loaded."""
    from server.app import create_app

    assert loaded
    cfg = load_config()
    application = create_app(cfg.model_copy(update={"auth": AuthConfig(enabled=True)}))
    application.config["TESTING"] = True
    yield application
    close_app(application)


@pytest.fixture(scope="module")
def keys(dsn: str) -> dict[str, Headers]:
    """Two department keys (different owners) and an administrator's key."""
    made = {name: create_key(dsn, f"result-access test {name}", roles)[1]
            for name, roles in (("alice", ["department"]), ("bob", ["department"]), ("admin", ["admin"]))}
    return {"anonymous": {}, **{name: {"X-API-Key": key} for name, key in made.items()}}


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _store(client: FlaskClient, headers: Headers, facilities: str) -> list[str]:
    """Run accessibility with `"store": true` synchronously; the ids of the stored result layers."""
    resp = client.post("/processes/accessibility/execution", headers=headers, json={"inputs": {
        "facilities": {"layer": facilities}, "mode": "walk", "minutes": [5, 10],
        "demand": {"grid": {"cell_m": 1000, "area": "admin_areas"}}, "network": "none",
        "store": True, "outputs": ["summary"]}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    services.of(client.application).registry.refresh()  # do not wait for the NOTIFY
    ids = [lyr["id"] for lyr in resp.get_json()["summary"]["layers"]]
    assert ids
    return ids


@pytest.fixture(scope="module")
def alices(app: Flask, keys: dict[str, Headers]) -> list[str]:
    """Result layers of alice's analysis of the internal cctv layer."""
    return _store(app.test_client(), keys["alice"], "cctv")


def _paths(lid: str) -> list[str]:
    return [f"/collections/{lid}", f"/collections/{lid}?f=html", f"/collections/{lid}/items?limit=2",
            f"/collections/{lid}/items/1", f"/collections/{lid}/queryables", f"/collections/{lid}/tiles",
            f"/collections/{lid}/tiles/WebMercatorQuad", f"/collections/{lid}/tilejson.json",
            f"/map/download/{lid}.csv?limit=3", f"/tiles/WebMercatorQuad/{TILE}?collections={lid}"]


def _listed(client: FlaskClient, headers: Headers) -> set[str]:
    ids = {c["id"] for c in client.get("/collections", headers=headers).get_json()["collections"]
           if c.get("itemType") == "feature"}  # the map's layers; coverage collections have their own control
    mapped = {lyr["id"] for lyr in client.get("/map/layers.json", headers=headers).get_json()["layers"]}
    assert ids == mapped
    return ids


def test_owner_and_admin_read_others_do_not(client: FlaskClient, keys: dict[str, Headers], alices: list[str]) -> None:
    for who in ("alice", "admin"):
        assert set(alices) <= _listed(client, keys[who])
    for who in ("anonymous", "bob"):
        assert not set(alices) & _listed(client, keys[who])
    for lid in alices:
        for path in _paths(lid):
            unknown = 400 if "?collections=" in path else 404  # as for an unknown id: 400 names the known ones
            for who, status in (("alice", 200), ("admin", 200), ("anonymous", 401), ("bob", unknown)):
                resp = client.get(path, headers=keys[who])
                assert status == 200 or resp.get_json()["description"].count(lid) == 1  # only echoed, not offered
                assert resp.status_code == status, (who, path, resp.get_data(as_text=True)[:300])
                if status == 401:
                    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
                if status == 200:
                    assert "public" not in resp.headers.get("Cache-Control", "")  # never in a shared cache


def test_the_answer_for_bob_is_that_of_an_unknown_id(client: FlaskClient, keys: dict[str, Headers],
                                                     alices: list[str]) -> None:
    mine = client.get(f"/collections/{alices[0]}/items", headers=keys["bob"])
    unknown = client.get("/collections/job_0000000000000000_none/items", headers=keys["bob"])
    assert mine.status_code == unknown.status_code == 404
    assert mine.get_json()["description"].replace(alices[0], "X") == \
        unknown.get_json()["description"].replace("job_0000000000000000_none", "X")


def test_a_cached_tile_stays_with_its_owner(client: FlaskClient, keys: dict[str, Headers],
                                            alices: list[str]) -> None:
    lid = next(lid for lid in alices if lid.endswith("_demand"))
    path = f"/collections/{lid}/tiles/WebMercatorQuad/{TILE}"
    first = client.get(path, headers=keys["alice"])
    assert first.status_code == 200 and first.get_data()
    for who, status in (("bob", 404), ("anonymous", 401)):
        resp = client.get(path, headers={**keys[who], "If-None-Match": first.headers["ETag"]})
        assert resp.status_code == status
    composite = f"/tiles/WebMercatorQuad/{TILE}"
    assert lid.encode() in client.get(composite, headers=keys["alice"]).get_data()
    assert lid.encode() not in client.get(composite, headers=keys["bob"]).get_data()


def test_result_layers_as_process_inputs(client: FlaskClient, keys: dict[str, Headers], alices: list[str]) -> None:
    """A job runs with its submitter's identity: bob cannot analyse alice's result, alice can."""
    lid = next(lid for lid in alices if lid.endswith("_demand"))
    body = {"inputs": {"facilities": {"layer": lid}, "mode": "walk", "minutes": [5],
                       "demand": {"layer": "admin_areas", "weight": "voters", "cell_m": 1000}, "network": "none",
                       "outputs": ["summary"]}}
    assert client.post("/processes/accessibility/execution", headers=keys["alice"], json=body).status_code == 200
    resp = client.post("/processes/accessibility/execution", headers=keys["bob"], json=body)
    assert resp.status_code == 400 and lid not in resp.get_json()["description"].split("use one of")[-1]
    assert client.post("/processes/accessibility/execution", json=body).status_code in (400, 401)


def test_an_anonymous_jobs_results_stay_public(client: FlaskClient, keys: dict[str, Headers]) -> None:
    ids = _store(client, {}, "bike_stations")
    for who in ("anonymous", "bob", "alice"):
        assert set(ids) <= _listed(client, keys[who])
        assert client.get(f"/collections/{ids[0]}/items?limit=1", headers=keys[who]).status_code == 200


def test_a_result_whose_job_is_gone_is_admin_only(client: FlaskClient, keys: dict[str, Headers], dsn: str) -> None:
    """Fail closed: when the job row (and so the owner) is gone before its results expire, only admin reads them."""
    ids = _store(client, keys["bob"], "bike_stations")
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM meta.jobs WHERE job_id = "
                        "(SELECT job_id FROM meta.result_layers WHERE layer_id = %s)", (ids[0],))
            assert cur.rowcount == 1
    finally:
        conn.close()
    services.of(client.application).registry.refresh()
    path = f"/collections/{ids[0]}/items?limit=1"
    statuses: dict[str, Any] = {who: client.get(path, headers=keys[who]).status_code for who in keys}
    assert statuses == {"anonymous": 401, "alice": 404, "bob": 404, "admin": 200}
