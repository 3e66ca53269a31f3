"""Issue 9, points 7-9: columns typed by content, JSON/JSON Lines/xlsx tables, the data-quality report stored per
load and served, and safe layer additions (config errors, ./run database announcements, --help never connects).

Real files from ../shared/data and variants made from them at run time in tmp_path."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import psycopg2
import pytest
from db_helpers import drop_test_tables, query
from file_helpers import write_csv

from core.config import ConfigError, load_config
from loaders.core import BadRows
from loaders.errors import LoadError
from loaders.fileload import load_csv
from loaders.textio import decode_file

REPO = Path(__file__).resolve().parent.parent
DATA = load_config().data.path()
REGION = load_config().data.region
BIKE = DATA / "korea/bike-stations/전국자전거대여소표준데이터.csv"
LIGHTS = DATA / "sejong/street-lights/세종_가로등현황.csv"
PACK = DATA / "sejong/public-data-2023/세종시데이터.zip"


@pytest.fixture(scope="module")
def db(dsn: str, loaded: dict[str, int]):  # type: ignore[no-untyped-def]
    """The loaded test database; drops the public.tq_* tables this module makes."""
    yield dsn
    drop_test_tables(dsn, "tq")


def types_of(dsn: str, table: str) -> dict[str, str]:
    return dict(query(dsn, "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = "
                           "to_regclass(%s) AND attnum > 0 AND NOT attisdropped", (table,)))


def sejong_bikes() -> tuple[list[str], list[dict[str, str]]]:
    text, _ = decode_file(BIKE)
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), [r for r in reader if r["제공기관명"] == "세종특별자치시"]


def test_csv_columns_typed_by_content(db: str) -> None:
    """The national bike CSV filtered to Sejong: counts are integers, coordinates numbers, the reference date a date,
    Y/N a boolean, phone numbers and clock times stay text; the stored values equal the file's."""
    _, rows = sejong_bikes()
    res = load_csv(db, BIKE, "public.tq_bikes", where=["제공기관명=세종특별자치시"], bbox=REGION)
    assert res.rows == len(rows) == 648
    t = types_of(db, "public.tq_bikes")
    assert t["자전거보유대수"] == "bigint"
    assert t["제공기관코드"] == "text"  # typed over the whole file: other agencies' codes read B552968
    assert t["위도"] == t["경도"] == "numeric"
    assert t["데이터기준일자"] == "date"
    assert t["공기주입기비치여부"] == "boolean"
    assert t["관리기관전화번호"] == t["운영시작시각"] == t["자전거대여소명"] == "text"
    stored = query(db, "SELECT sum(자전거보유대수), max(데이터기준일자), count(*) FILTER (WHERE 공기주입기비치여부), "
                       "sum(위도) FROM public.tq_bikes")[0]
    assert stored[0] == sum(int(r["자전거보유대수"]) for r in rows if r["자전거보유대수"].strip())
    assert stored[1] == max(date.fromisoformat(r["데이터기준일자"]) for r in rows)
    assert stored[2] == sum(r["공기주입기비치여부"] == "Y" for r in rows)
    assert float(stored[3]) == pytest.approx(sum(float(r["위도"]) for r in rows), abs=1e-6)


def test_korean_number_formats_and_type_override(db: str, tmp_path: Path) -> None:
    """'1,234' is an integer, '-' is missing (not zero), a leading-zero code stays text; --types overrides, and a
    value the overriding type cannot read sets its row aside (refused by default, reported with --max-bad-rows)."""
    text, _ = decode_file(LIGHTS)
    src = list(csv.reader(io.StringIO(text)))
    header, body = src[0], src[1:301]
    extra = [[f"{(i * 7919) % 2_000_000:,}", "-" if i % 10 == 0 else f"{i * 1.5:,.1f}", f"{i:05d}"]
             for i in range(len(body))]
    path = write_csv(tmp_path / "lights_numbers.csv", [*header, "인구", "면적", "코드"],
                     [r + e for r, e in zip(body, extra, strict=True)])
    load_csv(db, path, "public.tq_numbers", bbox=REGION)
    t = types_of(db, "public.tq_numbers")
    assert (t["인구"], t["면적"], t["코드"]) == ("bigint", "numeric", "text")
    got = query(db, "SELECT 인구, 면적, 코드 FROM public.tq_numbers ORDER BY id")
    assert [g[0] for g in got] == [(i * 7919) % 2_000_000 for i in range(len(body))]
    assert [g[1] is None for g in got] == [i % 10 == 0 for i in range(len(body))]
    assert got[3][1] == pytest.approx(4.5) and got[3][2] == "00003"

    load_csv(db, path, "public.tq_numbers_text", types=["인구=text"], bbox=REGION)
    assert types_of(db, "public.tq_numbers_text")["인구"] == "text"
    assert query(db, "SELECT 인구 FROM public.tq_numbers_text WHERE id = 2")[0][0] == f"{7919:,}"

    before = query(db, "SELECT count(*) FROM meta.datasets")
    with pytest.raises(LoadError, match=r"line \d+.*column 가로등위치명"):
        load_csv(db, path, "public.tq_numbers_bad", types=["가로등위치명=integer"], bbox=REGION)
    assert query(db, "SELECT to_regclass('public.tq_numbers_bad')") == [(None,)]
    assert query(db, "SELECT count(*) FROM meta.datasets") == before
    with pytest.raises(LoadError, match="--types"):
        load_csv(db, path, "public.tq_numbers_bad", types=["없는열=integer"], bbox=REGION)

    # 면적 as integer: only the rows with a fraction are set aside, and counted as type failures
    res = load_csv(db, path, "public.tq_numbers_aside", types=["면적=integer"], bbox=REGION,
                   bad_rows=BadRows.parse("100%"))
    whole = [i for i in range(len(body)) if i % 10 == 0 or (i * 1.5).is_integer()]
    assert res.rows == len(whole)
    quality = query(db, "SELECT quality FROM meta.datasets WHERE table_name = 'public.tq_numbers_aside'")[0][0]
    assert quality["validity"]["typeFailures"] == {"면적": len(body) - len(whole)}
    assert quality["validity"]["rowsRejected"] == len(body) - len(whole)


def test_json_array_and_json_lines_load_like_a_csv(db: str, tmp_path: Path) -> None:
    """A JSON array of objects with lat/lng keys (numbers) and JSON Lines with 위도/경도 strings: every point stored
    where the source says, columns typed."""
    _, rows = sejong_bikes()
    objs = [{"name": r["자전거대여소명"], "docks": int(r["자전거보유대수"]), "lat": float(r["위도"]),
             "lng": float(r["경도"]), "updated": r["데이터기준일자"], "detail": {"phone": r["관리기관전화번호"]}}
            for r in rows]
    path = tmp_path / "bikes.json"
    path.write_text(json.dumps({"response": {"body": {"items": objs}}}, ensure_ascii=False), encoding="utf-8")
    res = load_csv(db, path, "public.tq_json", bbox=REGION)
    assert res.rows == len(objs)
    t = types_of(db, "public.tq_json")
    assert (t["docks"], t["lat"], t["updated"], t["phone"]) == ("bigint", "numeric", "date", "text")
    got = query(db, "SELECT name, docks, ST_X(ST_Transform(geom, 4326)), ST_Y(ST_Transform(geom, 4326)) "
                    "FROM public.tq_json ORDER BY id")
    for g, o in zip(got, objs, strict=True):
        assert (g[0], g[1]) == (o["name"], o["docks"])
        assert g[2] == pytest.approx(o["lng"], abs=1e-6) and g[3] == pytest.approx(o["lat"], abs=1e-6)

    lines = tmp_path / "bikes.jsonl"
    lines.write_text("\n".join(json.dumps({"대여소": r["자전거대여소명"], "위도": r["위도"], "경도": r["경도"]},
                                          ensure_ascii=False) for r in rows[:50]) + "\n", encoding="utf-8")
    assert load_csv(db, lines, "public.tq_jsonl", bbox=REGION).rows == 50
    assert query(db, "SELECT 대여소 FROM public.tq_jsonl WHERE id = 7")[0][0] == rows[6]["자전거대여소명"]


def test_xlsx_population_sheet_without_geometry(db: str) -> None:
    """The Sejong population workbook (a zip member with a CP949 name): sheet '23년 8월', stacked headings in rows
    5-7; the total row says 391,511 (SOURCE.md) and equals the sum of the 행정동 rows."""
    res = load_csv(db, PACK, "public.tq_population", member="인구현황", sheet="23년 8월", header_row="5-7",
                   geometry=False)
    assert res.rows == 25  # 계 + 24 행정동/읍면
    t = types_of(db, "public.tq_population")
    assert "geom" not in t and t["구분"] == "text"
    total_col = next(c for c in t if c.startswith("전체인구"))
    assert t[total_col] == "bigint"
    got = dict(query(db, f'SELECT 구분, "{total_col}" FROM public.tq_population'))
    assert got["계"] == 391_511
    assert sum(v for k, v in got.items() if k != "계") == 391_511
    with pytest.raises(LoadError, match="no sheet"):
        load_csv(db, PACK, "public.tq_population2", member="인구현황", sheet="24년 1월", geometry=False)


def test_quality_report_stored_with_the_load(db: str, tmp_path: Path) -> None:
    """Completeness, uniqueness and timeliness of a street-light variant computed independently from the file and
    compared with meta.datasets.quality; the report belongs to the version it was made with."""
    text, _ = decode_file(LIGHTS)
    src = list(csv.reader(io.StringIO(text)))
    header, body = src[0], [list(r) for r in src[1:801]]
    for i in range(0, len(body), 9):
        body[i][header.index("설치형태")] = ""  # blanks: completeness
    for i in range(5, 40, 7):
        body[i][header.index("위도")], body[i][header.index("경도")] = body[0][3], body[0][4]  # shared geometry
    body[10][header.index("데이터기준일자")] = "2023-07-01"
    path = write_csv(tmp_path / "lights_quality.csv", [*header[:-1], "관리번호", header[-1]],
                     [[*r[:-1], f"L{i % 790}", r[-1]] for i, r in enumerate(body)])
    res = load_csv(db, path, "public.tq_quality", bbox=REGION)
    q, version = query(db, "SELECT quality, data_version FROM meta.datasets WHERE table_name = 'public.tq_quality'")[0]
    assert q == res.quality | {"dataVersion": version, "loadedAt": q["loadedAt"]}
    assert q["dataVersion"] == version == 1 and q["rows"] == 800
    assert q["completeness"]["nulls"]["설치형태"] == sum(1 for r in body if not r[header.index("설치형태")])
    ids = Counter(f"L{i % 790}" for i in range(len(body)))
    assert q["uniqueness"]["duplicateIds"] == {"관리번호": sum(n for n in ids.values() if n > 1)}
    places = Counter((r[3], r[4]) for r in body)
    assert q["uniqueness"]["duplicateGeometries"] == sum(n for n in places.values() if n > 1)
    assert q["validity"]["outOfRegion"] == 0 and q["validity"]["rowsRejected"] == 0
    assert q["timeliness"]["column"] == "데이터기준일자" and q["timeliness"]["newest"] == "2023-07-01"
    assert q["timeliness"]["ageDays"] == (date.fromisoformat(q["timeliness"]["loadDate"]) - date(2023, 7, 1)).days
    load_csv(db, path, "public.tq_quality", bbox=REGION)  # a reload: a new version, a new report
    assert query(db, "SELECT data_version, (quality->>'dataVersion')::int FROM meta.datasets "
                     "WHERE table_name = 'public.tq_quality'") == [(2, 2)]


def test_quality_served_in_collection_and_summary_page(db: str, client) -> None:  # type: ignore[no-untyped-def]
    """The collection JSON carries its stored report, its HTML shows it, /quality lists every public layer."""
    stored = query(db, "SELECT quality FROM meta.datasets WHERE table_name = 'public.street_lights'")[0][0]
    assert stored and stored["rows"] == 15460
    doc = client.get("/collections/street_lights?f=json").get_json()
    assert doc["quality"] == stored
    html = client.get("/collections/street_lights?f=html&lang=en").get_data(as_text=True)
    assert "Completeness" in html and "Timeliness" in html and stored["timeliness"]["newest"] in html
    summary = client.get("/quality?f=json").get_json()
    public = [lid for lid, cfg in load_config().layers.items() if cfg.public]
    assert [entry["id"] for entry in summary["layers"]] == public
    lights = next(e for e in summary["layers"] if e["id"] == "street_lights")
    assert lights["quality"] == stored and lights["lastLoad"]["rows"] == 15460
    assert lights["summary"]["newest"] == stored["timeliness"]["newest"]
    page = client.get("/quality?f=html")
    assert page.status_code == 200 and "데이터 품질" in page.get_data(as_text=True)
    assert client.get("/quality?bogus=1").status_code == 400


def test_config_problems_one_line_each(tmp_path: Path) -> None:
    """A layer without description is valid; an invalid config.yml names each problem on its own line and
    ./run stops with no traceback."""
    text = (REPO / "config.yml").read_text(encoding="utf-8")
    ok = tmp_path / "ok.yml"
    ok.write_text(text + "\n  tq_extra:\n    title: {ko: 추가, en: extra}\n    table: public.tq_extra\n",
                  encoding="utf-8")
    assert load_config(ok).layers["tq_extra"].description is None
    bad = tmp_path / "bad.yml"
    bad.write_text(text.replace("table: public.street_lights", "table: street_lights") + "\nbogus: 1\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value).splitlines() == [
        "bad.yml: layers.street_lights.table: table must be schema-qualified, e.g. public.bike_stations",
        "bad.yml: bogus: unknown setting (remove it, or check its spelling); value 1"]
    env = dict(os.environ, SEJONG_CONFIG=str(bad))
    run = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--no-load"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [f"config error: {line}" for line in str(err.value).splitlines()]


def test_run_announces_database_and_help_never_connects(db: str) -> None:
    """./run load names its database without the password; --help (also of `load network`) starts nothing."""
    password = psycopg2.extensions.parse_dsn(db).get("password")
    env = dict(os.environ, DATABASE_URL=db)
    run = subprocess.run([sys.executable, "-m", "server.cli", "load", "list"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    port = psycopg2.extensions.parse_dsn(db)["port"]
    assert f"== database: postgresql://sejong_writer@127.0.0.1:{port}/" in run.stderr
    assert password and password not in run.stderr + run.stdout
    assert "public.street_lights" in run.stdout
    dead = dict(os.environ, DATABASE_URL="postgresql://nobody:x@127.0.0.1:9/none", SEJONG_CONFIG="/nonexistent.yml")
    for argv in (["load", "--help"], ["load", "network", "--help"], ["load", "csv", "--help"], ["db", "--help"]):
        run = subprocess.run([sys.executable, "-m", "server.cli", *argv], cwd=REPO, env=dead, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, (argv, run.stderr)
        assert "== database" not in run.stderr and "usage" in run.stdout.lower()
    net = subprocess.run([sys.executable, "-m", "server.cli", "load", "network", "--help"], cwd=REPO, env=dead,
                         capture_output=True, text=True, timeout=120)
    assert "loaders.osm_network" in net.stdout and "--name" in net.stdout
