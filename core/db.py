"""The one PostgreSQL connection pool: per-process (fork-safe), bounded, 503 with Retry-After when exhausted."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.pool import PoolError, ThreadedConnectionPool

from core.errors import Busy

READ_OPTIONS = "-c default_transaction_read_only=on"
SESSION_OPTIONS = ("-c jit=off -c max_parallel_workers_per_gather=0 -c statement_timeout={timeout} "
                   "-c application_name={name}")


class _KeepingPool(ThreadedConnectionPool):
    """Opens connections on demand and keeps every returned one (psycopg2's pool closes those beyond minconn)."""

    minconn: int
    maxconn: int

    def _putconn(self, conn: Any, key: Any = None, close: bool = False) -> None:
        keep: int = self.minconn
        self.minconn = self.maxconn  # putconn() holds the pool lock around this call
        try:
            super()._putconn(conn, key, close)
        finally:
            self.minconn = keep


class Database:
    """A lazily created pool of connections, rebuilt in a forked child, with read and write borrowing."""

    def __init__(self, dsn: str, pool_size: int = 8, statement_timeout_ms: int = 15000, *, read_only: bool = True,
                 application_name: str = "sejong-mapserver", wait_s: float = 2.0) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.wait_s = wait_s  # how long a borrower waits for a connection to come back before 503
        self.read_only = read_only
        options = SESSION_OPTIONS.format(timeout=int(statement_timeout_ms), name=application_name)
        self.options = f"{options} {READ_OPTIONS}" if read_only else options
        self._pool: ThreadedConnectionPool | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._returned = threading.Condition()

    def _get_pool(self) -> ThreadedConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                # a pool inherited over fork is dropped, never closed: psycopg2 does not end a session
                # from a process other than the one that opened it, so the parent's sessions survive
                self._pool = _KeepingPool(0, self.pool_size, dsn=self.dsn, options=self.options)
                self._pid = os.getpid()
            return self._pool

    def _borrow(self) -> tuple[ThreadedConnectionPool, psycopg2.extensions.connection]:
        """A connection, waiting up to wait_s for one to come back when all are lent; else 503 Busy."""
        pool = self._get_pool()
        deadline = time.monotonic() + self.wait_s
        with self._returned:
            while True:
                try:
                    return pool, pool.getconn()
                except PoolError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Busy() from None
                    self._returned.wait(left)

    def _give_back(self, pool: ThreadedConnectionPool, conn: psycopg2.extensions.connection, close: bool) -> None:
        pool.putconn(conn, close=close)
        with self._returned:
            self._returned.notify()

    @contextlib.contextmanager
    def connection(self, snapshot: bool = False) -> Iterator[psycopg2.extensions.connection]:
        """Borrow a connection: autocommit (one round trip a statement), or one repeatable-read snapshot."""
        pool, conn = self._borrow()
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
            self._give_back(pool, conn, broken or bool(conn.closed))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection in a read-write transaction, committed on success and rolled back on error."""
        if self.read_only:
            raise RuntimeError("transaction() needs a Database created with read_only=False")
        pool, conn = self._borrow()
        broken = False
        try:
            if conn.autocommit:
                conn.set_session(autocommit=False)
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
            self._give_back(pool, conn, broken or bool(conn.closed))

    def close(self) -> None:
        """Close every pooled connection of this process."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.closeall()
            self._pool = None

