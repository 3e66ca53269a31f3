"""How far a streaming replica is behind its primary, probed in the background: reads use it only while it is
reachable and at most `max_lag_s` behind (core.db falls back to the primary otherwise).

Lag is the age of the oldest primary WAL position the replica has not replayed yet, from the primary positions
sampled at each probe: an idle primary means no lag (unlike now() - pg_last_xact_replay_timestamp(), which grows
while nothing is written). Its resolution is the probe interval.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

import psycopg2
import psycopg2.extensions

from core import pgconnect

LOGGER = logging.getLogger(__name__)
PROBE_TIMEOUT_MS = 2000


def lsn(text: str) -> int:
    """A pg_lsn ('16/B374D848') as an integer byte position."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class ReplicaMonitor:
    """The replica's health and lag, probed every `probe_s` by a daemon thread of this process (fork-safe)."""

    def __init__(self, replica_dsn: str, primary_dsn: str, max_lag_s: float = 5.0, probe_s: float = 0.5) -> None:
        self.replica_dsn = replica_dsn
        self.primary_dsn = primary_dsn
        self.max_lag_s = max_lag_s
        self.probe_s = probe_s
        self.lag_s: float | None = None  # None: unreachable (or not probed yet)
        self.generation = 0  # bumped each time the replica becomes usable again: pools drop older connections
        self._samples: deque[tuple[float, int]] = deque(maxlen=4096)  # (monotonic time, primary WAL position)
        self._conns: dict[str, psycopg2.extensions.connection] = {}
        self._pid = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def usable(self) -> bool:
        """Whether reads may go to the replica now (starts the probe thread in this process on first use)."""
        self._ensure_thread()
        lag = self.lag_s
        return lag is not None and lag <= self.max_lag_s

    def mark_down(self) -> None:
        """A read on the replica failed to connect: use the primary until a probe finds it again."""
        self.lag_s = None

    def stop(self) -> None:
        """End the probe thread at its next wake-up."""
        self._stop.set()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._conns = {}  # connections inherited over fork belong to the parent
        self.probe()
        threading.Thread(target=self._run, name="replica-monitor", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self.probe_s):
            self.probe()

    def _query(self, role: str, dsn: str, query: str) -> tuple[object, ...]:
        conn = self._conns.get(role)
        try:
            if conn is None or conn.closed:
                conn = pgconnect.connect(dsn, f"-c statement_timeout={PROBE_TIMEOUT_MS}", connect_timeout=2,
                                         application_name="sejong-replica-monitor")
                conn.autocommit = True
                self._conns[role] = conn
            with conn.cursor() as cur:
                cur.execute(query)
                row = cur.fetchone()
            assert row is not None
            return tuple(row)
        except Exception:
            if conn is not None:
                conn.close()
            self._conns.pop(role, None)
            raise

    def probe(self) -> float | None:
        """Measure the lag once (None: replica unreachable); sets lag_s."""
        now = time.monotonic()
        try:
            (primary,) = self._query("primary", self.primary_dsn, "SELECT pg_current_wal_lsn()::text")
            self._samples.append((now, lsn(str(primary))))
        except Exception:  # no primary (stopped, or this is the promoted one): the replica's position is all we know
            pass
        try:
            recovering, replayed = self._query("replica", self.replica_dsn,
                                               "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
        except Exception as err:
            if self.lag_s is not None:
                LOGGER.warning("replica unreachable (%s); reads go to the primary", str(err).strip())
            self.lag_s = None
            return None
        lag = 0.0
        if recovering and replayed is not None:
            done = lsn(str(replayed))
            while self._samples and self._samples[0][1] <= done:
                self._samples.popleft()
            lag = now - self._samples[0][0] if self._samples else 0.0
        was = self.lag_s
        if was is None or was > self.max_lag_s:
            if lag <= self.max_lag_s:
                self.generation += 1
                LOGGER.info("replica usable again (lag %.3f s); reads go to it", lag)
        elif lag > self.max_lag_s:
            LOGGER.warning("replica %.1f s behind (limit %.1f s); reads go to the primary", lag, self.max_lag_s)
        self.lag_s = lag
        return lag
