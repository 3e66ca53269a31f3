"""Isochrone polygons: reached street segments buffered (network) or facility circles (straight line)."""

from __future__ import annotations

import numpy as np
import psycopg2.extensions
import shapely
from psycopg2 import sql

from processes import network as nw


def network_polygons(conn: psycopg2.extensions.connection, r: nw.Reach, limit_s: float, buffer_m: float,
                     per_facility: bool) -> dict[int, shapely.Geometry]:
    """Facility index (-1: merged) -> polygon of street parts from which a facility is reached within limit_s."""
    g = r.graph
    ids, a, b = nw.reached_parts(r, limit_s)
    if len(ids) == 0:
        return {}
    pos = g.edge_pos(ids)
    fa = r.node_src[g.edge_u[pos]] if per_facility else np.full(len(ids), -1)
    fb = r.node_src[g.edge_v[pos]] if per_facility else np.full(len(ids), -1)
    q = sql.SQL(
        "WITH p AS (SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::int[], %s::int[]) "
        "  AS p(id, a, b, fa, fb)), parts AS ("
        "  SELECT p.fa AS f, CASE WHEN p.a >= p.b THEN e.geom ELSE ST_LineSubstring(e.geom, 0, p.a) END AS g "
        "  FROM p JOIN {t} e USING (id) WHERE p.a >= 0"
        "  UNION ALL SELECT p.fb, ST_LineSubstring(e.geom, p.b, 1) FROM p JOIN {t} e USING (id) "
        "  WHERE p.b <= 1 AND p.a < p.b) "
        "SELECT f, ST_AsBinary(ST_Union(ST_Buffer(g, %s, 'quad_segs=2'))) FROM parts GROUP BY f"
    ).format(t=sql.Identifier("network", f"{g.name}_edges"))
    with conn.cursor() as cur:
        cur.execute(q, (ids.tolist(), a.tolist(), b.tolist(), fa.tolist(), fb.tolist(), buffer_m))
        return {int(f): shapely.from_wkb(bytes(w)) for f, w in cur.fetchall()}


def circles(xy: np.ndarray, radius_m: float, per_facility: bool) -> dict[int, shapely.Geometry]:
    """Straight-line isochrones: circles around facilities (merged, or one per facility)."""
    discs = shapely.buffer(shapely.points(xy), radius_m, quad_segs=16)
    if per_facility:
        return dict(enumerate(discs))
    return {-1: shapely.union_all(discs)}
