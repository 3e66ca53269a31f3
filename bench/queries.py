"""The queries under test, the bbox picker and the bare PostGIS baseline (ST_AsGeoJSON + json_agg)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg2.extensions
from psycopg2 import sql

from bench.datasets import BenchTable

LIMIT = 1000
BBOX_TARGET = (100, 1000)  # each bbox selects this many features in total (numberMatched)
BBOXES_PER_TABLE = 4
SEGMENT_DEG = 0.01  # same densification of a lon/lat box as server/layers/sql.py

BBox = tuple[float, float, float, float]


@dataclass
class Query:
    """One items request: first page, a bbox page or a deep page."""

    table: BenchTable
    kind: str  # first | bbox1.. | deep
    bbox: BBox | None = None
    offset: int = 0
    after_id: int | None = None  # keyset equivalent of offset (the id of the row just before the page)
    matched: int = 0  # total rows matching (not only this page)

    @property
    def label(self) -> str:
        """Row label in the report."""
        if self.kind == "deep":
            return f"deep@{self.offset}"
        return self.kind

    def params(self) -> dict[str, str]:
        """Standard OGC API query parameters (offset-paged)."""
        p = {"limit": str(LIMIT)}
        if self.bbox:
            p["bbox"] = ",".join(f"{v:.5f}" for v in self.bbox)
        if self.offset:
            p["offset"] = str(self.offset)
        return p


def _envelope(t: BenchTable, bbox: BBox) -> sql.Composable:
    w, s, e, n = (sql.Literal(float(v)) for v in bbox)
    return sql.SQL("ST_Intersects({g}, ST_Transform(ST_Segmentize(ST_MakeEnvelope({w}, {s}, {e}, {n}, 4326), "
                   "{step}), {srid}))").format(g=sql.Identifier(t.geom_col), w=w, s=s, e=e, n=n,
                                               step=sql.Literal(SEGMENT_DEG), srid=sql.Literal(t.srid))


def _where(q: Query) -> sql.Composable:
    conds: list[sql.Composable] = []
    if q.bbox:
        conds.append(_envelope(q.table, q.bbox))
    if q.after_id is not None:
        conds.append(sql.SQL("{} > {}").format(sql.Identifier(q.table.id_col), sql.Literal(q.after_id)))
    return sql.SQL(" AND ").join(conds) if conds else sql.SQL("TRUE")


def bare_sql(q: Query) -> sql.Composable:
    """The page as one GeoJSON features array built in PostGIS (CRS84, 7 decimals, ordered by id).

    Deep pages use the keyset form (id > last id), as our server's next links do.
    """
    t = q.table
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in t.columns)
    g = sql.Identifier(t.geom_col)
    offset = sql.SQL("")
    if q.offset and q.after_id is None:
        offset = sql.SQL(" OFFSET {}").format(sql.Literal(q.offset))
    return sql.SQL(
        "SELECT coalesce(json_agg(ST_AsGeoJSON(p.*, {gname}, 7)::json), '[]'::json)::text, count(*) FROM ("
        "SELECT {cols}, ST_Transform({g}, 4326) AS {g} FROM {table} WHERE {where} ORDER BY {id} LIMIT {limit}"
        "{offset}) p"
    ).format(gname=sql.Literal(t.geom_col), cols=cols, g=g, table=t.ident, where=_where(q),
             id=sql.Identifier(t.id_col), limit=sql.Literal(LIMIT), offset=offset)


def run_bare(conn: psycopg2.extensions.connection, stmt: str) -> tuple[float, str, int]:
    """(seconds, features JSON text, count) of one bare query, the whole result fetched to the client as text."""
    with conn.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute(stmt)
        text, count = cur.fetchone()
        elapsed = time.perf_counter() - t0
    conn.rollback()
    return elapsed, str(text), int(count)


def count_matching(conn: psycopg2.extensions.connection, t: BenchTable, bbox: BBox) -> int:
    """Features intersecting a lon/lat bbox."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(t.ident, _envelope(t, bbox)))
        n = int(cur.fetchone()[0])
    conn.rollback()
    return n


def pick_bboxes(conn: psycopg2.extensions.connection, t: BenchTable) -> list[tuple[BBox, int]]:
    """Deterministic lon/lat boxes around spread-out features, each grown until it selects 100-1000 features."""
    lo, hi = BBOX_TARGET
    out: list[tuple[BBox, int]] = []
    with conn.cursor() as cur:
        for k in range(BBOXES_PER_TABLE):
            # a feature at quantile (k+1)/(n+1) of a spatial ordering, so the boxes spread over the data
            cur.execute(sql.SQL(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_PointOnSurface({g}), 4326) AS c, "
                "row_number() OVER (ORDER BY ST_GeoHash(ST_Transform(ST_PointOnSurface({g}), 4326), 10)) AS r "
                "FROM {t}) s WHERE r = {r}").format(
                    g=sql.Identifier(t.geom_col), t=t.ident,
                    r=sql.Literal(max(1, t.rows * (k + 1) // (BBOXES_PER_TABLE + 1)))))
            x, y = cur.fetchone()
            half, best = 0.0005, None
            for _ in range(40):
                box = (round(x - half, 5), round(y - half * 0.8, 5), round(x + half, 5), round(y + half * 0.8, 5))
                n = count_matching(conn, t, box)
                if lo <= n <= hi:
                    # aim for the middle of the band: grow while still inside it
                    best = (box, n)
                    if n >= (lo + hi) // 2:
                        break
                    half *= 1.15
                elif n < lo:
                    half *= 1.4
                else:
                    if best:
                        break
                    half *= 0.8
            if best:
                out.append(best)
    conn.rollback()
    return out


def build_queries(conn: psycopg2.extensions.connection, tables: list[BenchTable]) -> list[Query]:
    """First page, bbox pages and a deep page per table."""
    queries: list[Query] = []
    for t in tables:
        queries.append(Query(t, "first", matched=t.rows))
        for i, (box, n) in enumerate(pick_bboxes(conn, t), 1):
            queries.append(Query(t, f"bbox{i}", bbox=box, matched=n))
        if t.deep_offset and t.deep_offset < t.rows:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT {id} FROM {t} ORDER BY {id} OFFSET {o} LIMIT 1").format(
                    id=sql.Identifier(t.id_col), t=t.ident, o=sql.Literal(t.deep_offset - 1)))
                after = cur.fetchone()[0]
            conn.rollback()
            queries.append(Query(t, "deep", offset=t.deep_offset, after_id=int(after), matched=t.rows))
    return queries
