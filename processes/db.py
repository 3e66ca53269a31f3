"""Writable PostgreSQL connections for jobs and result layers (a small pool per process id)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
from psycopg2.pool import ThreadedConnectionPool

OPTIONS = "-c jit=off -c application_name=sejong-processes -c statement_timeout={timeout}"


class WriteDB:
    """Lazily created, fork-safe connection pool with commit-or-rollback transactions."""

    def __init__(self, dsn: str, size: int = 4, statement_timeout_ms: int = 600_000) -> None:
        self.dsn = dsn
        self.size = size
        self.options = OPTIONS.format(timeout=statement_timeout_ms)
        self._pool: ThreadedConnectionPool | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _get_pool(self) -> ThreadedConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadedConnectionPool(0, self.size, dsn=self.dsn, options=self.options)
                self._pid = os.getpid()
            return self._pool

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection in a transaction, committed on success and rolled back on error."""
        pool = self._get_pool()
        conn = pool.getconn()
        broken = False
        try:
            yield conn
            conn.commit()
        except BaseException:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            raise
        finally:
            pool.putconn(conn, close=broken or bool(conn.closed))

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.closeall()
            self._pool = None
