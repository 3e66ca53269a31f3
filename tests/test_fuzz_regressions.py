"""What tests/test_schemathesis.py found, pinned: each case failed before its fix."""

from __future__ import annotations

import requests

ITEMS = "/collections/bike_stations/items"


def test_a_long_url_reaches_the_app_and_gets_json(live_server: str) -> None:
    """A 6,000-byte request line (gunicorn's default limit is 4094) reaches Flask: an OGC exception, not HTML."""
    resp = requests.get(f"{live_server}{ITEMS}?unknown={'x' * 6000}", timeout=10)
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["code"] == "InvalidParameterValue"
    long_filter = "name <> '" + "가" * 600 + "'"  # 6,000 bytes percent-encoded, under the 8,000-character CQL2 bound
    ok = requests.get(f"{live_server}{ITEMS}", params={"filter": long_filter, "limit": 1}, timeout=10)
    assert ok.status_code == 200, ok.text[:300]
    assert len(ok.request.path_url) > 5000 and ok.json()["type"] == "FeatureCollection"


def test_a_request_line_over_gunicorns_maximum_is_still_refused(live_server: str) -> None:
    """Over 8190 bytes gunicorn answers 414 itself (HTML: gunicorn has no setting for its own error pages)."""
    resp = requests.get(f"{live_server}{ITEMS}?unknown={'x' * 9000}", timeout=10)
    assert resp.status_code == 414
