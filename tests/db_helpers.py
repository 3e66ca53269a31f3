"""Helpers the loader tests share: one SQL statement on its own connection, and dropping a test's tables."""

from __future__ import annotations

from typing import Any

import psycopg2


def query(dsn: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (test-only literal SQL, values bound) and commit; the rows it returned."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def drop_test_tables(dsn: str, prefix: str) -> None:
    """Drop the public.<prefix>_* tables a test module made, and their catalog rows."""
    for (name,) in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE %s",
                         (prefix.replace("_", "\\_") + "\\_%",)):
        query(dsn, f'DROP TABLE IF EXISTS public."{name}"')
    query(dsn, "DELETE FROM meta.datasets WHERE table_name LIKE %s", ("public." + prefix.replace("_", "\\_") + "\\_%",))
