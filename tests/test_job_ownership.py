"""Jobs belong to their creator: owner-only status, results, dismissal and listing (admin: all), per-identity quotas.

Callers are real: API keys made by server.apikeys.create_key, checked by the server's own authenticator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from flask import Flask
from process_helpers import points, wait_for

from core.config import AuthConfig, ProcessesConfig, Quota, Quotas, load_config
from server import auth, services
from server.apikeys import create_key
from server.app import close_app
from server.processes_api import owner_of

ECHO = "/processes/echo/execution"
SITING = "/processes/soc-siting/execution"
QUOTAS = Quotas(anonymous=Quota(concurrent_jobs=2, max_points=10, max_facilities=5, max_time_limit_s=5),
                authenticated=Quota(concurrent_jobs=1), roles={"admin": None})


@pytest.fixture(scope="module")
def app(dsn: str, loaded: dict[str, int]) -> Iterator[Flask]:
    """Authentication on (API keys only) with the quotas above."""
    from server.app import create_app

    cfg = load_config()
    app = create_app(cfg.model_copy(update={"auth": AuthConfig(enabled=True),
                                            "processes": cfg.processes.model_copy(update={"quotas": QUOTAS})}))
    app.config["TESTING"] = True
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def keys(dsn: str) -> dict[str, dict[str, str]]:
    """Headers of three real API keys: two departments (different subjects) and an administrator."""
    made = {name: create_key(dsn, f"ownership test {name}", roles)[1]
            for name, roles in (("alice", ["department"]), ("bob", ["department"]), ("admin", ["admin"]))}
    return {name: {"X-API-Key": key} for name, key in made.items()}


def _echo(client: Any, headers: dict[str, str], pause: int = 0, status: int = 201) -> str:
    resp = client.post(ECHO, json={"inputs": {"echoInput": "mine", "pause": pause}},
                       headers={**headers, "Prefer": "respond-async"})
    assert resp.status_code == status, resp.get_data(as_text=True)
    return str(resp.get_json()["jobID"]) if status == 201 else ""


def _listed(client: Any, headers: dict[str, str]) -> set[str]:
    resp = client.get("/jobs?limit=1000", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {j["jobID"] for j in resp.get_json()["jobs"]}


def _wait_done(client: Any, job_id: str, headers: dict[str, str]) -> None:
    future = services.of(client.application).runtime.future(job_id)
    if future is not None:
        future.result(timeout=30)
    # a job taken from the shared queue (every local worker was busy) has no local future: poll its status
    status = wait_for(lambda: client.get(f"/jobs/{job_id}", headers=headers).get_json()["status"],
                      lambda s: s not in ("accepted", "running"), 60, f"job {job_id} ending")
    assert status == "successful"


def test_only_the_owner_and_admin_see_a_job(app: Flask, keys: dict[str, dict[str, str]], dsn: str) -> None:
    client = app.test_client()
    alice, bob, admin = keys["alice"], keys["bob"], keys["admin"]
    job = _echo(client, alice)
    _wait_done(client, job, alice)
    assert client.get(f"/jobs/{job}/results", headers=alice).get_data(as_text=True) == "mine"
    assert job in _listed(client, alice) and job in _listed(client, admin)
    assert job not in _listed(client, bob)
    for method, path in (("get", f"/jobs/{job}"), ("get", f"/jobs/{job}/results"), ("delete", f"/jobs/{job}")):
        resp = getattr(client, method)(path, headers=bob)
        assert resp.status_code == 404 and resp.get_json()["code"] == "NoSuchJob", (method, path)
        anonymous = getattr(client, method)(path)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(f"/jobs/{job}", headers=alice).get_json()["status"] == "successful"  # bob's DELETE did nothing
    assert client.get(f"/jobs/{job}", headers=admin).status_code == 200
    assert client.delete(f"/jobs/{job}", headers=admin).get_json()["status"] == "dismissed"
    store = services.of(app).runtime.store
    row = store.get(job)
    assert row is not None and row.owner and row.owner.startswith("api-key:") and row.owner_roles == ["department"]


def test_anonymous_jobs_are_reachable_only_by_their_id(app: Flask, keys: dict[str, dict[str, str]]) -> None:
    client = app.test_client()
    job = _echo(client, {})
    _wait_done(client, job, {})
    assert client.get(f"/jobs/{job}/results").get_data(as_text=True) == "mine"
    listing = client.get("/jobs")  # anonymous jobs are never listed: their id is their only key
    assert listing.status_code == 401 and "WWW-Authenticate" in listing.headers
    assert client.get(f"/jobs/{job}", headers=keys["alice"]).status_code == 404
    assert job not in _listed(client, keys["alice"]) and job in _listed(client, keys["admin"])


def test_concurrent_jobs_quota_is_429_with_retry_after(app: Flask, keys: dict[str, dict[str, str]]) -> None:
    client = app.test_client()
    alice = keys["alice"]
    first = _echo(client, alice, pause=60)
    over = client.post(ECHO, json={"inputs": {"echoInput": "more"}}, headers={**alice, "Prefer": "respond-async"})
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert "concurrent_jobs" in over.get_json()["description"]
    sync = client.post(ECHO, json={"inputs": {"echoInput": "more"}}, headers=alice)  # synchronous ones count too
    assert sync.status_code == 429
    admin_jobs = [_echo(client, keys["admin"], pause=60) for _ in range(2)]  # admin: no quota
    for job in admin_jobs:
        assert client.delete(f"/jobs/{job}", headers=keys["admin"]).status_code == 200
    bob_job = _echo(client, keys["bob"])  # another identity has its own count
    assert client.delete(f"/jobs/{first}", headers=alice).status_code == 200
    again = _echo(client, alice)  # a dismissed job no longer counts
    for job, who in ((again, "alice"), (bob_job, "bob")):
        _wait_done(client, job, keys[who])


def test_execution_size_quota_is_400_naming_the_limit(app: Flask, keys: dict[str, dict[str, str]]) -> None:
    client = app.test_client()
    rng = np.random.default_rng(7)
    origin = np.array([220000.0, 530000.0])
    small = {"candidates": points(origin + rng.uniform(0, 3000, (4, 2))), "p": 1, "network": "none", "minutes": 15,
             "model": "p-median", "outputs": ["summary"]}
    big_demand = {**small, "demand": points(origin + rng.uniform(0, 3000, (25, 2)))}
    resp = client.post(SITING, json={"inputs": big_demand})
    assert resp.status_code == 400 and "max_points" in resp.get_json()["description"], resp.get_json()
    assert client.post(SITING, json={"inputs": big_demand}, headers=keys["bob"]).status_code == 200  # no such limit
    few = {**small, "demand": points(origin + rng.uniform(0, 3000, (8, 2)))}
    many_sites = {**few, "existing": points(origin + rng.uniform(0, 3000, (3, 2)))}
    resp = client.post(SITING, json={"inputs": many_sites})
    assert resp.status_code == 400 and "max_facilities" in resp.get_json()["description"]
    resp = client.post(SITING, json={"inputs": {**few, "time_limit": 20}})
    assert resp.status_code == 400 and "max_time_limit_s" in resp.get_json()["description"]
    assert client.post(SITING, json={"inputs": few}).status_code == 200  # the default time_limit is lowered to 5 s


def test_a_zero_quota_closes_analyses(dsn: str, loaded: dict[str, int], keys: dict[str, dict[str, str]]) -> None:
    from server.app import create_app

    cfg = load_config()
    closed = Quotas(anonymous=Quota(concurrent_jobs=0), authenticated=Quota(concurrent_jobs=0))
    app = create_app(cfg.model_copy(update={"auth": AuthConfig(enabled=True),
                                            "processes": cfg.processes.model_copy(update={"quotas": closed})}))
    try:
        client = app.test_client()
        anonymous = client.post(ECHO, json={"inputs": {"echoInput": "x"}})
        assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
        assert client.post(ECHO, json={"inputs": {"echoInput": "x"}}, headers=keys["alice"]).status_code == 403
    finally:
        close_app(app)


def test_quota_of_a_caller() -> None:
    quotas = Quotas(anonymous=Quota(concurrent_jobs=1), authenticated=Quota(concurrent_jobs=2, max_points=100),
                    roles={"analyst": Quota(concurrent_jobs=4, max_points=50), "planner": Quota(max_points=80),
                           "admin": None})
    assert quotas.of(True, frozenset({"admin"})) == Quota(concurrent_jobs=1)  # roles need credentials
    assert quotas.of(False, frozenset({"department"})) == Quota(concurrent_jobs=2, max_points=100)
    assert quotas.of(False, frozenset({"analyst", "planner"})) == Quota(concurrent_jobs=None, max_points=80)
    assert quotas.of(False, frozenset({"analyst", "admin"})) is None
    assert ProcessesConfig().quotas.of(True, frozenset()) is None  # no quotas configured: none apply
    assert owner_of(auth.Identity("k1", frozenset(), "api-key")) == "api-key:k1"
    assert owner_of(auth.Identity("api-key:k1", frozenset(), "api-key")) == "api-key:k1"
    assert owner_of(auth.Identity("api-key:k1", frozenset(), "oidc")) == "oidc:api-key:k1"  # no spoofing a key
    assert owner_of(auth.ANONYMOUS) is None
