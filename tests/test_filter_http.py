"""Part 3 over HTTP on the real layers: CQL2 text and JSON, queryables, and filter errors as 400s."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import psycopg2
import pytest

from server import services


def count(client: Any, collection: str, **params: str) -> int:
    """numberMatched of a filtered items request (must be 200)."""
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    resp = client.get(f"/collections/{collection}/items?limit=1&{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return int(resp.get_json()["numberMatched"])


def sql_count(app: Any, where: str) -> int:
    """The same question asked of PostGIS directly (a hand-written predicate)."""
    with psycopg2.connect(services.of(app).db.dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM public.bike_stations WHERE {where}")  # test-only literal SQL
        return int(cur.fetchone()[0])


@pytest.mark.parametrize(("cql", "where"), [
    ("docks >= 20", "docks >= 20"),
    ("docks IS NULL", "docks IS NULL"),
    ("name LIKE '%아파트%'", "name LIKE '%아파트%'"),
    ("bikes BETWEEN 5 AND 10", "bikes BETWEEN 5 AND 10"),
    ("kind IN ('무인대여소', '유인대여소')", "kind IN ('무인대여소', '유인대여소')"),
    ("NOT (bikes > 10) AND docks > 5", "NOT (bikes > 10) AND docks > 5"),
    ("S_INTERSECTS(geom, BBOX(127.24, 36.46, 127.30, 36.52))",
     "ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(127.24, 36.46, 127.30, 36.52, 4326), 5186))"),
    ("S_DWITHIN(geom, POINT(127.2890 36.4800), 1000, meters)",
     "ST_DWithin(geom, ST_Transform(ST_SetSRID(ST_MakePoint(127.2890, 36.4800), 4326), 5186), 1000)"),
])
def test_cql2_text_matches_sql(client: Any, app: Any, cql: str, where: str) -> None:
    expected = sql_count(app, where)
    assert count(client, "bike_stations", filter=cql) == expected


def test_cql2_json_equals_text(client: Any) -> None:
    text = count(client, "bike_stations", filter="bikes >= 10 AND name LIKE '%동%'")
    doc = {"op": "and", "args": [{"op": ">=", "args": [{"property": "bikes"}, 10]},
                                 {"op": "like", "args": [{"property": "name"}, "%동%"]}]}
    as_json = count(client, "bike_stations", filter=json.dumps(doc), **{"filter-lang": "cql2-json"})
    assert text == as_json and 0 < text < 648


def test_temporal_filter_on_readings(client: Any) -> None:
    n_2019 = count(client, "air_quality_readings",
                   filter="T_INTERSECTS(measured_at, INTERVAL('2019-01-01T00:00:00Z', '2019-12-31T23:59:59Z'))")
    n_dt = count(client, "air_quality_readings", datetime="2019-01-01T00:00:00Z/2019-12-31T23:59:59Z")
    assert n_2019 == n_dt and n_2019 > 1000


@pytest.mark.parametrize(("filt", "fragment"), [
    ("nosuch = 1", "nosuch"),
    ("docks >= ", "filter"),
    ("docks = 'many'", "many"),
    ("name = 'x'; DROP TABLE public.bike_stations; --'", "filter"),
])
def test_bad_filters_are_400(client: Any, filt: str, fragment: str) -> None:
    resp = client.get(f"/collections/bike_stations/items?filter={quote(filt)}")
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["code"] == "InvalidParameterValue" and fragment in body["description"]
    assert count(client, "bike_stations") == 648  # the table is still there


def test_injection_in_string_is_just_a_value(client: Any) -> None:
    assert count(client, "bike_stations", filter="name = 'x''; DROP TABLE public.bike_stations; --'") == 0
    assert count(client, "bike_stations") == 648


def test_unsupported_filter_lang(client: Any) -> None:
    resp = client.get("/collections/bike_stations/items?filter=docks>1&filter-lang=ecql")
    assert resp.status_code == 400
