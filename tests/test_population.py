"""Population over changing 행정동: the real 세종시 인구현황 workbook (33 monthly sheets) on the 2023-09 법정동
boundaries, the month `datetime` of items and tiles, derived broken workbooks, and population as analysis demand."""

from __future__ import annotations

import contextlib
import io
import math
from datetime import date
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import openpyxl
import psycopg2
import pytest
import shapely
from process_helpers import run_process
from psycopg2 import sql

from core.config import load_config
from loaders.core import RowStats, TableSpec, drop_table, load_table
from loaders.datasets import population as pop
from loaders.errors import LoadError
from loaders.hangjeongdong import parse_workbook
from loaders.vector import read_vector

DATA = load_config().data.path()
ISSUE_TOTAL_2023_08 = 391_511  # the issue states it; the test also reads the sheet's own total row


@pytest.fixture(scope="module")
def workbook() -> tuple[bytes, str]:
    return pop.workbook_bytes(DATA / pop.FILE)


def _sheet_total(xlsx: bytes, sheet: str) -> int:
    """The number right of the sheet's '계' cell, read with openpyxl alone (not with the loader's parser)."""
    ws = openpyxl.load_workbook(io.BytesIO(xlsx), data_only=True)[sheet]
    for row in ws.iter_rows(values_only=True):
        cells = list(row)
        for j, v in enumerate(cells):
            if isinstance(v, str) and v.strip() == "계":
                return int(next(x for x in cells[j + 1:] if isinstance(x, int | float)))
    raise AssertionError(f"no 계 row in {sheet}")


def _rows(dsn: str, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_every_sheet_parses_and_totals_match(workbook: tuple[bytes, str]) -> None:
    xlsx, label = workbook
    months = parse_workbook(xlsx, label)
    assert len(months) == 33
    assert months[0].month == date(2020, 12, 1) and months[-1].month == date(2023, 8, 1)
    assert len({m.month for m in months}) == 33
    for m in months:
        assert sum(u.population for u in m.units) == m.total.population, m.sheet
        assert all(u.counts["korean"] + u.counts["foreigners"] == u.population for u in m.units), m.sheet
    last = months[-1]
    assert sum(u.population for u in last.units) == _sheet_total(xlsx, last.sheet) == ISSUE_TOTAL_2023_08
    first = months[0].grouping()
    assert first["새롬동"] == ["새롬동", "나성동"]
    assert first["도담동"] == ["도담동", "어진동", "산울동", "해밀동"]
    assert first["소담동"] == ["소담동", "반곡동", "합강동", "집현동"]
    later = last.grouping()
    assert later["한솔동"] == ["한솔동", "가람동"] and later["해밀동"] == ["해밀동", "산울동"]
    assert later["반곡동"] == ["반곡동", "집현동", "합강동"] and later["조치원읍"] == ["조치원읍"]


def test_2020_12_dodam_is_the_union_of_its_legal_dongs(dsn: str, loaded: dict[str, int]) -> None:
    umd = read_vector(DATA / pop.UMD, label=pop.UMD).frame
    parts = umd[umd["EMD_NM"].isin(["도담동", "어진동", "산울동", "해밀동"])]
    assert len(parts) == 4
    expected = shapely.union_all(parts.geometry.values).area
    rows = _rows(dsn, "SELECT legal_dongs, ST_Area(geom), area_km2, population, density FROM public.population_monthly "
                      "WHERE month = '2020-12-01' AND name = '도담동'")
    assert len(rows) == 1
    legal, area, km2, people, density = rows[0]
    assert legal == "도담동, 어진동, 산울동, 해밀동"
    assert area == pytest.approx(expected, rel=1e-6) and km2 == pytest.approx(expected / 1e6, abs=1e-4)
    assert density == pytest.approx(people / (expected / 1e6), rel=1e-3)
    names_2020 = {r[0] for r in _rows(dsn, "SELECT name FROM public.population_monthly WHERE month = '2020-12-01'")}
    assert "어진동" not in names_2020 and "해밀동" not in names_2020
    assert _rows(dsn, "SELECT count(*) FROM public.population_monthly WHERE geom IS NULL")[0][0] == 0
    quality = _rows(dsn, "SELECT quality FROM meta.datasets WHERE table_name = 'public.population_monthly'")[0][0]
    assert quality["validity"]["emptyGeometries"] == 0 and quality["rows"] == 718


def _derive(xlsx: bytes, tmp_path: Path, sheet: str, old: str, new: str) -> bytes:
    """The real workbook with one cell text replaced in one sheet (written and read back as a file; formulas are
    written as their values, as openpyxl keeps no computed values when it saves a formula)."""
    wb = openpyxl.load_workbook(io.BytesIO(xlsx), data_only=True)
    ws = wb[sheet]
    hits = [c for row in ws.iter_rows() for c in row if isinstance(c.value, str) and c.value.strip() == old]
    assert len(hits) == 1, (sheet, old, len(hits))
    hits[0].value = new
    path = tmp_path / f"derived_{len(list(tmp_path.iterdir()))}.xlsx"
    wb.save(path)
    return path.read_bytes()


DERIVED = "public.population_monthly_derived"


def test_unmatched_name_is_reported_and_kept(dsn: str, loaded: dict[str, int], workbook: tuple[bytes, str],
                                             tmp_path: Path) -> None:
    xlsx, _ = workbook
    renamed = _derive(xlsx, tmp_path, "23년 5월", "보람동", "세종보람동")
    legal = pop.legal_polygons(DATA)
    spec = TableSpec(DERIVED, pop.SPEC.columns, "MultiPolygon")
    stats = RowStats()
    conn = psycopg2.connect(dsn)
    try:
        res = load_table(dsn, spec, pop.build_from(renamed, "derived.xlsx", legal, stats), label="derived.xlsx",
                         sources=[], meta=pop.META, stats=stats)
        assert res.rows == 718
        assert any("세종보람동" in n and "no 법정동 polygon" in n for n in stats.notes), stats.notes
        assert res.quality["validity"]["emptyGeometries"] == 1
        cols = "id, month, name, legal_dongs, population, male, female, korean, foreigners, households, change, " \
               "change_pct, area_km2, density, unmatched, ST_AsEWKB(geom)"
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT " + cols + " FROM public.population_monthly ORDER BY id"))
            real = {r[0]: r for r in cur.fetchall()}
            cur.execute(sql.SQL("SELECT " + cols + " FROM {} ORDER BY id").format(spec.ident()))
            derived = {r[0]: r for r in cur.fetchall()}
        assert real.keys() == derived.keys()
        changed = {i for i in real if real[i] != derived[i]}
        bad = [r for r in derived.values() if r[14] is not None]
        assert len(bad) == 1
        row = bad[0]
        assert row[1] == date(2023, 5, 1) and row[2] == "세종보람동" and row[14] == "세종보람동" and row[15] is None
        assert row[4] == real[row[0]][4]  # the count is kept
        # the row itself, and 보람동 of 2023-06 (no same-named unit the month before: its change is unknown)
        nxt = next(i for i, r in real.items() if r[1] == date(2023, 6, 1) and r[2] == "보람동")
        assert changed == {row[0], nxt}
        assert derived[nxt][10] is None and real[nxt][10] is not None
        assert derived[nxt][:10] == real[nxt][:10] and derived[nxt][12:] == real[nxt][12:]

        # a renamed heading and a broken number are refused, and the loaded table stays as it was
        for sheet, old, new, says in (("22년 4월", "외국인 계", "외국인 합", "외국인계"),
                                      ("21년 3월", "보람동", "보람동", None)):
            broken = _derive(xlsx, tmp_path, sheet, old, new)
            if says is None:  # the population cell of that row becomes text
                wb = openpyxl.load_workbook(io.BytesIO(broken), data_only=True)
                ws = wb[sheet]
                cell = next(c for r in ws.iter_rows() for c in r if c.value == "보람동")
                ws.cell(row=cell.row, column=cell.column + 1).value = "x"
                out = io.BytesIO()
                wb.save(out)
                broken, says = out.getvalue(), "sum to"
            with pytest.raises(LoadError, match=says):
                load_table(dsn, spec, pop.build_from(broken, "broken.xlsx", legal, RowStats()), label="broken.xlsx",
                           sources=[], meta=pop.META, stats=RowStats())
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT count(*), count(*) FILTER (WHERE geom IS NULL) FROM {}").format(
                    spec.ident()))
                assert cur.fetchone() == (718, 1)
    finally:
        conn.close()
        with contextlib.suppress(LoadError):  # not loaded when the test failed early
            drop_table(dsn, DERIVED)


def _items(client: Any, query: str) -> dict[str, Any]:
    r = client.get(f"/collections/population/items?{query}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()  # type: ignore[no-any-return]


def test_items_by_month(client: Any, workbook: tuple[bytes, str]) -> None:
    xlsx, _ = workbook
    aug = _items(client, "datetime=2023-08&limit=100")
    props = [f["properties"] for f in aug["features"]]
    assert aug["numberMatched"] == len(props) == 24
    assert {p["month"] for p in props} == {"2023-08-01"}
    assert sum(p["population"] for p in props) == ISSUE_TOTAL_2023_08 == _sheet_total(xlsx, "23년 8월")
    same_day = _items(client, "datetime=2023-08-01&limit=100")
    assert sorted(f["id"] for f in same_day["features"]) == sorted(f["id"] for f in aug["features"])
    dec = _items(client, "datetime=2020-12&limit=100")
    dec_names = {f["properties"]["name"] for f in dec["features"]}
    assert sum(f["properties"]["population"] for f in dec["features"]) == _sheet_total(xlsx, "20년 12월")
    assert {f["properties"]["month"] for f in dec["features"]} == {"2020-12-01"}
    assert dec_names != {p["name"] for p in props} and "어진동" in {p["name"] for p in props} - dec_names
    both = _items(client, "datetime=2023-07/2023-08&limit=100")
    assert {f["properties"]["month"] for f in both["features"]} == {"2023-07-01", "2023-08-01"}
    for bad in ("2023-13", "2023-00", "2023-8", "2023-08/2023-07"):
        r = client.get(f"/collections/population/items?datetime={bad}")
        assert r.status_code == 400, bad
        assert r.get_json()["code"] == "InvalidParameterValue" and "Traceback" not in r.get_data(as_text=True)


def _tile_names(client: Any, tile: tuple[int, int, int], query: str) -> set[str]:
    z, x, y = tile
    r = client.get(f"/collections/population/tiles/WebMercatorQuad/{z}/{y}/{x}{query}")
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile", r.get_data(as_text=True)
    tile = mapbox_vector_tile.decode(r.data)
    return {f["properties"]["name"] for f in tile["population"]["features"]}


def test_tiles_by_month(client: Any, dsn: str) -> None:
    # the z10 tile holding 어진동 (2023-08), which in 2020-12 was part of 도담동
    lon, lat = _rows(dsn, "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 4326) p FROM "
                          "public.population_monthly WHERE month = '2023-08-01' AND name = '어진동') s")[0]
    z = 10
    tile = (z, int((lon + 180) / 360 * 2**z), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z))
    dec = _tile_names(client, tile, "?datetime=2020-12")
    aug = _tile_names(client, tile, "?datetime=2023-08")
    assert "도담동" in dec and "어진동" not in dec and "어진동" in aug
    month_names = {f["properties"]["name"] for f in _items(client, "datetime=2020-12&limit=100")["features"]}
    assert dec <= month_names
    assert _tile_names(client, tile, "") == aug  # without datetime: the latest month
    assert _tile_names(client, tile, "?datetime=2020-12") == dec  # from the cache, still that month
    r = client.get("/collections/population/tiles/WebMercatorQuad/11/800/1748?datetime=2023-13")
    assert r.status_code == 400 and r.get_json()["code"] == "InvalidParameterValue"


def _access(client: Any, demand: dict[str, Any] | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {"facilities": {"layer": "facilities", "filter": "kind = 'library'"}, "mode": "walk",
                              "minutes": [15], "network": "none", "outputs": ["summary"]}
    if demand is not None:
        inputs["demand"] = demand
    return run_process(client, "/processes/accessibility/execution", inputs)["summary"]  # type: ignore[no-any-return]


def test_population_as_accessibility_demand(client: Any, workbook: tuple[bytes, str]) -> None:
    xlsx, _ = workbook
    dec = _access(client, {"layer": "population", "month": "2020-12", "spread": "centroid"})
    assert dec["demand"]["source"] == "population 2020-12" and dec["demand"]["weight_property"] == "population"
    assert dec["demand"]["total_weight"] == _sheet_total(xlsx, "20년 12월") and dec["demand"]["units"] == 20
    assert dec["demand"]["samples"] == 20
    latest = _access(client, None)  # the default demand: population, latest month, on a grid
    assert latest["demand"]["source"] == "population 2023-08"
    assert latest["demand"]["total_weight"] == pytest.approx(ISSUE_TOTAL_2023_08, abs=0.01)
    assert any("population of 2023-08" in n for n in latest["demand"]["notes"])
    r = client.post("/processes/accessibility/execution", json={"inputs": {
        "facilities": {"layer": "facilities"}, "network": "none",
        "demand": {"layer": "population", "month": "2019-01"}}})
    assert r.status_code == 400 and "month" in r.get_json()["description"]
