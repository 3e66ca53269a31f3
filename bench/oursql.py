"""Diagnostic: the SQL our server runs for an items URL, timed without HTTP (to split SQL cost from HTTP/Python).

It composes the statements with the server's own builders (read-only use of server/ and layers/), mirroring
server.features._fetch_page: the page query, plus the exact count when the page is full on a table of at most
EXACT_COUNT_MAX_ROWS rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import psycopg2.extensions

from core.config import load_config
from layers.model import resolve
from layers.query import build_items_query
from layers.sql import sql_count, sql_items
from server.features import EXACT_COUNT_MAX_ROWS


def our_sql_call(conn: psycopg2.extensions.connection, config: Path, layer_id: str,
                 url: str) -> Callable[[], float]:
    """A callable timing our server's statements for this URL (seconds), on a bench connection."""
    cfg = load_config(config)
    layer = resolve(conn, layer_id, cfg.layers[layer_id])
    conn.rollback()
    if layer is None:
        raise RuntimeError(f"layer {layer_id} does not resolve")
    args = {k: v for k, v in parse_qsl(urlsplit(url).query) if k != "f"}
    q, _ = build_items_query(layer, args, cfg.server)
    page = sql_items(layer, q).as_string(conn)
    count = sql_count(layer, q).as_string(conn)
    small = layer.estimated_rows <= EXACT_COUNT_MAX_ROWS

    def call() -> float:
        with conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute(page)
            _, returned, _ = cur.fetchone()
            if small and (q.where or q.after is not None or q.offset or int(returned) >= q.limit):
                cur.execute(count)
                cur.fetchone()
            elapsed = time.perf_counter() - t0
        conn.rollback()
        return elapsed

    return call
