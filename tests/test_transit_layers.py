"""Public transport and city layers from the 세종시 data pack: packed degree-minutes, bus stops and routes, city
point layers, welfare facilities without positions, and the bus-stop accessibility case on the live server."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests
from psycopg2 import sql

from core.config import load_config
from loaders import transit
from loaders.coords import ddmm_to_degrees
from loaders.core import BadRows, RowStats, SourceFile, load_table
from loaders.datasets import bus_routes, bus_stops, public_institutions
from loaders.errors import LoadError
from loaders.textio import decode_bytes, member_names

DATA = load_config().data
ZIP = DATA.path() / transit.ZIP
REGION = DATA.region
NEW_LAYERS = ("bus_stops", "bus_routes", "public_institutions", "fuel_stations", "city_parks")


def _member(fragment: str) -> tuple[str, list[dict[str, str]]]:
    """(member name, rows) of a CSV member of the real zip, read with the csv module only."""
    names = [n for n in member_names(ZIP) if fragment in n and n.endswith(".csv")]
    assert len(names) == 1, names
    with zipfile.ZipFile(ZIP) as zf:
        text, _ = decode_bytes(zf.read(member_names(ZIP)[names[0]]), "cp949", names[0])
    return names[0], list(csv.DictReader(io.StringIO(text)))


def _query(dsn: str, q: str | sql.Composable, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(q, args)
        rows = cur.fetchall()
    conn.close()
    return rows


def _dm(text: str) -> float:
    """Independent reading of DDDMM.mmmm for the checks: degrees are the digits before the last two of the integer."""
    whole, _, frac = text.strip().partition(".")
    return int(whole[:-2]) + float(f"{whole[-2:]}.{frac or 0}") / 60


# --- packed degree-minutes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("packed", "degrees"), [
    ("12715.3348", 127 + 15.3348 / 60), ("3628.5228", 36 + 28.5228 / 60), (12700.0, 127.0), ("3659.9999", 36.99999833),
])
def test_ddmm_decodes(packed: Any, degrees: float) -> None:
    assert ddmm_to_degrees(packed) == pytest.approx(degrees, abs=1e-8)


@pytest.mark.parametrize("bad", ["12775.0000", "3660.0", "-12715.3", "nan", "", "12715,33x"])
def test_ddmm_refuses_what_is_not_packed(bad: str) -> None:
    with pytest.raises(ValueError):
        ddmm_to_degrees(bad)


def test_degrees_are_never_read_as_packed_in_the_region() -> None:
    """A plain degree value given where packed degree-minutes are expected lands far outside Sejong: refused."""
    with pytest.raises(ValueError, match="outside the region"):
        transit.place_ddmm("127.2556", "36.4754", REGION)
    x, y = transit.place_ddmm("12715.3348", "3628.5228", REGION)
    assert 200_000 < x < 260_000 and 400_000 < y < 470_000  # EPSG:5186 metres around Sejong


@pytest.mark.parametrize(("text", "expected"), [
    ("10~15분", (10, 15)), ("6-12분", (6, 12)), ("20분", (20, 20)), ("평일 15분 주말 및 공휴일 20분", (15, 20)),
    ("", (None, None)), (" ", (None, None)),
])
def test_headway_text(text: str, expected: tuple[int | None, int | None]) -> None:
    assert transit.parse_headway(text) == expected


def test_sequence_positions_agree_with_the_files_own_gps_columns() -> None:
    """노선별 정류장현황 holds each position twice: packed (X좌표) and decimal (GPS_X); the decoding matches it."""
    _, rows = _member(transit.SEQUENCES)
    worst = max(max(abs(ddmm_to_degrees(r["X좌표"]) - float(r["GPS_X"])),
                    abs(ddmm_to_degrees(r["Y좌표"]) - float(r["GPS_Y"]))) for r in rows)
    assert worst < 1e-5, worst  # about 1 m


# --- bus stops ---------------------------------------------------------------------------------------------------

def test_every_stop_stored_inside_sejong(dsn: str, loaded: dict[str, int]) -> None:
    _, rows = _member(transit.STOPS)
    x0, y0, x1, y1 = REGION
    valid = [r for r in rows if x0 <= _dm(r["정류장x위치값"]) <= x1 and y0 <= _dm(r["정류장Y위치값"]) <= y1]
    assert loaded["public.bus_stops"] == len(valid) > 1900
    stored = _query(dsn, "SELECT count(*), count(*) FILTER (WHERE ST_Within(ST_Transform(geom, 4326), "
                         "ST_MakeEnvelope(%s, %s, %s, %s, 4326))) FROM public.bus_stops", tuple(REGION))
    assert stored[0] == (len(valid), len(valid))
    probe = valid[len(valid) // 2]
    lon, lat = _query(dsn, "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(geom, 4326) g FROM public.bus_stops "
                           "WHERE id = %s) s", (int(probe["정류장ID"]),))[0]
    assert lon == pytest.approx(_dm(probe["정류장x위치값"]), abs=1e-6)
    assert lat == pytest.approx(_dm(probe["정류장Y위치값"]), abs=1e-6)


def test_stop_routes_headways_and_boardings(dsn: str, loaded: dict[str, int]) -> None:
    _, seq = _member(transit.SEQUENCES)
    _, busiest = _member(transit.BUSIEST)
    served: dict[str, set[str]] = {}
    for r in seq:
        served.setdefault(r["정류장ID"], set()).add(r["노선번호"])
    rows = {r[0]: r[1:] for r in _query(dsn, "SELECT id, routes, route_count, headway_min, boardings, alightings "
                                             "FROM public.bus_stops")}
    for stop_id, routes in served.items():
        got = rows[int(stop_id)]
        assert set((got[0] or "").split(", ")) == routes and got[1] == len(routes)
    with_headway = _query(dsn, "SELECT count(*), min(headway_min), max(headway_min) FROM public.bus_stops "
                               "WHERE headway_min IS NOT NULL")[0]
    assert with_headway[0] > 0 and with_headway[1] >= 1
    attached = 0
    for b in busiest:
        stop_id = int(re.search(r"\((\d+)\)$", b["정류장명"]).group(1))  # type: ignore[union-attr]
        if stop_id in rows:
            attached += 1
            assert rows[stop_id][3:] == (int(b["승차"]), int(b["하차"]))
    assert attached == _query(dsn, "SELECT count(*) FROM public.bus_stops WHERE boardings IS NOT NULL")[0][0] > 0


def _derived_zip(tmp_path: Path, fragment: str, edit: Any, encoding: str = "cp949") -> Path:
    """A copy of the real zip whose member `fragment` is rewritten by edit(text) -> text, in `encoding`."""
    out = tmp_path / transit.ZIP
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(ZIP) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, info in member_names(ZIP).items():
            data = src.read(info)
            if fragment in name:
                text, _ = decode_bytes(data, "cp949", name)
                data = edit(text).encode(encoding)
            dst.writestr(name, data)
    return out


def _break_stop(text: str, line_no: int, x: str) -> tuple[str, str]:
    """The stops text with line `line_no`'s 정류장x위치값 replaced; returns (text, that stop's id)."""
    lines = text.splitlines(keepends=True)
    cells = next(csv.reader([lines[line_no - 1]]))
    header = next(csv.reader([lines[0]]))
    cells[header.index("정류장x위치값")] = x
    lines[line_no - 1] = ",".join(cells) + "\r\n"
    return "".join(lines), cells[header.index("정류장ID")]


def _load_stops(dsn: str, path: Path, table: str, bad_rows: BadRows | None = None) -> Any:
    stats = RowStats()
    spec = replace(bus_stops.SPEC, table=table, indexes=[])
    return load_table(dsn, spec, bus_stops.stop_rows(path, stats, REGION), label=str(path.name),
                      sources=[SourceFile(transit.ZIP)], meta=bus_stops.META, stats=stats, bad_rows=bad_rows)


def test_broken_stop_is_refused_then_set_aside(dsn: str, loaded: dict[str, int], tmp_path: Path) -> None:
    """Policy of the loaders: a stop that cannot be placed refuses the load (the old table stays as it was);
    allowed by the rejects policy, it is set aside and listed in the catalog's rejects report, the rest stored."""
    table = "public.test_bus_stops_derived"
    good = _load_stops(dsn, ZIP, table)
    before = _query(dsn, "SELECT rows_loaded, data_version FROM meta.datasets WHERE table_name = %s", (table,))
    broken_id = ""

    def edit(text: str) -> str:
        nonlocal broken_id
        text, broken_id = _break_stop(text, 11, "12775.1234")  # 75 minutes: not degree-minutes
        return text

    derived = _derived_zip(tmp_path, transit.STOPS, edit)
    with pytest.raises(LoadError, match=r"line 11, column 정류장x위치값/정류장Y위치값: .*75\.1234 minutes"):
        _load_stops(dsn, derived, table)
    ident = sql.Identifier(*table.split("."))
    assert _query(dsn, sql.SQL("SELECT count(*) FROM {}").format(ident))[0][0] == good.rows
    assert _query(dsn, "SELECT rows_loaded, data_version FROM meta.datasets WHERE table_name = %s",
                  (table,)) == before
    res = _load_stops(dsn, derived, table, BadRows(1))
    assert res.rows == good.rows - 1 and len(res.rejects) == 1
    stored = _query(dsn, sql.SQL("SELECT count(*), count(*) FILTER (WHERE id = %s) FROM {}").format(ident),
                    (int(broken_id),))[0]
    assert stored == (good.rows - 1, 0)
    rejects, quality = _query(dsn, "SELECT rejects, quality FROM meta.datasets WHERE table_name = %s", (table,))[0]
    assert [(r["line"], "75.1234 minutes" in r["reason"]) for r in rejects] == [(11, True)]
    assert quality["validity"]["rowsRejected"] == 1 and quality["validity"]["outOfRegion"] == 0


def test_stop_outside_the_region_is_rejected_not_moved(dsn: str, loaded: dict[str, int], tmp_path: Path) -> None:
    """A position that decodes fine but lies outside Sejong (Seoul, 126° 58') is a reject, never a point."""
    derived = _derived_zip(tmp_path, transit.STOPS, lambda t: _break_stop(t, 5, "12658.0000")[0])
    res = _load_stops(dsn, derived, "public.test_bus_stops_outside", BadRows(1))
    assert len(res.rejects) == 1 and "outside the region" in res.rejects[0]["reason"]
    assert res.quality["validity"]["outOfRegion"] == 0


def test_derived_variants_renamed_column_and_utf8(dsn: str, loaded: dict[str, int], tmp_path: Path) -> None:
    renamed = _derived_zip(tmp_path / "renamed", transit.STOPS, lambda t: t.replace("정류장x위치값", "X", 1))
    with pytest.raises(LoadError, match=r"missing required column.*정류장x위치값"):
        _load_stops(dsn, renamed, "public.test_bus_stops_renamed")
    assert _query(dsn, "SELECT to_regclass('public.test_bus_stops_renamed')")[0][0] is None
    utf8 = _derived_zip(tmp_path / "utf8", transit.STOPS, lambda t: t, encoding="utf-8")
    res = _load_stops(dsn, utf8, "public.test_bus_stops_utf8")
    assert res.rows == loaded["public.bus_stops"]
    same = _query(dsn, "SELECT count(*) FROM public.test_bus_stops_utf8 u JOIN public.bus_stops b USING (id) "
                       "WHERE u.name = b.name AND ST_Equals(u.geom, b.geom)")[0][0]
    assert same == res.rows


# --- bus routes --------------------------------------------------------------------------------------------------

def test_route_lines_follow_the_stop_sequence(dsn: str, loaded: dict[str, int]) -> None:
    _, seq = _member(transit.SEQUENCES)
    _, routes = _member(transit.ROUTES)
    per_route: dict[str, list[dict[str, str]]] = {}
    for r in seq:
        per_route.setdefault(r["노선번호"], []).append(r)
    assert loaded["public.bus_routes"] == len(routes)
    stored = {r[0]: r[1:] for r in _query(
        dsn, "SELECT route_no, ST_NPoints(geom), stops, ST_AsText(ST_Transform(ST_StartPoint(geom), 4326)), "
             "ST_AsText(ST_Transform(ST_EndPoint(geom), 4326)), ST_Length(geom) / 1000, length_km "
             "FROM public.bus_routes")}
    for route_no, stops in per_route.items():
        npoints, count, start, end, length, length_km = stored[route_no]
        assert npoints == count == len(stops), route_no
        ordered = sorted(stops, key=lambda s: int(s["정류장순서"]))
        for point, stop in ((start, ordered[0]), (end, ordered[-1])):
            lon, lat = map(float, point.removeprefix("POINT(").rstrip(")").split())
            assert (lon, lat) == pytest.approx((_dm(stop["X좌표"]), _dm(stop["Y좌표"])), abs=1e-6), route_no
        assert length_km == pytest.approx(length, abs=1e-3)


def test_route_length_against_published_distance(dsn: str, loaded: dict[str, int]) -> None:
    """노선거리 is stored as published beside the computed length; mismatches are flagged, not hidden."""
    _, routes = _member(transit.ROUTES)
    published = {r["노선번호"]: float(r["노선거리"]) for r in routes}
    rows = _query(dsn, "SELECT route_no, ST_Length(geom) / 1000, distance_published, distance_matches "
                       "FROM public.bus_routes")
    expected_mismatch = 0
    for route_no, km, stored_published, matches in rows:
        assert stored_published == published[route_no]
        mismatch = abs(km - published[route_no]) > bus_routes.DISTANCE_TOLERANCE * km
        expected_mismatch += mismatch
        assert matches is (not mismatch), route_no
    flagged = _query(dsn, "SELECT count(*) FROM public.bus_routes WHERE NOT distance_matches")[0][0]
    assert flagged == expected_mismatch > 0


def test_route_headways_and_the_routes_without_them(dsn: str, loaded: dict[str, int]) -> None:
    _, services = _member(transit.SERVICES)
    by_no = {r["노선번호"]: r["배차간격"] for r in services}
    rows = _query(dsn, "SELECT route_no, headway_min, headway_max, headway_text FROM public.bus_routes")
    missing = 0
    for route_no, lo, hi, text in rows:
        published = by_no.get(route_no, by_no.get(route_no.split("-")[0], ""))
        numbers = [int(n) for n in re.findall(r"\d+", published)]
        if not numbers:
            missing += 1
            assert lo is None and hi is None, route_no
        else:
            assert (lo, hi) == (min(numbers), max(numbers)) and text == published.strip(), route_no
    quality = _query(dsn, "SELECT quality FROM meta.datasets WHERE table_name = 'public.bus_routes'")[0][0]
    assert quality["completeness"]["nulls"]["headway_min"] == missing > 0


# --- welfare facilities: addresses only -------------------------------------------------------------------------

def test_welfare_facilities_listed_with_reason_in_no_spatial_table(dsn: str, loaded: dict[str, int]) -> None:
    _, rows = _member(public_institutions.WELFARE)
    assert loaded[public_institutions.WELFARE_TABLE] == len(rows) > 0
    stored = _query(dsn, "SELECT name, address, not_placed_reason FROM public.welfare_facilities ORDER BY id")
    assert [(s[0], s[1]) for s in stored] == [(r["시설명"], r["소재지"]) for r in rows]
    assert all("not geocoded" in s[2] for s in stored)
    assert _query(dsn, "SELECT count(*) FROM geometry_columns WHERE f_table_schema = 'public' "
                       "AND f_table_name = 'welfare_facilities'")[0][0] == 0
    spatial = [t for (t,) in _query(
        dsn, "SELECT d.table_name FROM meta.datasets d JOIN geometry_columns g "
             "ON d.table_name = g.f_table_schema || '.' || g.f_table_name "
             "WHERE d.sources @> %s::jsonb", (json.dumps([{"file": transit.ZIP}]),))]
    assert "public.bus_stops" in spatial
    names = [r["시설명"] for r in rows]
    for table in spatial:
        schema, name = table.split(".")
        has_name = _query(dsn, "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
                               "AND table_name = %s AND column_name = 'name'", (schema, name))[0][0]
        if has_name:
            found = _query(dsn, sql.SQL("SELECT count(*) FROM {} WHERE name = ANY(%s)").format(
                sql.Identifier(schema, name)), (names,))[0][0]
            assert found == 0, table
    report = _query(dsn, "SELECT quality FROM meta.datasets WHERE table_name = %s",
                    (public_institutions.WELFARE_TABLE,))[0][0]
    assert report["rows"] == len(rows) and "emptyGeometries" not in report["validity"]


# --- the served layers -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer_id", NEW_LAYERS)
def test_items_have_korean_property_titles(client: Any, layer_id: str) -> None:
    cfg = load_config().layers[layer_id]
    doc = client.get(f"/collections/{layer_id}/items?limit=5").get_json()
    assert doc["numberMatched"] > 0 and len(doc["features"]) == 5
    assert set(doc["features"][0]["properties"]) <= set(cfg.titles)
    page = client.get(f"/collections/{layer_id}/items?limit=5&f=html").get_data(as_text=True)
    for column, (ko, _) in cfg.titles.items():
        if column != "id":
            assert f'title="{column}">{ko}</th>' in page, (layer_id, column)
    queryables = client.get(f"/collections/{layer_id}/queryables").get_json()["properties"]
    assert all(queryables[c]["title"] == cfg.titles[c][0] for c in queryables if c in cfg.titles)
    collection = client.get(f"/collections/{layer_id}").get_json()
    assert "세종특별자치시" in json.dumps(collection["attribution"], ensure_ascii=False)


# --- accessibility: share of residents within a 5-minute walk of a frequent bus stop -----------------------------

def _share(base: str, headway: int) -> dict[str, Any]:
    body = {"inputs": {"facility_type": "bus_stop",
                       "facilities": {"layer": "bus_stops", "filter": f"headway_min <= {headway}"},
                       "demand": {"layer": "admin_areas", "weight": "voters"}, "outputs": ["summary"]}}
    resp = requests.post(f"{base}/processes/accessibility/execution", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    summary: dict[str, Any] = resp.json()["summary"]
    return summary


def test_bus_stop_accessibility_by_headway(live_server: str) -> None:
    preset = load_config().processes.presets["bus_stop"]
    assert preset.mode == "walk" and preset.minutes == [5] and "TCQSM" in preset.source
    every10, every30 = _share(live_server, 10), _share(live_server, 30)
    shares = []
    for summary in (every10, every30):
        (threshold,) = summary["thresholds"]
        assert threshold["minutes"] == 5
        assert 0 <= threshold["share"] <= 1
        shares.append(threshold["share"])
    assert shares[0] <= shares[1]
    print(f"\nvoters within a 5-minute walk of a bus stop served every 10 / 30 min or better: {shares[0]:.1%} / "
          f"{shares[1]:.1%} ({every10['thresholds'][0]['covered_weight']:,.0f} / "
          f"{every30['thresholds'][0]['covered_weight']:,.0f}); {every10['method']}")
    bad = requests.post(f"{live_server}/processes/accessibility/execution", timeout=30, json={"inputs": {
        "facility_type": "bus_stop", "facilities": {"layer": "bus_stops", "filter": "headway_min <= 'x'; DROP"},
        "demand": {"layer": "admin_areas", "weight": "voters"}}})
    assert bad.status_code == 400 and "Traceback" not in bad.text

