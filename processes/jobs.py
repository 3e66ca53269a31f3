"""Jobs persisted in PostgreSQL (meta.jobs): every worker process of every instance shares this state.

A job is *held* by the process named in owner_host/owner_pid, or *queued* for any instance (owner_pid 0): an
instance with a free worker claims the oldest queued job with FOR UPDATE SKIP LOCKED, so two never take the same
one, and holds it with a lease its heartbeat renews. When a lease expires, a job that never started is queued
again and a running one is failed (it may have written part of its results), so none is lost or stuck.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg2 import sql

from core.db import Database
from core.errors import TooManyRequests
from core.schema import migrate

HOST = socket.gethostname()
QUEUED_HOST, QUEUED_PID = "", 0  # owner of a job queued for any instance

_COLS = ("job_id", "process_id", "status", "progress", "message", "response", "created", "started", "finished",
         "updated", "owner_host", "owner_pid", "compute_s", "owner", "owner_roles")
QUOTA_RETRY_AFTER_S = 10  # Retry-After of a 429 for a caller at their concurrent-jobs quota


@dataclass
class Job:
    """One row of meta.jobs (results and error loaded on demand)."""

    job_id: str
    process_id: str
    status: str
    progress: int
    message: str
    response: str
    created: datetime
    started: datetime | None
    finished: datetime | None
    updated: datetime
    owner_host: str
    owner_pid: int
    compute_s: float | None
    owner: str | None = None  # the identity that created it (oidc:<sub>, api-key:<id>); None: anonymous
    owner_roles: list[str] = field(default_factory=list)  # its roles at creation


def _job(row: tuple[Any, ...]) -> Job:
    values = list(row)
    values[-1] = list(values[-1] or ())  # owner_roles: text[] may come back as None from older rows
    return Job(*values)


class _Everyone:
    """The owner filter of an administrator's job list: every owner."""


EVERYONE = _Everyone()


def _owned(owner: str | None) -> sql.Composable:
    """The condition `owned by owner` (one %s parameter unless anonymous); both forms use jobs_owner_idx."""
    return sql.SQL("owner IS NULL") if owner is None else sql.SQL("owner = %s")


class JobStore:
    """CRUD on meta.jobs."""

    def __init__(self, db: Database, lease_s: float = 60.0) -> None:
        self.db = db
        self.lease_s = lease_s

    def renew(self, job_ids: list[str]) -> int:
        """Extend the leases of this process's active jobs (the heartbeat); how many were renewed."""
        if not job_ids:
            return 0
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET lease_expires = clock_timestamp() + make_interval(secs => %s) "
                        "WHERE job_id = ANY(%s) AND status IN ('accepted', 'running')", (self.lease_s, job_ids))
            return int(cur.rowcount)

    def ensure(self) -> None:
        """Migrate the database's own schema, meta.jobs included (core.schema)."""
        migrate(self.db.dsn)

    def create(self, process_id: str, inputs: dict[str, Any], response: str, owner: str | None = None,
               owner_roles: Iterable[str] = (), max_active: int | None = None) -> Job:
        """Register a job as accepted, held by this process with a lease and owned by `owner` (None: anonymous).

        With `max_active`, TooManyRequests (429) when the owner already has that many jobs queued or running on any
        server (all anonymous callers share one count); the check and the insert are serialised per owner.
        """
        job_id = str(uuid.uuid4())
        with self.db.transaction() as conn, conn.cursor() as cur:
            if max_active is not None:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sejong-jobs-owner:{owner or ''}",))
                cur.execute(sql.SQL("SELECT count(*) FROM meta.jobs WHERE {} AND status IN ('accepted', 'running')")
                            .format(_owned(owner)), [] if owner is None else [owner])
                active = cur.fetchone()
                if active is not None and int(active[0]) >= max_active:
                    who = "anonymous callers" if owner is None else "you"
                    raise TooManyRequests(f"{who} already have {active[0]} job(s) queued or running, the "
                                          f"concurrent_jobs quota is {max_active}; retry when one has finished "
                                          "or dismiss one (DELETE /jobs/{jobId})", QUOTA_RETRY_AFTER_S)
            cur.execute(sql.SQL("INSERT INTO meta.jobs (job_id, process_id, status, message, inputs, response, "
                                "owner_host, owner_pid, lease_expires, owner, owner_roles) VALUES (%s, %s, "
                                "'accepted', 'queued', %s::jsonb, %s, %s, %s, "
                                "clock_timestamp() + make_interval(secs => %s), %s, %s::text[]) "
                                "RETURNING {}").format(sql.SQL(", ").join(map(sql.Identifier, _COLS))),
                        (job_id, process_id, json.dumps(inputs, ensure_ascii=False), response, HOST, os.getpid(),
                         self.lease_s, owner, sorted(set(owner_roles))))
            row = cur.fetchone()
        assert row is not None
        return _job(row)

    def get(self, job_id: str) -> Job | None:
        """A job by id."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM meta.jobs WHERE job_id = %s").format(
                sql.SQL(", ").join(map(sql.Identifier, _COLS))), (job_id,))
            row = cur.fetchone()
        return _job(row) if row else None

    def list_jobs(self, limit: int, offset: int = 0, process_id: str | None = None,
                  status: list[str] | None = None, owner: str | _Everyone | None = None) -> list[Job]:
        """Jobs of one owner (None: the anonymous ones; EVERYONE: all), newest first."""
        conds: list[sql.Composable] = [sql.SQL("TRUE")]
        params: list[Any] = []
        if not isinstance(owner, _Everyone):
            conds.append(_owned(owner))
            params += [] if owner is None else [owner]
        if process_id:
            conds.append(sql.SQL("process_id = %s"))
            params.append(process_id)
        if status:
            conds.append(sql.SQL("status = ANY(%s)"))
            params.append(status)
        q = sql.SQL("SELECT {} FROM meta.jobs WHERE {} ORDER BY created DESC, job_id LIMIT %s OFFSET %s").format(
            sql.SQL(", ").join(map(sql.Identifier, _COLS)), sql.SQL(" AND ").join(conds))
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute(q, [*params, limit, offset])
            return [_job(r) for r in cur.fetchall()]

    def inputs(self, job_id: str) -> dict[str, Any]:
        """The stored inputs of a job."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT inputs FROM meta.jobs WHERE job_id = %s", (job_id,))
            row = cur.fetchone()
        return dict(row[0]) if row else {}

    def results(self, job_id: str) -> tuple[Any, Any]:
        """(results, error) of a job."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT results, error FROM meta.jobs WHERE job_id = %s", (job_id,))
            row = cur.fetchone()
        return (row[0], row[1]) if row else (None, None)

    def start(self, job_id: str) -> bool:
        """accepted -> running, if this process holds it; False if it was dismissed or requeued meanwhile."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET status = 'running', started = clock_timestamp(), "
                        "updated = clock_timestamp(), message = 'running', "
                        "lease_expires = clock_timestamp() + make_interval(secs => %s) "
                        "WHERE job_id = %s AND status = 'accepted' AND owner_host = %s AND owner_pid = %s",
                        (self.lease_s, job_id, HOST, os.getpid()))
            return bool(cur.rowcount)

    def release(self, job_id: str, outputs: list[str]) -> bool:
        """Hand a job this process holds but will not start now to the shared queue (with its requested outputs)."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET owner_host = %s, owner_pid = %s, message = 'queued', "
                        "inputs = inputs || jsonb_build_object('_outputs', %s::jsonb), updated = clock_timestamp() "
                        "WHERE job_id = %s AND status = 'accepted' AND owner_host = %s AND owner_pid = %s",
                        (QUEUED_HOST, QUEUED_PID, json.dumps(outputs), job_id, HOST, os.getpid()))
            return bool(cur.rowcount)

    def claim(self) -> tuple[Job, dict[str, Any]] | None:
        """Take the oldest queued job for this process (SKIP LOCKED: concurrent claimers get different jobs)."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("UPDATE meta.jobs SET owner_host = %s, owner_pid = %s, updated = clock_timestamp(), "
                                "lease_expires = clock_timestamp() + make_interval(secs => %s) WHERE job_id = ("
                                "SELECT job_id FROM meta.jobs WHERE status = 'accepted' AND owner_pid = %s "
                                "ORDER BY created LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {}, inputs").format(
                sql.SQL(", ").join(map(sql.Identifier, _COLS))), (HOST, os.getpid(), self.lease_s, QUEUED_PID))
            row = cur.fetchone()
        return (_job(row[:-1]), dict(row[-1])) if row else None

    def requeue_unstarted(self, job_ids: list[str]) -> set[str]:
        """Queue again the jobs among job_ids this process holds but has not started (a graceful stop)."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET owner_host = %s, owner_pid = %s, message = 'queued', "
                        "updated = clock_timestamp() WHERE job_id = ANY(%s) AND status = 'accepted' "
                        "AND owner_host = %s AND owner_pid = %s RETURNING job_id",
                        (QUEUED_HOST, QUEUED_PID, job_ids, HOST, os.getpid()))
            return {str(r[0]) for r in cur.fetchall()}

    def active_here_or_queued(self) -> int:
        """Jobs this process holds plus the jobs queued for any instance (the bound of processes.max_queued)."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM meta.jobs WHERE status IN ('accepted', 'running') AND "
                        "(owner_pid = %s OR (owner_host = %s AND owner_pid = %s))", (QUEUED_PID, HOST, os.getpid()))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def queue_depth(self) -> dict[str, int]:
        """Active jobs by state: queued (for any instance), held (claimed, not started) and running."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT CASE WHEN status = 'running' THEN 'running' WHEN owner_pid = %s THEN 'queued' "
                        "ELSE 'held' END, count(*) FROM meta.jobs WHERE status IN ('accepted', 'running') "
                        "GROUP BY 1", (QUEUED_PID,))
            found = {str(k): int(n) for k, n in cur.fetchall()}
        return {k: found.get(k, 0) for k in ("queued", "held", "running")}

    def progress(self, job_id: str, percent: int, message: str) -> str | None:
        """Record progress of a running job; returns the current status (None: job gone)."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET progress = %s, message = %s, updated = clock_timestamp() "
                        "WHERE job_id = %s AND status = 'running' RETURNING status",
                        (max(0, min(100, percent)), message[:500], job_id))
            row = cur.fetchone()
            if row:
                return str(row[0])
            cur.execute("SELECT status FROM meta.jobs WHERE job_id = %s", (job_id,))
            row = cur.fetchone()
        return str(row[0]) if row else None

    def status(self, job_id: str) -> str | None:
        """Current status."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT status FROM meta.jobs WHERE job_id = %s", (job_id,))
            row = cur.fetchone()
        return str(row[0]) if row else None

    def finish(self, job_id: str, results: Any, compute_s: float) -> bool:
        """running -> successful with results; False if it was dismissed meanwhile."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET status = 'successful', progress = 100, message = 'done', "
                        "results = %s::jsonb, compute_s = %s, finished = clock_timestamp(), "
                        "updated = clock_timestamp() WHERE job_id = %s AND status = 'running'",
                        (json.dumps(results, ensure_ascii=False, allow_nan=False), compute_s, job_id))
            return bool(cur.rowcount)

    def fail(self, job_id: str, message: str, error: dict[str, Any]) -> None:
        """Mark an active job failed with its exception document."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET status = 'failed', message = %s, error = %s::jsonb, "
                        "finished = clock_timestamp(), updated = clock_timestamp() "
                        "WHERE job_id = %s AND status IN ('accepted', 'running')",
                        (message[:500], json.dumps(error, ensure_ascii=False), job_id))

    def dismiss(self, job_id: str) -> Job | None:
        """Dismiss a job (a running one stops at its next progress check); results are dropped."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.jobs SET status = 'dismissed', message = 'dismissed by request', "
                        "results = NULL, finished = coalesce(finished, clock_timestamp()), "
                        "updated = clock_timestamp() WHERE job_id = %s", (job_id,))
        return self.get(job_id)

    def fail_orphans(self, alive: set[int] | None = None) -> list[str]:
        """Settle active jobs whose server is gone (lease expired, or owner process dead on this host): one that
        never started is queued again for any instance, a running one is failed; returns the failed ones."""
        return self.settle_orphans(alive)[0]

    def settle_orphans(self, alive: set[int] | None = None) -> tuple[list[str], list[str]]:
        """(failed, requeued) jobs of servers that are gone; queued jobs have no server and are left alone."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT job_id, status, owner_host, owner_pid, coalesce(lease_expires, updated + "
                        "make_interval(secs => %s)) < clock_timestamp() FROM meta.jobs "
                        "WHERE status IN ('accepted', 'running') AND owner_pid <> %s FOR UPDATE SKIP LOCKED",
                        (self.lease_s, QUEUED_PID))
            gone = [(jid, status) for jid, status, host, pid, expired in cur.fetchall()
                    if expired or (host == HOST and not _pid_alive(int(pid), alive))]
            dead = [jid for jid, status in gone if status == "running"]
            requeued = [jid for jid, status in gone if status == "accepted"]
            if dead:
                msg = ("the server process running this job stopped (restart or crash) before it finished; "
                       "submit the job again")
                err = {"code": "NoApplicableCode", "type": "http://www.opengis.net/def/exceptions/"
                       "ogcapi-processes-1/1.0/job-results-failed", "status": 500, "description": msg}
                cur.execute("UPDATE meta.jobs SET status = 'failed', message = %s, error = %s::jsonb, "
                            "finished = clock_timestamp(), updated = clock_timestamp() WHERE job_id = ANY(%s)",
                            (msg, json.dumps(err), dead))
            if requeued:
                cur.execute("UPDATE meta.jobs SET owner_host = %s, owner_pid = %s, updated = clock_timestamp(), "
                            "message = 'queued again: the server holding it stopped' WHERE job_id = ANY(%s)",
                            (QUEUED_HOST, QUEUED_PID, requeued))
        return dead, requeued

    def delete_older_than(self, hours: float) -> int:
        """Delete finished jobs (and their results) older than the retention; how many."""
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM meta.jobs WHERE status IN ('successful', 'failed', 'dismissed') "
                        "AND coalesce(finished, updated) < clock_timestamp() - make_interval(secs => %s)",
                        (hours * 3600.0,))
            return int(cur.rowcount)


def _pid_alive(pid: int, alive: set[int] | None) -> bool:
    if alive is not None and pid in alive:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
