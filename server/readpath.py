"""Where the web server reads: its one database, or a streaming replica that falls back to the primary.

With `database.replica_url` (DATABASE_REPLICA_URL), the request and health pools prefer the replica while it is
reachable and within `database.replica_max_lag_s` (core.replica), and the data versions are read from it and learnt
of by LISTEN on the primary (server.versions). Without it nothing changes: one URL, LISTEN and reads on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import AppConfig, read_database_url, replica_database_url
from core.db import Database
from core.replica import ReplicaMonitor
from server.versions import VersionWatcher


@dataclass
class ReadPath:
    """The read pool, the health pool, the replica monitor (None: single database) and the version watcher."""

    db: Database
    health_db: Database
    replica: ReplicaMonitor | None
    versions: VersionWatcher


def read_path(cfg: AppConfig, dsn: str | None) -> ReadPath:
    """Build the read side of one app (the caller sets versions.on_change and starts it)."""
    primary = read_database_url(cfg, dsn)
    replica_url = "" if dsn else replica_database_url(cfg)  # an explicit dsn (tests, tools) is one database
    replica = ReplicaMonitor(replica_url, primary, cfg.database.replica_max_lag_s) if replica_url else None
    db = Database(primary, cfg.database.pool_size, cfg.server.statement_timeout_ms, replica=replica)
    health_db = Database(primary, 1, 2000, application_name="sejong-mapserver-health", replica=replica)
    versions = VersionWatcher(replica_url or primary, listen_dsn=primary, poll_s=cfg.database.version_poll_s)
    return ReadPath(db, health_db, replica, versions)
