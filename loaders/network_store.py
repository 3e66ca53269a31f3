"""Atomic writes of a road network: edges and nodes to staging, then one swap with their catalog rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from psycopg2 import sql

from loaders.core import (
    Column,
    Meta,
    RowStats,
    SourceFile,
    TableSpec,
    _copy_rows,
    _swap,
    catalog_entry,
    connect,
    prepare,
)
from loaders.errors import LoadError


def edge_spec(name: str, node_id: str, car_reverse: str, attributes: list[Column]) -> TableSpec:
    """network.<name>_edges: the routing columns every network format shares (what processes.network reads), then
    the format's own attributes. `node_id` says what a node id is, `car_reverse` where reverse driving comes from."""
    return TableSpec(f"network.{name}_edges", [
        Column("id", "bigint", "edge id"), Column("source", "bigint", f"from node ({node_id})"),
        Column("target", "bigint", f"to node ({node_id})"), Column("length_m", "double precision", "length (m)"),
        Column("walk_s", "double precision", "walking time (s), NULL where pedestrians may not pass"),
        Column("bike_s", "double precision", "cycling time (s), NULL where bicycles may not pass"),
        Column("car_s", "double precision", "driving time source->target (s), NULL where forbidden"),
        Column("car_reverse_s", "double precision", f"driving time target->source (s): {car_reverse}"),
        *attributes,
    ], "LineString", indexes=["source", "target"])


def node_spec(name: str, node_id: str) -> TableSpec:
    """network.<name>_nodes."""
    return TableSpec(f"network.{name}_nodes", [Column("id", "bigint", node_id)], "Point")


def unchanged(dsn: str, table: str, hashes: Mapping[str, str]) -> int | None:
    """Rows loaded last time when every source label still has its recorded sha256 (None: load needed)."""
    entry = catalog_entry(dsn, table)
    if not entry:
        return None
    recorded = {s.get("file"): s.get("sha256") for s in entry["sources"] or []}
    if any(recorded.get(label) != digest for label, digest in hashes.items()):
        return None
    return int(entry["rows_loaded"])


def _check_layout(cur: Any, spec: TableSpec) -> None:
    """Refuse when the existing table has other columns (e.g. an OSM network of the same name)."""
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                (spec.schema, spec.name))
    have = {r[0] for r in cur.fetchall()}
    want = set(spec.load_columns())
    if have and have != want:
        raise LoadError(f"{spec.qualified} exists with other columns ({', '.join(sorted(have - want))}: another "
                        f"network format); load under another --name or drop it first (./run load --drop)")


def _stage(cur: Any, spec: TableSpec, rows: Iterable[Mapping[str, Any]], label: str, empty: str) -> sql.Composed:
    stg = sql.Identifier("staging", f"{spec.schema}__{spec.name}_load")
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stg))
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(stg, spec.ident()))
    if _copy_rows(cur, stg, spec.load_columns(), rows, label, 20_000_000, None) == 0:
        raise LoadError(f"{label}: {empty}")
    return stg


def write_network(dsn: str, edges: TableSpec, nodes: TableSpec, edge_rows: list[dict[str, Any]],
                  node_rows: list[dict[str, Any]], meta: Meta, sources: list[SourceFile], stats: RowStats,
                  report: dict[str, Any] | None = None, label: str | None = None,
                  empty: str = "no rows (nothing usable in the file)") -> dict[str, int]:
    """Swap both tables and their catalog rows (the edges' row carrying `report` as quality.network) in ONE
    transaction; a failure leaves the previous network exactly as it was. `empty`: the refusal of a file that
    gives no edge."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (edges.qualified,))
            for spec in (edges, nodes):
                _check_layout(cur, spec)
        conn.rollback()
        prepare(dsn, [edges, nodes])
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (edges.qualified,))
            e_stg = _stage(cur, edges, edge_rows, f"{label} edges" if label else edges.qualified, empty)
            n_stg = _stage(cur, nodes, node_rows, f"{label} nodes" if label else nodes.qualified, empty)
            _swap(cur, edges, e_stg, meta, sources, stats, 0)
            _swap(cur, nodes, n_stg, meta, [SourceFile(s.file, s.sha256, rows=len(node_rows) if i == 0 else 0)
                                            for i, s in enumerate(sources)], RowStats(), 0)
            if report is not None:
                cur.execute("UPDATE meta.datasets SET quality = coalesce(quality, '{}'::jsonb) || %s::jsonb "
                            "WHERE table_name = %s", (json.dumps({"network": report}, ensure_ascii=False),
                                                      edges.qualified))
            cur.execute(sql.SQL("DROP TABLE {}, {}").format(e_stg, n_stg))
            cur.execute(sql.SQL("ANALYZE {}").format(edges.ident()))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return {edges.qualified: len(edge_rows), nodes.qualified: len(node_rows)}
