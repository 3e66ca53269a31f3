"""Data versions of the loaded tables, kept current in memory by LISTEN/NOTIFY from the loaders' swaps.

On one database the watcher listens and reads there. With a streaming replica (NOTIFY is not replicated) it
listens on the primary and reads the versions from the replica, which is where tiles render: a notification
withdraws the versions it vouches for (callers then read versions and data in one snapshot) until the replica has
replayed the notified versions, and a poll of the replica every `poll_s` catches whatever a lost notification
missed. So the versions in a tile's cache key are never newer than the data it was rendered from, and never older
than the replica's for longer than the replay itself (or `poll_s` while the primary is unreachable).
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable

import psycopg2
import psycopg2.extensions

from core import pgconnect

LOGGER = logging.getLogger(__name__)
CHANNEL = "sejong_data_version"
CATCH_UP_POLL_S = 0.01  # how often the replica is read while it has not replayed a notified version yet


def _load(conn: psycopg2.extensions.connection) -> dict[str, int]:
    """table -> data_version of meta.datasets ({} before the first load)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('meta.datasets') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return {}
        cur.execute("SELECT table_name, data_version FROM meta.datasets")
        return {str(t): int(v) for t, v in cur.fetchall()}


class VersionWatcher:
    """Daemon threads that follow catalog changes; `current()` is None whenever they cannot vouch for them."""

    def __init__(self, dsn: str, on_change: Callable[[], None] | None = None, *, listen_dsn: str | None = None,
                 poll_s: float = 1.0) -> None:
        self.dsn = dsn  # where versions are read: the database tiles render from
        self.listen_dsn = listen_dsn or dsn  # where notifications come from: the primary
        self.on_change = on_change
        self.poll_s = poll_s
        self._versions: dict[str, int] | None = None
        self._published: dict[str, int] | None = None
        self._pending: dict[str, int] = {}  # versions notified by the primary, not yet seen on the replica
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._wake = threading.Event()

    @property
    def replicated(self) -> bool:
        """Whether notifications come from another database than the one versions are read from."""
        return self.listen_dsn != self.dsn

    def start(self) -> None:
        """Start listening (and polling the replica) (idempotent)."""
        if any(t.is_alive() for t in self._threads):
            return
        self._threads = [threading.Thread(target=self._listen, name="version-watcher", daemon=True)]
        if self.replicated:
            self._threads.append(threading.Thread(target=self._poll, name="version-poller", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop reconnecting (the threads end at their next wake-up)."""
        self._stop.set()
        self._wake.set()

    def current(self) -> dict[str, int] | None:
        """table -> data_version, or None when not vouched for (callers then ask the database)."""
        with self._lock:
            return self._versions

    def _listen(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = pgconnect.connect(self.listen_dsn, application_name="sejong-mapserver-versions")
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANNEL}")
                self._notified(_load(conn), connecting=True)
                while not self._stop.is_set():
                    if select.select([conn], [], [], 30.0) == ([], [], []):
                        conn.poll()  # keep-alive; also surfaces a dead connection
                        continue
                    conn.poll()
                    if conn.notifies:
                        conn.notifies.clear()
                        self._notified(_load(conn))
            except Exception as err:  # reconnect; meanwhile callers fall back to the database (or the poll)
                LOGGER.warning("version watcher: %s; retrying", err)
                if not self.replicated:
                    with self._lock:
                        self._versions = None
                self._stop.wait(2.0)
            finally:
                if conn is not None and not conn.closed:
                    conn.close()

    def _notified(self, versions: dict[str, int], connecting: bool = False) -> None:
        """The primary's versions after a notification (or on connecting)."""
        if not self.replicated:
            with self._lock:
                self._versions = versions
            if not connecting and self.on_change is not None:
                self.on_change()
            return
        with self._lock:
            seen = self._published or {}
            ahead = {t: v for t, v in versions.items() if v > seen.get(t, 0)}
            if ahead:
                self._pending.update(ahead)
                self._versions = None  # until the replica has them: one snapshot per request
        self._wake.set()

    def _poll(self) -> None:
        conn = None
        while not self._stop.is_set():
            with self._lock:
                catching_up = bool(self._pending)
            self._wake.wait(CATCH_UP_POLL_S if catching_up else self.poll_s)
            self._wake.clear()
            try:
                if conn is None or conn.closed:
                    conn = psycopg2.connect(self.dsn, application_name="sejong-mapserver-versions", connect_timeout=2)
                    conn.autocommit = True
                self._polled(_load(conn))
            except Exception as err:
                LOGGER.warning("version poller: %s; retrying", err)
                with self._lock:
                    self._versions = None
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(1.0)
        if conn is not None:
            conn.close()

    def _polled(self, versions: dict[str, int]) -> None:
        """The replica's versions: published unless a notified version has not been replayed yet."""
        with self._lock:
            if any(versions.get(t, 0) < v for t, v in self._pending.items()):
                return
            self._pending = {}
            changed = self._published is not None and versions != self._published
            self._versions = self._published = versions
        if changed and self.on_change is not None:
            self.on_change()
