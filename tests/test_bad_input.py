"""Malformed input gets a 400 (or 404/413) OGC exception, never a 500: the cases found by the security review."""

from __future__ import annotations

import json
from typing import Any

import requests

from server.app import close_app

ITEMS = "/collections/bike_stations/items"


def _ogc(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/json"
    body: dict[str, Any] = resp.get_json()
    assert body["code"] and body["description"]
    return body


def test_nul_byte_in_parameters(client: Any) -> None:
    body = _ogc(client.get(ITEMS + "?filter=name%3D%27a%00b%27"), 400)
    assert "NUL" in body["description"]
    _ogc(client.get(ITEMS + "?name=%00"), 400)
    _ogc(client.get(ITEMS + "?f%00=json"), 400)


def test_offset_beyond_bigint(client: Any) -> None:
    _ogc(client.get(ITEMS + "?offset=9223372036854775808"), 400)
    _ogc(client.get(ITEMS + f"?offset={10**30}"), 400)


def test_integer_overflow_inside_a_filter(client: Any) -> None:
    body = _ogc(client.get(ITEMS + "?filter=id%20*%209223372036854775807%20%3E%201"), 400)
    assert "out of range" in body["description"]
    _ogc(client.get(ITEMS + "?filter=docks%20%2F%200%20%3E%201"), 400)


def test_deep_json_and_bad_strings_in_process_inputs(client: Any) -> None:
    url = "/processes/echo/execution"
    deep = '{"inputs": {"echoInput": ' + "[" * 1000 + "]" * 1000 + "}}"
    body = _ogc(client.post(url, data=deep, content_type="application/json"), 400)
    assert "nested" in body["description"]
    surrogate = '{"inputs": {"echoInput": "\\ud800"}}'
    assert "surrogate" in _ogc(client.post(url, data=surrogate, content_type="application/json"), 400)["description"]
    nul = json.dumps({"inputs": {"echoInput": "a\u0000b"}})
    assert "NUL" in _ogc(client.post(url, data=nul, content_type="application/json"), 400)["description"]
    ok = client.post(url, json={"inputs": {"echoInput": "세종 ok"}})
    assert ok.status_code == 200 and "세종 ok" in ok.get_data(as_text=True)


def test_body_over_the_limit_is_413(client: Any) -> None:
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    big = json.dumps({"inputs": {"echoInput": "x" * (limit + 10)}})
    body = _ogc(client.post("/processes/echo/execution", data=big, content_type="application/json"), 413)
    assert body["code"] == "PayloadTooLarge"


def test_non_ascii_feature_id_over_gunicorn(live_server: str) -> None:
    """Full-width digits in the path: a 404 OGC exception (the Link header carries the path percent-encoded)."""
    resp = requests.get(f"{live_server}{ITEMS}/１", timeout=10)
    assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["code"] == "NotFound"


def test_health_is_503_with_retry_after_when_the_database_is_down() -> None:
    from server.app import create_app

    app = create_app(dsn="postgresql://nobody:nothing@127.0.0.1:9/nowhere?connect_timeout=2")
    try:
        resp = app.test_client().get("/health")
        assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
        assert resp.get_json()["code"] == "ServiceUnavailable" and "postgis" not in resp.get_data(as_text=True)
    finally:
        close_app(app)


def test_health_shows_no_versions(client: Any) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}
