"""The benchmark tables: real points, real polygons and a generated 200,000-parcel table (idempotent)."""

from __future__ import annotations

import csv
import io
import subprocess
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

from core.config import REPO_ROOT

DATA_DIR = (REPO_ROOT / ".." / "shared" / "data").resolve()
LIGHTS_CSV = DATA_DIR / "sejong" / "street-lights" / "세종_가로등현황.csv"
BUILDINGS_GEOJSON = DATA_DIR / "incheon" / "buildings-osm" / "buildings.geojson"

PARCELS_TABLE = "bench.parcels"
PARCEL_COLS, PARCEL_ROWS = 500, 400  # 200,000 cells over Sejong
SEJONG_EXTENT = (127.20, 36.45, 127.35, 36.62)  # lon/lat


@dataclass
class BenchTable:
    """One table under test, and how each system names it."""

    key: str  # short label in the report
    table: str  # schema-qualified
    layer_id: str  # collection id on our server
    source: str  # where the rows came from
    id_col: str = "id"
    geom_col: str = "geom"
    deep_offset: int = 0  # 0: no deep-page query
    columns: list[str] = field(default_factory=list)  # property columns (all but geometry), filled by describe()
    rows: int = 0
    srid: int = 0

    @property
    def schema(self) -> str:
        """Schema part."""
        return self.table.split(".", 1)[0]

    @property
    def name(self) -> str:
        """Table part."""
        return self.table.split(".", 1)[1]

    @property
    def ident(self) -> sql.Identifier:
        """Quoted table."""
        return sql.Identifier(self.schema, self.name)


def connect(dsn: str) -> psycopg2.extensions.connection:
    """A connection with the session options of server/db.py."""
    return psycopg2.connect(dsn, options="-c jit=off -c max_parallel_workers_per_gather=0 "
                                         "-c application_name=sejong-bench")


def table_exists(conn: psycopg2.extensions.connection, table: str) -> bool:
    """Whether a schema-qualified table exists and has rows."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        if not cur.fetchone()[0]:
            return False
        schema, name = table.split(".", 1)
        cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, name)))
        return bool(cur.fetchone()[0])


def describe(conn: psycopg2.extensions.connection, t: BenchTable) -> None:
    """Fill the property columns (catalog order, geometry excluded) and the exact row count."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum", (t.table,))
        t.columns = [r[0] for r in cur.fetchall() if r[0] != t.geom_col]
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(t.ident))
        t.rows = int(cur.fetchone()[0])
        cur.execute("SELECT Find_SRID(%s, %s, %s)", (t.schema, t.name, t.geom_col))
        t.srid = int(cur.fetchone()[0])


# --- real data ---------------------------------------------------------------------------------------------------

def try_load_bundled(dsn: str) -> str | None:
    """Run the project loaders (loaders.bundled.load_bundled); an error message when unavailable or failing."""
    try:
        from loaders.bundled import load_bundled  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        return f"loaders.bundled not importable ({exc})"
    try:
        counts = load_bundled(dsn)
    except Exception as exc:  # the loaders are another engineer's work in progress: fall back, but say why
        traceback.print_exc()
        return f"load_bundled failed: {exc!r}"
    print(f"   load_bundled: {dict(counts)}", flush=True)
    return None


def load_lights_fallback(conn: psycopg2.extensions.connection) -> str:
    """bench.street_lights_real from the CP949 CSV (only when the loaders cannot provide public.street_lights)."""
    table = "bench.street_lights_real"
    if table_exists(conn, table):
        return table
    with LIGHTS_CSV.open(encoding="cp949", newline="") as fh:
        reader = csv.DictReader(fh)
        out = io.StringIO()
        writer = csv.writer(out)
        for row in reader:
            writer.writerow([row["가로등위치명"], row["설치대수"] or None, row["소재지지번주소"], row["설치형태"],
                             row["관리기관전화번호"], row["관리기관명"], row["데이터기준일자"] or None,
                             row["경도"], row["위도"]])
    out.seek(0)
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS bench")
        cur.execute("CREATE TEMP TABLE lights_raw (location text, units int, address_jibun text, lamp_type text, "
                    "phone text, manager text, data_date date, lon double precision, lat double precision)")
        cur.copy_expert("COPY lights_raw FROM STDIN WITH (FORMAT csv)", out)
        cur.execute(
            "CREATE TABLE bench.street_lights_real AS SELECT row_number() OVER ()::integer AS id, location, units, "
            "address_jibun, lamp_type, phone, manager, data_date, "
            "ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 5186)::geometry(Point, 5186) AS geom "
            "FROM lights_raw WHERE lon IS NOT NULL AND lat IS NOT NULL")
        cur.execute("ALTER TABLE bench.street_lights_real ADD PRIMARY KEY (id)")
        cur.execute("CREATE INDEX ON bench.street_lights_real USING gist (geom)")
        cur.execute("ANALYZE bench.street_lights_real")
    conn.commit()
    return table


def load_buildings_fallback(dsn: str, conn: psycopg2.extensions.connection) -> str:
    """bench.buildings_real from the OSM GeoJSON via ogr2ogr (only when public.buildings is absent)."""
    table = "bench.buildings_real"
    if table_exists(conn, table):
        return table
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS bench")
    conn.commit()
    subprocess.run(
        ["ogr2ogr", "-f", "PostgreSQL", f"PG:{dsn}", str(BUILDINGS_GEOJSON), "-nln", table, "-overwrite",
         "-t_srs", "EPSG:5186", "-nlt", "PROMOTE_TO_MULTI", "-lco", "GEOMETRY_NAME=geom", "-lco", "FID=id",
         "-lco", "SPATIAL_INDEX=GIST"], check=True)
    with conn.cursor() as cur:
        cur.execute("ANALYZE bench.buildings_real")
    conn.commit()
    return table


# --- generated data ----------------------------------------------------------------------------------------------

_PARCELS_SQL = """
CREATE TABLE bench.parcels (
  id integer PRIMARY KEY, pnu text NOT NULL, jimok text, price integer, area numeric,
  geom geometry(MultiPolygon, 5186) NOT NULL);
INSERT INTO bench.parcels (id, pnu, jimok, price, area, geom)
SELECT id, '36110' || lpad((10100 + (j / 40))::text, 5, '0') || '1' || lpad((i + 1)::text, 4, '0')
         || lpad(((j %% 40) + 1)::text, 4, '0') AS pnu,
       (ARRAY['대','전','답','도','임','잡','공','학','천','구'])[1 + (h1 %% 10)] AS jimok,
       50000 + (h2 %% 2000) * 1000 AS price, NULL, g
FROM (
  SELECT i, j, j * %(cols)s + i + 1 AS id, h1, h2,
         ST_Multi(ST_Transform(ST_SetSRID(ST_MakePolygon(ST_MakeLine(ARRAY[
           ST_MakePoint(x0 + dx * (0.02 + 0.13 * f1), y0 + dy * (0.02 + 0.13 * f2)),
           ST_MakePoint(x0 + dx * (0.98 - 0.13 * f3), y0 + dy * (0.02 + 0.13 * f4)),
           ST_MakePoint(x0 + dx * (0.98 - 0.13 * f5), y0 + dy * (0.98 - 0.13 * f6)),
           ST_MakePoint(x0 + dx * (0.02 + 0.13 * f7), y0 + dy * (0.98 - 0.13 * f8)),
           ST_MakePoint(x0 + dx * (0.02 + 0.13 * f1), y0 + dy * (0.02 + 0.13 * f2))])), 4326), 5186)) AS g
  FROM (
    SELECT i, j, %(west)s + i * dx AS x0, %(south)s + j * dy AS y0, dx, dy,
           ('x' || substr(m, 1, 8))::bit(32)::int & 2147483647 AS h1,
           ('x' || substr(m, 9, 8))::bit(32)::int & 2147483647 AS h2,
           get_byte(decode(m, 'hex'), 8) / 255.0 AS f1, get_byte(decode(m, 'hex'), 9) / 255.0 AS f2,
           get_byte(decode(m, 'hex'), 10) / 255.0 AS f3, get_byte(decode(m, 'hex'), 11) / 255.0 AS f4,
           get_byte(decode(m, 'hex'), 12) / 255.0 AS f5, get_byte(decode(m, 'hex'), 13) / 255.0 AS f6,
           get_byte(decode(m, 'hex'), 14) / 255.0 AS f7, get_byte(decode(m, 'hex'), 15) / 255.0 AS f8
    FROM generate_series(0, %(cols)s - 1) AS i, generate_series(0, %(rows)s - 1) AS j,
         LATERAL (SELECT md5(i || ',' || j) AS m,
                         (%(east)s - %(west)s) / %(cols)s AS dx, (%(north)s - %(south)s) / %(rows)s AS dy) s
  ) c
) p;
UPDATE bench.parcels SET area = round(ST_Area(geom)::numeric, 1);
CREATE INDEX parcels_geom_gist ON bench.parcels USING gist (geom);
VACUUM ANALYZE bench.parcels;
"""


def ensure_parcels(dsn: str) -> str:
    """Create bench.parcels (200,000 jittered quadrilaterals over Sejong, EPSG:5186) unless it exists."""
    conn = connect(dsn)
    conn.autocommit = True  # VACUUM
    try:
        if table_exists(conn, PARCELS_TABLE):
            return PARCELS_TABLE
        print("   generating bench.parcels (200,000 polygons; generated data for this benchmark only)", flush=True)
        west, south, east, north = SEJONG_EXTENT
        with conn.cursor() as cur:
            cur.execute("CREATE SCHEMA IF NOT EXISTS bench")
            cur.execute("DROP TABLE IF EXISTS bench.parcels")
            for stmt in _PARCELS_SQL.split(";\n"):
                if stmt.strip():
                    cur.execute(stmt, {"cols": PARCEL_COLS, "rows": PARCEL_ROWS, "west": west, "south": south,
                                       "east": east, "north": north})
        return PARCELS_TABLE
    finally:
        conn.close()


def prepare(dsn: str, config_layers: dict[str, str]) -> list[BenchTable]:
    """Make every table exist and describe it.  config_layers maps table -> layer id in config.yml."""
    print("== preparing tables", flush=True)
    problem = try_load_bundled(dsn)
    if problem:
        print(f"   NOTE: {problem}; using bench.* fallback copies of the same real files", flush=True)
    conn = connect(dsn)
    try:
        tables: list[BenchTable] = []
        if table_exists(conn, "public.street_lights"):
            lights = BenchTable("street_lights", "public.street_lights",
                                config_layers.get("public.street_lights", "street_lights"), "load_bundled")
        else:
            lights = BenchTable("street_lights", load_lights_fallback(conn), "street_lights_real",
                                f"fallback COPY of {LIGHTS_CSV.name}")
        lights.deep_offset = 10_000
        tables.append(lights)
        if table_exists(conn, "public.buildings"):
            bld = BenchTable("buildings", "public.buildings", config_layers.get("public.buildings", "buildings"),
                             "load_bundled")
        else:
            bld = BenchTable("buildings", load_buildings_fallback(dsn, conn), "buildings_real",
                             f"fallback ogr2ogr of {Path(BUILDINGS_GEOJSON).name}")
        bld.deep_offset = 1_000
        tables.append(bld)
        tables.append(BenchTable("parcels_gen", ensure_parcels(dsn), "parcels_gen", "generated in SQL",
                                 deep_offset=100_000))
        for t in tables:
            describe(conn, t)
            print(f"   {t.key:<14} {t.table:<28} {t.rows:>8,} rows  ({t.source})", flush=True)
        return tables
    finally:
        conn.close()
