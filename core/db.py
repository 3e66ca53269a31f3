"""The one PostgreSQL connection pool: per-process (fork-safe), bounded, 503 with Retry-After when exhausted.

With a replica (core.replica.ReplicaMonitor), reads borrow from a second pool on the replica while it is reachable
and within its lag limit, and from the primary otherwise.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2.pool import PoolError, ThreadedConnectionPool

from core import pgconnect, requestid
from core.errors import Busy
from core.replica import ReplicaMonitor

READ_OPTIONS = "-c default_transaction_read_only=on"
SESSION_OPTIONS = ("-c jit=off -c max_parallel_workers_per_gather=0 -c statement_timeout={timeout} "
                   "-c application_name={name}")


class _KeepingPool(ThreadedConnectionPool):
    """Opens connections on demand and keeps every returned one (psycopg2's pool closes those beyond minconn)."""

    minconn: int
    maxconn: int
    _args: tuple[Any, ...]
    _kwargs: dict[str, Any]
    _used: dict[Any, Any]
    _rused: dict[int, Any]
    _pool: list[Any]

    def _connect(self, key: Any = None) -> Any:
        """psycopg2's, with the session settings applied after connecting where a PgBouncer refuses them."""
        conn = pgconnect.connect(*self._args, **self._kwargs)
        if key is not None:
            self._used[key] = conn
            self._rused[id(conn)] = key
        else:
            self._pool.append(conn)
        return conn

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
                 application_name: str = "sejong-mapserver", wait_s: float = 2.0,
                 replica: ReplicaMonitor | None = None) -> None:
        self.dsn = dsn  # the primary (or the only database)
        self.replica = replica  # reads prefer it while replica.usable()
        self.pool_size = pool_size
        self.wait_s = wait_s  # how long a borrower waits for a connection to come back before 503
        self.read_only = read_only
        self.application_name = application_name
        self.connect_timeout_s = max(2, min(10, int(statement_timeout_ms) // 1000))  # an unreachable host: no hang
        options = SESSION_OPTIONS.format(timeout=int(statement_timeout_ms), name=application_name)
        self.options = f"{options} {READ_OPTIONS}" if read_only else options
        self._pool: ThreadedConnectionPool | None = None
        self._replica_pool: ThreadedConnectionPool | None = None
        self._replica_gen = -1
        self._pid = 0
        self._lock = threading.Lock()
        self._returned = threading.Condition()
        self._names: weakref.WeakKeyDictionary[psycopg2.extensions.connection, str] = weakref.WeakKeyDictionary()

    def _get_pool(self) -> ThreadedConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                # a pool inherited over fork is dropped, never closed: psycopg2 does not end a session
                # from a process other than the one that opened it, so the parent's sessions survive
                self._pool = _KeepingPool(0, self.pool_size, dsn=self.dsn, options=self.options,
                                          connect_timeout=self.connect_timeout_s)
                self._replica_pool = None
                self._pid = os.getpid()
            return self._pool

    def _get_replica_pool(self) -> ThreadedConnectionPool | None:
        """The replica's pool while reads may go there (re-created when the replica comes back), else None."""
        replica = self.replica
        if replica is None or not replica.usable():
            return None
        self._get_pool()
        with self._lock:
            if self._replica_pool is None or self._replica_gen != replica.generation:
                if self._replica_pool is not None:
                    self._replica_pool.closeall()  # sessions of the replica's previous life are dead
                self._replica_pool = _KeepingPool(0, self.pool_size, dsn=replica.replica_dsn, options=self.options,
                                                  connect_timeout=self.connect_timeout_s)
                self._replica_gen = replica.generation
            return self._replica_pool

    def _borrow(self, read: bool = False) -> tuple[ThreadedConnectionPool, psycopg2.extensions.connection]:
        """A connection (a read prefers the replica), waiting up to wait_s for one to come back when all are
        lent; else 503 Busy."""
        pool = (self._get_replica_pool() if read else None) or self._get_pool()
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
                except psycopg2.OperationalError:
                    if pool is self._pool or self.replica is None:
                        raise
                    self.replica.mark_down()  # cannot connect to the replica: this read and the next go to the primary
                    pool = self._get_pool()

    def _give_back(self, pool: ThreadedConnectionPool, conn: psycopg2.extensions.connection, close: bool) -> None:
        if pool.closed:  # a replica pool dropped while this connection was lent
            conn.close()
        else:
            pool.putconn(conn, close=close)
        with self._returned:
            self._returned.notify()

    @contextlib.contextmanager
    def connection(self, snapshot: bool = False) -> Iterator[psycopg2.extensions.connection]:
        """Borrow a connection: autocommit (one round trip a statement), or one repeatable-read snapshot."""
        pool, conn = self._borrow(read=self.read_only)
        broken = False
        try:
            if snapshot:
                conn.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
            elif not conn.autocommit:
                conn.set_session(autocommit=True)
            self._tag(conn)
            yield conn
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
            broken = True
            if self.replica is not None and pool is self._replica_pool and not isinstance(
                    err, psycopg2.errors.QueryCanceled):
                self.replica.mark_down()  # the replica went away under this read: the next ones use the primary
            raise
        finally:
            if not conn.closed and not conn.autocommit:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            self._give_back(pool, conn, broken or bool(conn.closed))

    def _tag(self, conn: psycopg2.extensions.connection) -> None:
        """Name the request being served in the session's application_name (pg_stat_activity, the server log)."""
        rid = requestid.REQUEST_ID.get()
        name = f"{self.application_name}/{rid}" if rid else self.application_name
        if self._names.get(conn, self.application_name) != name:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('application_name', %s, false)", (name[:63],))
            self._names[conn] = name

    def usage(self) -> dict[str, tuple[int, int]]:
        """(lent, idle) connections of this process's pools: 'primary' and, with a replica, 'replica'."""
        found: dict[str, tuple[int, int]] = {}
        for name, pool in (("primary", self._pool), ("replica", self._replica_pool)):
            if pool is not None and self._pid == os.getpid():
                found[name] = (len(pool._used), len(pool._pool))  # type: ignore[attr-defined]
        return found

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
            if self._pid == os.getpid():
                for pool in (self._pool, self._replica_pool):
                    if pool is not None:
                        pool.closeall()
            self._pool = self._replica_pool = None

