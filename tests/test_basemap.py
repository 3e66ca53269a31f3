"""The self-hosted basemap: roads and 법정동 from the real files, their tiles, and one label point per area."""

from __future__ import annotations

import contextlib
import math
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np
import psycopg2
import pyogrio
import pytest
import shapely

from core.config import load_config
from loaders.core import RowStats, TableSpec, drop_table, load_table
from loaders.datasets import legal_dong, roads
from loaders.errors import LoadError
from loaders.recipes import Dataset, load_dataset

DATA = load_config().data.path()
ROADS_SHP = DATA / roads.FILE
UMD_SHP = DATA / legal_dong.FILE
GOVERNMENT_COMPLEX = (127.259, 36.504)  # 정부세종청사


def _query(dsn: str, text: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(text, params)
        rows: list[tuple[Any, ...]] = cur.fetchall()
    conn.close()
    return rows


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return col, row


def _tile(client: Any, layer: str, z: int, col: int, row: int) -> dict[str, Any]:
    r = client.get(f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{row}/{col}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return mapbox_vector_tile.decode(r.data) if r.data else {}


def _lonlat(z: int, col: int, row: int, px: float, py: float) -> tuple[float, float]:
    """Tile pixel (y up, extent 4096, as mapbox_vector_tile decodes) to lon/lat."""
    n = 2**z
    x = (col + px / 4096) / n
    y = (row + 1 - py / 4096) / n
    return x * 360 - 180, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y))))


# ---- the tables hold the real files -------------------------------------------------------------------


def test_roads_hold_every_line_with_korean_names(dsn: str, loaded: dict[str, int]) -> None:
    info = pyogrio.read_info(ROADS_SHP, encoding="cp949")
    assert loaded["public.roads"] == info["features"] == 4115
    [(n, classes, named, bad)] = _query(dsn, "SELECT count(*), array_agg(DISTINCT class_name ORDER BY class_name), "
                                             "count(name), count(*) FILTER (WHERE name !~ '^[가-힣0-9·]+$') "
                                             "FROM public.roads")
    assert n == 4115 and named == 4115 and bad == 0
    assert set(classes) == {"고속도로", "대로", "로", "길"}
    rows = _query(dsn, "SELECT name_en, road_class, class_name, width_m, length_m FROM public.roads "
                       "WHERE name = '금남구즉로' AND start_address = '금남면 호탄리 584-2 도'")
    assert rows == [("Geumnamgujeuk-ro", 3, "로", 3.0, 15166.0)]
    by_class = dict(_query(dsn, "SELECT road_class, count(*) FROM public.roads GROUP BY 1"))
    frame = pyogrio.read_dataframe(ROADS_SHP, encoding="cp949", read_geometry=False)
    assert by_class == {int(k): v for k, v in Counter(frame["ROA_CLS_SE"]).items()}


def test_roads_are_moved_from_5181_exactly(dsn: str, loaded: dict[str, int]) -> None:
    """EPSG:5181 and 5186 are the same Central Belt TM 100 km apart in false northing: every stored vertex is the
    file's vertex shifted north by 100,000 m."""
    frame = pyogrio.read_dataframe(ROADS_SHP, encoding="cp949")
    ids = frame["RDS_MAN_NO"].astype(int).tolist()[::97]
    stored = dict(_query(dsn, "SELECT id, ST_AsBinary(geom) FROM public.roads WHERE id = ANY(%s)", (ids,)))
    assert len(stored) == len(ids)
    for fid, geom in zip(frame["RDS_MAN_NO"].astype(int)[::97], frame.geometry.values[::97], strict=True):
        mine = shapely.get_coordinates(shapely.from_wkb(bytes(stored[fid])))
        theirs = shapely.get_coordinates(geom) + np.array([0.0, 100_000.0])
        assert mine.shape == theirs.shape and abs(mine - theirs).max() < 0.01, fid


def test_roads_lie_in_the_dong_their_address_names(dsn: str, loaded: dict[str, int]) -> None:
    """A road whose start (기점) address names a 법정동/읍면 touches that area's polygon (the CRS is right)."""
    [(named, inside)] = _query(dsn, """
        SELECT count(*), count(*) FILTER (WHERE ST_DWithin(r.geom, d.geom, 50))
        FROM public.roads r JOIN public.legal_dong d ON split_part(r.start_address, ' ', 1) = d.name""")
    assert named > 2500 and inside / named > 0.95, (named, inside)
    [(total_km, lon0, lat0, lon1, lat1)] = _query(dsn, """
        SELECT sum(ST_Length(geom)) / 1000, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
        FROM public.roads, LATERAL (SELECT ST_Extent(ST_Transform(geom, 4326))::geometry AS e FROM public.roads) x
        GROUP BY e""")
    assert 1890 < total_km < 1900  # SOURCE.md: 1,894 km
    assert 127.1 < lon0 < lon1 < 127.45 and 36.4 < lat0 < lat1 < 36.75
    # a bike station of 어울링 in 보람동 lies within 300 m of a road
    [(near,)] = _query(dsn, "SELECT bool_and(EXISTS (SELECT 1 FROM public.roads r WHERE ST_DWithin(r.geom, b.geom, "
                            "300))) FROM public.bike_stations b WHERE b.name LIKE %s", ("보람동%",))
    assert near is True


def test_legal_dong_holds_the_33_areas(dsn: str, loaded: dict[str, int]) -> None:
    info = pyogrio.read_info(UMD_SHP, encoding="cp949")
    assert loaded["public.legal_dong"] == info["features"] == 33
    kinds = dict(_query(dsn, "SELECT kind, count(*) FROM public.legal_dong GROUP BY 1"))
    assert kinds == {"읍": 1, "면": 9, "동": 23}
    rows = _query(dsn, "SELECT code, kind FROM public.legal_dong WHERE name = '조치원읍'")
    assert rows == [("36110250", "읍")]
    cols = {r[0] for r in _query(dsn, "SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = 'public' AND table_name = 'legal_dong'")}
    assert cols == {"id", "code", "name", "kind", "geom"}  # EMD_POP/EMD_CAR/EMD_Tra (not official) are left out
    [(km2, overlap_m2)] = _query(dsn, "SELECT sum(ST_Area(geom)) / 1e6, (SELECT sum(ST_Area(ST_Intersection(a.geom, "
                                      "b.geom))) FROM public.legal_dong a JOIN public.legal_dong b ON a.id < b.id "
                                      "AND ST_Intersects(a.geom, b.geom)) FROM public.legal_dong")
    assert 460 < km2 < 470 and overlap_m2 < 5000  # Sejong: 465 km²; the areas tile it (slivers of the survey aside)
    [(city_hall,)] = _query(dsn, "SELECT name FROM public.legal_dong WHERE ST_Contains(geom, ST_Transform("
                                 "ST_SetSRID(ST_Point(127.2890, 36.4800), 4326), 5186))")
    assert city_hall == "보람동"  # 세종특별자치시청


# ---- tiles -------------------------------------------------------------------------------------------


def test_z14_tile_over_the_government_complex_has_named_roads(client: Any, loaded: dict[str, int]) -> None:
    col, row = _tile_of(*GOVERNMENT_COMPLEX, 14)
    tile = _tile(client, "roads", 14, col, row)
    names = {f["properties"].get("name") for f in tile["roads"]["features"]}
    assert len(names - {None}) >= 10 and all(n is None or n[-1] in "로길" for n in names), names
    assert {"road_class", "name", "width_m"} <= set(tile["roads"]["features"][0]["properties"])
    low = _tile(client, "roads", 10, *_tile_of(*GOVERNMENT_COMPLEX, 10))
    assert {k for f in low["roads"]["features"] for k in f["properties"]} == {"id", "road_class"}
    assert len(low["roads"]["features"]) > 500


def test_label_layer_has_one_point_per_area(client: Any, dsn: str, loaded: dict[str, int]) -> None:
    """Over every tile of the city, each 법정동 has exactly one label point, inside its polygon, while its polygon
    is cut into several tiles."""
    z = 12
    lon0, lat0, lon1, lat1 = client.get("/collections/legal_dong").get_json()["extent"]["spatial"]["bbox"][0]
    cols = range(_tile_of(lon0, lat0, z)[0], _tile_of(lon1, lat0, z)[0] + 1)
    rows = range(_tile_of(lon0, lat1, z)[1], _tile_of(lon0, lat0, z)[1] + 1)
    labels: list[tuple[int, str, tuple[float, float]]] = []
    fragments: Counter[int] = Counter()
    for col in cols:
        for row in rows:
            tile = _tile(client, "legal_dong", z, col, row)
            fragments.update(f["id"] for f in tile.get("legal_dong", {}).get("features", []))
            for f in tile.get("legal_dong_label", {}).get("features", []):
                assert f["geometry"]["type"] == "Point"
                labels.append((f["id"], f["properties"]["name"], _lonlat(z, col, row, *f["geometry"]["coordinates"])))
    assert len(labels) == 33 and len({fid for fid, _, _ in labels}) == 33
    assert max(fragments.values()) >= 4  # the polygons are cut into several tiles, their labels are not
    for fid, name, (lon, lat) in labels:
        [(found, near)] = _query(dsn, "SELECT name, ST_DWithin(geom, ST_Transform(ST_SetSRID(ST_Point(%s, %s), "
                                      "4326), 5186), 10) FROM public.legal_dong WHERE id = %s", (lon, lat, fid))
        assert found == name and near, (fid, name, lon, lat)


@pytest.mark.parametrize("layer", ["admin_areas", "emd_2018"])
def test_other_area_layers_carry_one_label_each(client: Any, dsn: str, loaded: dict[str, int], layer: str) -> None:
    col, row = _tile_of(*GOVERNMENT_COMPLEX, 13)
    seen: Counter[int] = Counter()
    for dc in (-2, -1, 0, 1, 2):
        for dr in (-2, -1, 0, 1, 2):
            tile = _tile(client, layer, 13, col + dc, row + dr)
            seen.update(f["id"] for f in tile.get(f"{layer}_label", {}).get("features", []))
    assert seen and set(seen.values()) == {1}, seen
    tilejson = client.get(f"/collections/{layer}/tilejson.json").get_json()
    assert f"{layer}_label" in {v["id"] for v in tilejson["vector_layers"]}


def test_label_tiles_are_cached_and_versioned(client: Any, loaded: dict[str, int]) -> None:
    col, row = _tile_of(*GOVERNMENT_COMPLEX, 13)
    url = f"/collections/legal_dong/tiles/WebMercatorQuad/13/{row}/{col}"
    first = client.get(url)
    again = client.get(url)
    assert first.data == again.data and first.headers["ETag"] == again.headers["ETag"]
    assert "legal_dong_label" in mapbox_vector_tile.decode(first.data)
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


# ---- derived copies of the road file -----------------------------------------------------------------


@pytest.fixture()
def road_copy(tmp_path: Path) -> Path:
    """A data folder holding a copy of the road Shapefile (tests change it)."""
    target = tmp_path / Path(roads.FILE).parent
    target.mkdir(parents=True)
    for rel in roads.FILES:
        shutil.copy(DATA / rel, tmp_path / rel)
    return tmp_path


@pytest.fixture()
def scratch(dsn: str) -> Iterator[TableSpec]:
    """A scratch table spec shaped like public.roads, dropped afterwards."""
    spec = TableSpec("public.roads_variant_test", roads.SPEC.columns, roads.SPEC.geom_type)
    yield spec
    with contextlib.suppress(LoadError):  # never loaded
        drop_table(dsn, spec.qualified)


def _catalog(dsn: str) -> tuple[int, int]:
    [(version, rows)] = _query(dsn, "SELECT data_version, (SELECT count(*) FROM public.roads) FROM meta.datasets "
                                    "WHERE table_name = 'public.roads'")
    return int(version), int(rows)


def _reload_roads(dsn: str, data_dir: Path, files: list[str]) -> None:
    load_dataset(dsn, Dataset(roads.SPEC, files, roads.build, roads.META), data_dir)


def test_road_file_without_prj_is_refused(dsn: str, loaded: dict[str, int], road_copy: Path) -> None:
    before = _catalog(dsn)
    (road_copy / roads.FILE).with_suffix(".prj").unlink()
    with pytest.raises(LoadError, match=r"no CRS \(.prj missing\); pass --epsg"):
        _reload_roads(dsn, road_copy, roads.FILES[:3])
    assert _catalog(dsn) == before


def test_road_file_with_a_lying_prj_is_refused(dsn: str, loaded: dict[str, int], road_copy: Path) -> None:
    before = _catalog(dsn)
    shutil.copy(UMD_SHP.with_suffix(".prj"), (road_copy / roads.FILE).with_suffix(".prj"))  # says EPSG:5186
    with pytest.raises(LoadError, match=r"outside the region .* EPSG:5186 .*fit EPSG:5181"):
        _reload_roads(dsn, road_copy, roads.FILES)
    assert _catalog(dsn) == before


def test_road_file_with_a_renamed_column_is_refused(dsn: str, loaded: dict[str, int], tmp_path: Path) -> None:
    frame = pyogrio.read_dataframe(ROADS_SHP, encoding="cp949").rename(columns={"ROA_CLS_SE": "ROAD_CLS"})
    out = tmp_path / roads.FILE
    out.parent.mkdir(parents=True)
    pyogrio.write_dataframe(frame, out, encoding="cp949")
    before = _catalog(dsn)
    with pytest.raises(LoadError, match="columns ROA_CLS_SE missing"):
        _reload_roads(dsn, tmp_path, roads.FILES)
    assert _catalog(dsn) == before


def test_road_file_with_a_broken_row_is_refused(dsn: str, loaded: dict[str, int], tmp_path: Path) -> None:
    frame = pyogrio.read_dataframe(ROADS_SHP, encoding="cp949")
    frame.loc[41, "ROA_CLS_SE"] = "9"
    out = tmp_path / roads.FILE
    out.parent.mkdir(parents=True)
    pyogrio.write_dataframe(frame, out, encoding="cp949")
    before = _catalog(dsn)
    with pytest.raises(LoadError, match="feature 42: ROA_CLS_SE '9' is not a road class"):
        _reload_roads(dsn, tmp_path, roads.FILES)
    assert _catalog(dsn) == before


@pytest.mark.parametrize("cpg", [True, False], ids=["utf8-with-cpg", "utf8-without-cpg"])
def test_road_file_reencoded_to_utf8_loads_the_same_names(dsn: str, loaded: dict[str, int], tmp_path: Path,
                                                          scratch: TableSpec, cpg: bool) -> None:
    frame = pyogrio.read_dataframe(ROADS_SHP, encoding="cp949")
    out = tmp_path / "roads_utf8.shp"
    pyogrio.write_dataframe(frame, out, encoding="UTF-8")
    assert out.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    if not cpg:
        out.with_suffix(".cpg").unlink()
    assert "금남구즉로".encode() in out.with_suffix(".dbf").read_bytes()
    stats = RowStats()
    res = load_table(dsn, scratch, roads.rows(out, out.name, stats), label=out.name, sources=[], meta=roads.META,
                     stats=stats)
    assert res.rows == 4115
    [(same, differ)] = _query(dsn, "SELECT count(*) FILTER (WHERE v.name = r.name AND v.name_en IS NOT DISTINCT "
                                   "FROM r.name_en AND ST_Equals(v.geom, r.geom)), count(*) FILTER (WHERE v.name <> "
                                   "r.name) FROM public.roads_variant_test v JOIN public.roads r USING (id)")
    assert (same, differ) == (4115, 0)
