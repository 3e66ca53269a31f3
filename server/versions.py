"""Data versions of the loaded tables, kept current in memory by LISTEN/NOTIFY from the loaders' swaps."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable

import psycopg2

LOGGER = logging.getLogger(__name__)
CHANNEL = "sejong_data_version"


class VersionWatcher:
    """A daemon thread that listens for catalog changes; `current()` is None whenever it cannot vouch for them."""

    def __init__(self, dsn: str, on_change: Callable[[], None] | None = None) -> None:
        self.dsn = dsn
        self.on_change = on_change
        self._versions: dict[str, int] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start listening (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="version-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop reconnecting (the thread ends at its next wake-up)."""
        self._stop.set()

    def current(self) -> dict[str, int] | None:
        """table -> data_version, or None when not listening (callers then ask the database)."""
        with self._lock:
            return self._versions

    def _load(self, conn: psycopg2.extensions.connection) -> dict[str, int]:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('meta.datasets') IS NOT NULL")
            if not cur.fetchone()[0]:
                return {}
            cur.execute("SELECT table_name, data_version FROM meta.datasets")
            return {str(t): int(v) for t, v in cur.fetchall()}

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = psycopg2.connect(self.dsn, application_name="sejong-mapserver-versions")
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANNEL}")
                versions = self._load(conn)
                with self._lock:
                    self._versions = versions
                while not self._stop.is_set():
                    if select.select([conn], [], [], 30.0) == ([], [], []):
                        conn.poll()  # keep-alive; also surfaces a dead connection
                        continue
                    conn.poll()
                    if conn.notifies:
                        conn.notifies.clear()
                        versions = self._load(conn)
                        with self._lock:
                            self._versions = versions
                        if self.on_change is not None:
                            self.on_change()
            except Exception as err:  # reconnect; meanwhile callers fall back to the database
                LOGGER.warning("version watcher: %s; retrying", err)
                with self._lock:
                    self._versions = None
                self._stop.wait(2.0)
            finally:
                if conn is not None and not conn.closed:
                    conn.close()
