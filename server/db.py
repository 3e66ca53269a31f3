"""PostgreSQL connection pool with session options that suit short spatial queries."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
from psycopg2.pool import ThreadedConnectionPool

SESSION_OPTIONS = (
    "-c jit=off -c max_parallel_workers_per_gather=0 -c statement_timeout={timeout} "
    "-c default_transaction_read_only=on -c application_name=sejong-mapserver"
)


class Database:
    """A lazily created, fork-safe thread pool of connections."""

    def __init__(self, dsn: str, pool_size: int = 8, statement_timeout_ms: int = 15000) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.options = SESSION_OPTIONS.format(timeout=statement_timeout_ms)
        self._pool: ThreadedConnectionPool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ThreadedConnectionPool:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadedConnectionPool(1, self.pool_size, dsn=self.dsn, options=self.options)
            return self._pool

    @contextlib.contextmanager
    def connection(self, snapshot: bool = False) -> Iterator[psycopg2.extensions.connection]:
        """Borrow a read-only connection: autocommit (one round trip a statement), or one repeatable-read snapshot."""
        pool = self._get_pool()
        conn = pool.getconn()
        broken = False
        try:
            if snapshot:
                conn.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
            elif not conn.autocommit:
                conn.set_session(autocommit=True)
            yield conn
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            broken = True
            raise
        finally:
            if not conn.closed and not conn.autocommit:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            pool.putconn(conn, close=broken or bool(conn.closed))

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None
