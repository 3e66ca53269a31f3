"""Issue 9, points 1-6: the loaders never store wrong data silently and leave nothing behind when they refuse.

Real files from ../shared/data and variants made from them at run time (re-encoded, re-projected, rows broken)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import file_helpers
import numpy as np
import pyogrio
import pytest
from db_helpers import drop_test_tables, query

from core.config import load_config
from loaders.bundled import load_bundled
from loaders.core import BadRows
from loaders.crs import transform
from loaders.errors import LoadError
from loaders.fileload import load_csv, load_file
from loaders.textio import detect_encoding

REPO = Path(__file__).resolve().parent.parent
DATA = load_config().data.path()
REGION = load_config().data.region
GRID = DATA / "seoul/pop-grid-gangdong"
UMD = DATA / "sejong/umd-2023/LSMD_ADM_SECT_UMD_36_202309.shp"
ADMIN = DATA / "sejong/admin-dong-2021/hangjeongdong_세종특별자치시.geojson"
LIGHTS = DATA / "sejong/street-lights/세종_가로등현황.csv"
BIKE = DATA / "korea/bike-stations/전국자전거대여소표준데이터.csv"
PACK = DATA / "sejong/public-data-2023/세종시데이터.zip"
SGG = DATA / "korea/boundaries-kostat-2018/skorea-municipalities-2018-topo-simple.json"


@pytest.fixture(scope="module")
def db(dsn: str, loaded: dict[str, int]):  # type: ignore[no-untyped-def]
    """The loaded test database; drops the public.trust_* tables this module makes."""
    yield dsn
    drop_test_tables(dsn, "trust")


def state(dsn: str) -> tuple:  # type: ignore[type-arg]
    """Every table of the database and the whole catalog."""
    tables = query(dsn, "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                        "('pg_catalog', 'information_schema') ORDER BY 1, 2")
    cat = query(dsn, "SELECT table_name, rows_loaded, data_version, sources::text FROM meta.datasets ORDER BY 1")
    return tables, cat


def refused(dsn: str, match: str, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """fn must raise LoadError matching `match` and leave every table and the catalog exactly as they were."""
    before = state(dsn)
    with pytest.raises(LoadError, match=match):
        fn(*args, **kwargs)
    assert state(dsn) == before


def copy_shapefile(src: Path, folder: Path, drop_cpg: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part in src.parent.glob(f"{src.stem}.*"):
        if not (drop_cpg and part.suffix.lower() == ".cpg"):
            shutil.copy(part, folder / part.name)
    return folder / src.name


def csv_text(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("cp949"))))
    return rows[0], rows[1:]


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> Path:
    """The trust tests' CSVs: LF lines."""
    return file_helpers.write_csv(path, header, rows, encoding, newline="\n")


# ---------------------------------------------------------------- 1. encoding by content

def test_utf8_dbf_without_cpg_is_read_as_utf8(db: str, tmp_path: Path) -> None:
    shp = copy_shapefile(GRID / "nlsp_021001001.shp", tmp_path / "utf8")
    assert not shp.with_suffix(".cpg").exists() and shp.with_suffix(".dbf").read_bytes()[29] == 0  # LDID 0
    res = load_file(db, shp, "public.trust_grid", bbox=None)
    assert res.rows == 2596
    row = query(db, "SELECT count(*) FILTER (WHERE gid LIKE '다사%%'), count(*) FILTER (WHERE gid LIKE '%%떎%%'), "
                    "sum(val) FROM public.trust_grid")[0]
    assert row == (2596, 0, 456461)
    # the same grid re-encoded as CP949 (still no .cpg): the same text is stored
    frame = pyogrio.read_dataframe(shp, encoding="utf-8")
    cp = tmp_path / "cp949" / "grid.shp"
    cp.parent.mkdir()
    pyogrio.write_dataframe(frame, cp, encoding="cp949")
    cp.with_suffix(".cpg").unlink(missing_ok=True)
    assert b"\xb4\xd9\xbb\xe7" in cp.with_suffix(".dbf").read_bytes()  # '다사' in CP949
    load_file(db, cp, "public.trust_grid_cp949", bbox=None)
    assert query(db, "SELECT count(*) FROM public.trust_grid a JOIN public.trust_grid_cp949 b USING (gid)")[0][0] \
        == 2596


def test_csv_encodings_and_mojibake_refused(db: str, tmp_path: Path) -> None:
    header, rows = csv_text(LIGHTS)
    part = rows[:300]
    utf8 = write_csv(tmp_path / "lights_utf8.csv", header, part, "utf-8")
    assert detect_encoding(utf8.read_bytes()) == "utf-8" and detect_encoding(LIGHTS.read_bytes()) == "cp949"
    load_csv(db, utf8, "public.trust_lights_enc", bbox=REGION)
    stored = query(db, "SELECT string_agg(t::text, '|' ORDER BY id) FROM public.trust_lights_enc t")[0][0]
    cp = write_csv(tmp_path / "lights_cp.csv", header, part, "cp949")
    load_csv(db, cp, "public.trust_lights_enc", bbox=REGION)
    assert query(db, "SELECT string_agg(t::text, '|' ORDER BY id) FROM public.trust_lights_enc t")[0][0] == stored
    assert "세종" in stored
    # UTF-8 text that was once read as Latin-1 (세종 -> 'ì„¸ì¢…') is never stored
    broken = [[c.encode("utf-8").decode("cp1252", errors="replace") if i == 0 else c for i, c in enumerate(r)]
              for r in part]
    bad = write_csv(tmp_path / "lights_mojibake.csv", header, broken, "utf-8")
    refused(db, r"lights_mojibake\.csv: column .*(Latin-1|U\+FFFD).*--encoding", load_csv, db, bad,
            "public.trust_lights_enc", bbox=REGION)


def test_zip_member_names_in_cp949(db: str, tmp_path: Path) -> None:
    """A zip written as Korean Windows does: CP949 member names, no UTF-8 flag, no Unicode-path field."""
    with zipfile.ZipFile(PACK) as zf:
        info = next(i for i in zf.infolist() if "정류장정보" in i.filename)
        data, name = zf.read(info), info.filename

    class Cp949Name(zipfile.ZipInfo):
        def _encodeFilenameFlags(self):  # type: ignore[no-untyped-def]  # noqa: N802
            return self.filename.encode("cp949"), self.flag_bits

    out = tmp_path / "stops.zip"
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(Cp949Name(name), data)
    with zipfile.ZipFile(out) as zf:
        raw = zf.infolist()[0]
        assert raw.flag_bits & 0x800 == 0 and "정류장" not in raw.filename  # Python alone shows mojibake
    res = load_csv(db, out, "public.trust_stops_zip", member="정류장정보", bbox=REGION)
    assert res.rows == 1912
    src = query(db, "SELECT sources->0->>'file' FROM meta.datasets WHERE table_name = 'public.trust_stops_zip'")
    assert src[0][0] == f"stops.zip/{name}"


# ---------------------------------------------------------------- 2. CRS plausibility against the city

def test_wrong_crs_refused_against_the_region(db: str) -> None:
    for wrong in (5174, 5181):
        refused(db, rf"EPSG:{wrong} \(--epsg\).*fit EPSG:5186 — pass --epsg 5186", load_file, db, UMD,
                "public.trust_umd", epsg=wrong, bbox=REGION)
    res = load_file(db, UMD, "public.trust_umd", bbox=REGION)
    assert res.rows == 33
    # stored where the official boundary is: within 1 m of the 행정동 polygons' outline of the city
    diff = query(db, "SELECT ST_Area(ST_SymDifference(ST_Union(a.geom), (SELECT ST_Union(geom) FROM "
                     "public.admin_areas))) / ST_Area(ST_Union(a.geom)) FROM public.trust_umd a")[0][0]
    assert diff < 0.02
    # a national layer is refused against Sejong, and loads when the region check is turned off
    refused(db, r"outside the region .*--national", load_file, db, SGG, "public.trust_sgg", bbox=REGION)
    assert load_file(db, SGG, "public.trust_sgg", bbox=None).rows == 250


def test_cli_region_flag(db: str) -> None:
    env = {**os.environ, "DATABASE_URL": db}
    cmd = [sys.executable, "-m", "loaders", "file", str(SGG), "--table", "public.trust_sgg_cli"]
    before = state(db)
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "--national" in out.stderr
    assert state(db) == before
    out = subprocess.run([*cmd, "--national"], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert query(db, "SELECT count(*) FROM public.trust_sgg_cli")[0][0] == 250


# ---------------------------------------------------------------- 3. coordinate columns chosen by content

def test_placeholder_latlon_and_real_xy(db: str, tmp_path: Path) -> None:
    header, rows = csv_text(BIKE)
    col = {h: i for i, h in enumerate(header)}
    sejong = [r for r in rows if r[col["제공기관명"]] == "세종특별자치시"][:44]
    lon = np.array([float(r[col["경도"]]) for r in sejong])
    lat = np.array([float(r[col["위도"]]) for r in sejong])
    gx, gy = transform(lon, lat, 4326, 5186)
    out_rows = [[r[col["자전거대여소명"]], "35.0", "125.5", f"{x:.3f}", f"{y:.3f}"]
                for r, x, y in zip(sejong, gx, gy, strict=True)]
    path = write_csv(tmp_path / "pumps.csv", ["이름", "위도", "경도", "x 좌표", "y 좌표"], out_rows, "cp949")
    res = load_csv(db, path, "public.trust_pumps", epsg=None, bbox=REGION)
    assert res.rows == 44
    assert any("x 좌표/y 좌표" in n and "위도" in n and "constant" in n for n in res.notes), res.notes
    first = (float(lon[0]), float(lat[0]), sejong[0][col["자전거대여소명"]])
    far = query(db, "SELECT max(ST_Distance(t.geom, ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 5186))) "
                    "FROM public.trust_pumps t WHERE t.이름 = %s", first)
    assert far[0][0] < 1.0
    assert query(db, "SELECT count(DISTINCT geom) FROM public.trust_pumps")[0][0] > 40
    # only the placeholder pair: refused, nothing stored
    const = write_csv(tmp_path / "const.csv", ["이름", "위도", "경도"], [[r[0], "36.5", "127.3"] for r in out_rows],
                      "cp949")
    refused(db, r"constant", load_csv, db, const, "public.trust_const", bbox=REGION)


def test_bus_stops_packed_degree_minutes(db: str) -> None:
    res = load_csv(db, PACK, "public.trust_stops", member="_정류장정보_", bbox=REGION)
    assert res.rows == 1912
    assert any("degree-minutes" in n for n in res.notes), res.notes
    with zipfile.ZipFile(PACK) as zf:
        info = next(i for i in zf.infolist() if "_정류장정보_" in i.filename)
        rows = list(csv.reader(io.StringIO(zf.read(info).decode("cp949"))))
    header, first = rows[0], rows[1]
    xi = next(i for i, h in enumerate(header) if "x" in h.lower() and "위치" in h)
    yi = next(i for i, h in enumerate(header) if "y" in h.lower() and "위치" in h)
    x, y = float(first[xi]), float(first[yi])
    lon, lat = x // 100 + (x % 100) / 60, y // 100 + (y % 100) / 60
    got = query(db, "SELECT ST_X(ST_Transform(geom, 4326)), ST_Y(ST_Transform(geom, 4326)) FROM public.trust_stops "
                    "WHERE id = 1")[0]
    assert abs(got[0] - lon) < 1e-6 and abs(got[1] - lat) < 1e-6
    inside = query(db, "SELECT count(*) FROM public.trust_stops WHERE ST_Transform(geom, 4326) && "
                       "ST_MakeEnvelope(%s, %s, %s, %s, 4326)", REGION)[0][0]
    assert inside == 1912


# ---------------------------------------------------------------- 4. rows that cannot be placed

def test_bad_rows_refused_or_set_aside(db: str, tmp_path: Path) -> None:
    header, rows = csv_text(LIGHTS)
    lat_i, lon_i = header.index("위도"), header.index("경도")
    broken = [list(r) for r in rows]
    bad_lines = list(range(100, 100 + 77 * 40, 40))
    for i in bad_lines:
        broken[i][lat_i], broken[i][lon_i] = "0", "0"
    path = write_csv(tmp_path / "lights_zero.csv", header, broken, "cp949")
    refused(db, rf"77 of {len(rows):,} rows cannot be placed:\n  lights_zero\.csv line {bad_lines[0] + 2}, column "
                r"경도/위도: \(0, 0\) is not in Korea", load_csv, db, path, "public.trust_lights_bad", bbox=REGION)
    refused(db, r"77 of .* \(allowed: 76\)", load_csv, db, path, "public.trust_lights_bad", bbox=REGION,
            bad_rows=BadRows.parse("76"))
    res = load_csv(db, path, "public.trust_lights_bad", bbox=REGION, bad_rows=BadRows.parse("3%"))
    assert res.rows == len(rows) - 77 and len(res.rejects) == 77
    assert query(db, "SELECT count(*) FROM public.trust_lights_bad")[0][0] == len(rows) - 77
    stored = query(db, "SELECT rejects FROM meta.datasets WHERE table_name = 'public.trust_lights_bad'")[0][0]
    assert [r["line"] for r in stored] == [i + 2 for i in bad_lines]
    assert stored[0]["file"] == "lights_zero.csv" and stored[0]["column"] == "경도/위도"


def test_garbage_vector_feature_never_skipped(db: str, tmp_path: Path) -> None:
    fc = json.loads(ADMIN.read_text(encoding="utf-8"))
    fc["features"][4]["geometry"]["coordinates"] = [[[[0, 0], [0, 0.001], [0.001, 0], [0, 0]]]]
    path = tmp_path / "admin_bad.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    refused(db, r"admin_bad\.geojson: 1 feature\(s\) cannot be placed \(feature 5: .*not in Korea.*--max-bad-rows",
            load_file, db, path, "public.trust_admin_bad", bbox=REGION)
    res = load_file(db, path, "public.trust_admin_bad", bbox=REGION, bad_rows=BadRows.parse("1"))
    assert res.rows == 19 and res.rejects[0]["line"] == 5
    names = {r[0] for r in query(db, "SELECT adm_nm FROM public.trust_admin_bad")}
    assert fc["features"][4]["properties"]["adm_nm"] not in names and len(names) == 19


# ---------------------------------------------------------------- 5. nothing left behind; list and drop

def test_refused_new_table_leaves_nothing(db: str, tmp_path: Path) -> None:
    header, rows = csv_text(LIGHTS)
    broken = [list(r) for r in rows[:200]]
    broken[50][header.index("위도")] = "abc"
    path = write_csv(tmp_path / "lights_new.csv", header, broken, "cp949")
    refused(db, r"line 52, column 위도: 'abc' is not a number", load_csv, db, path, "public.trust_new", bbox=REGION)
    assert query(db, "SELECT to_regclass('public.trust_new')")[0][0] is None
    fixed = write_csv(tmp_path / "lights_new.csv", header, rows[:200], "cp949")
    assert load_csv(db, fixed, "public.trust_new", bbox=REGION).rows == 200  # the retry is not blocked


def test_list_and_drop(db: str, tmp_path: Path) -> None:
    header, rows = csv_text(LIGHTS)
    load_csv(db, write_csv(tmp_path / "drop_me.csv", header, rows[:30], "cp949"), "public.trust_drop_me",
             bbox=REGION)
    env = {**os.environ, "DATABASE_URL": db}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "loaders", *args], cwd=REPO, env=env, capture_output=True,
                              text=True)

    out = cli("list")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("public.trust_drop_me\t"))
    assert line.split("\t")[1] == "30"
    assert any(ln.startswith("public.street_lights\t") and "\tstreet_lights\t" in ln for ln in out.stdout.splitlines())
    before = state(db)
    served = cli("drop", "public.street_lights")
    assert served.returncode == 1 and "--force" in served.stderr
    query(db, "CREATE TABLE public.trust_not_loaded (id int)")
    foreign = cli("drop", "public.trust_not_loaded")
    assert foreign.returncode == 1 and "not in the catalog" in foreign.stderr
    assert state(db)[1] == before[1] and query(db, "SELECT to_regclass('public.trust_not_loaded')")[0][0]
    assert cli("drop", "public.trust_drop_me").returncode == 0
    assert query(db, "SELECT to_regclass('public.trust_drop_me')")[0][0] is None
    assert query(db, "SELECT count(*) FROM meta.datasets WHERE table_name = 'public.trust_drop_me'")[0][0] == 0


# ---------------------------------------------------------------- 6. shrink and schema guard

def test_shrink_and_schema_guard(db: str, tmp_path: Path) -> None:
    header, rows = csv_text(LIGHTS)
    full = write_csv(tmp_path / "lights_full.csv", header, rows[:425], "cp949")
    load_csv(db, full, "public.trust_shrink", bbox=REGION)
    partial = write_csv(tmp_path / "lights_part.csv", header, rows[:18], "cp949")
    refused(db, r"would replace 425 rows of public\.trust_shrink with 18 .*--replace", load_csv, db, partial,
            "public.trust_shrink", bbox=REGION)
    assert load_csv(db, write_csv(tmp_path / "lights_90.csv", header, rows[:400], "cp949"), "public.trust_shrink",
                    bbox=REGION).rows == 400  # within 20 %
    renamed = write_csv(tmp_path / "lights_renamed.csv", ["관리 번호" if h == header[0] else h for h in header],
                        rows[:400], "cp949")
    refused(db, r"exists with other columns .*--replace", load_csv, db, renamed, "public.trust_shrink", bbox=REGION)
    load_csv(db, partial, "public.trust_shrink", bbox=REGION, replace=True)
    assert query(db, "SELECT count(*) FROM public.trust_shrink")[0][0] == 18
    res = load_csv(db, renamed, "public.trust_shrink", bbox=REGION, replace=True)
    cols = {r[0] for r in query(db, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                    "'public' AND table_name = 'trust_shrink'")}
    assert res.rows == 400 and "관리_번호" in cols


def test_bundled_reload_unchanged_recipe(db: str) -> None:
    before = query(db, "SELECT count(*) FROM public.street_lights")[0][0]
    counts = load_bundled(db, force=True, only=["street_lights"])
    assert counts["public.street_lights"] == before == 15460
