"""Jobs across instances: two real runtime processes on one database share the queue (SKIP LOCKED claims), and the
jobs of a killed one are failed (running) or queued again (not started) when its lease expires, never lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from process_helpers import wait_for
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn

from core.db import Database
from processes.jobs import JobStore

REPO = Path(__file__).resolve().parent.parent
LEASE_S = 5.0
# one instance: a job runtime with two workers that claims queued jobs (no HTTP needed to take jobs)
INSTANCE = """
import signal, sys, time
from core.config import ProcessesConfig
from processes.echo import EchoProcessor
from processes.runtime import Runtime
cfg = ProcessesConfig(workers=2, lease_s=LEASE_S, claim_poll_s=0.1)
rt = Runtime(sys.argv[1], cfg, {"echo": EchoProcessor(cfg)}, services_for=lambda job: {})
rt.start()
signal.signal(signal.SIGTERM, lambda *_: (rt.shutdown(), sys.exit(0)))
print("ready", flush=True)
while True:
    time.sleep(1)
""".replace("LEASE_S", str(LEASE_S))


def _admin_exec(admin: str, query: sql.Composable) -> None:
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query)
    finally:
        conn.close()


@pytest.fixture()
def own_dsn(dsn: str) -> Iterator[str]:
    """A database of its own: the other servers of the test run share the test database's queue and would claim jobs."""
    admin = os.environ.get("SEJONG_TEST_ADMIN_URL")
    if not admin:
        pytest.fail("SEJONG_TEST_ADMIN_URL is not set: run the tests with ./run test")
    name = f"sejong_jobs_{uuid.uuid4().hex[:10]}"
    _admin_exec(admin, sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                     sql.Identifier(parse_dsn(dsn)["user"])))
    conn = psycopg2.connect(make_dsn(admin, dbname=name))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        conn.close()
    yield make_dsn(dsn, dbname=name)
    _admin_exec(admin, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture()
def store(own_dsn: str) -> Iterator[JobStore]:
    """A job store on a database of its own (schema migrated)."""
    db = Database(own_dsn, 2, 30_000, read_only=False, application_name="test-jobs-claim")
    jobs = JobStore(db, LEASE_S)
    jobs.ensure()
    yield jobs
    db.close()


@pytest.fixture()
def instances(own_dsn: str, store: JobStore) -> Iterator[list[subprocess.Popen[str]]]:
    """Two runtime processes on the same database."""
    procs = [subprocess.Popen([sys.executable, "-c", INSTANCE, own_dsn], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)


def _queue(store: JobStore, text: str, pause: int) -> str:
    """Register an echo job and hand it to the shared queue (as a server with no free worker does)."""
    job = store.create("echo", {"echoInput": text, "pause": pause}, "raw")
    assert store.release(job.job_id, ["echoInput"])
    return job.job_id


def _rows(store: JobStore, job_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    with store.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT job_id, status, owner_pid, results, started FROM meta.jobs WHERE job_id = ANY(%s)",
                    (job_ids,))
        return {r[0]: r[1:] for r in cur.fetchall()}


def test_two_instances_share_the_queue_and_run_each_job_once(store: JobStore,
                                                             instances: list[subprocess.Popen[str]]) -> None:
    job_ids = [_queue(store, f"job {i}", 1) for i in range(8)]
    rows = wait_for(lambda: _rows(store, job_ids), lambda r: all(v[0] == "successful" for v in r.values()), 60,
                    "every queued job finishing")
    pids = {p.pid for p in instances}
    owners = [row[1] for row in rows.values()]
    assert set(owners) == pids  # both instances took jobs, nobody else did
    assert all(rows[j][2] == {"echoInput": f"job {i}"} for i, j in enumerate(job_ids))


def test_jobs_of_a_killed_instance_are_failed_or_queued_again(store: JobStore,
                                                              instances: list[subprocess.Popen[str]]) -> None:
    long_ids = [_queue(store, f"long {i}", 60) for i in range(4)]  # 2 workers each: both instances run two
    rows = wait_for(lambda: _rows(store, long_ids), lambda r: all(v[0] == "running" for v in r.values()), 30,
                    "four long jobs running on the two instances")
    victim, survivor = instances
    assert sorted(row[1] for row in rows.values()) == sorted([victim.pid] * 2 + [survivor.pid] * 2)
    victim.kill()
    victim.wait(10)
    # a job the victim held but had not started yet (e.g. killed between registering and starting it)
    unstarted = store.create("echo", {"echoInput": "unstarted"}, "raw").job_id
    with store.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE meta.jobs SET owner_pid = %s WHERE job_id = %s", (victim.pid, unstarted))
    victims = {j for j, row in rows.items() if row[1] == victim.pid}

    def settle() -> dict[str, tuple[Any, ...]]:  # what the maintenance pass of any live instance does
        store.settle_orphans()
        return _rows(store, [*victims, unstarted])

    after = wait_for(settle, lambda r: all(r[j][0] == "failed" for j in victims), LEASE_S * 4,
                     "the victim's running jobs failed once their lease expired")
    assert after[unstarted][0] in ("accepted", "running", "successful")  # queued again, not failed
    assert all(row[0] == "running" and row[1] == survivor.pid for row in _rows(store, long_ids).values()
               if row[1] == survivor.pid)
    for job_id in set(long_ids) - victims:  # free the survivor's workers: it then runs the requeued job
        store.dismiss(job_id)
    done = wait_for(lambda: _rows(store, [unstarted])[unstarted], lambda r: r[0] == "successful", 30,
                    "the requeued job run by the surviving instance")
    assert done[1] == survivor.pid and done[2] == {"echoInput": "unstarted"}


def test_a_dead_instance_never_leaves_a_job_running(store: JobStore) -> None:
    """Leases are kept by the heartbeat only: a running job of an instance that never renews it ends failed."""
    job_id = store.create("echo", {"echoInput": "x"}, "raw").job_id
    assert store.start(job_id)
    with store.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE meta.jobs SET owner_host = 'elsewhere', lease_expires = clock_timestamp() "
                    "WHERE job_id = %s", (job_id,))
    assert store.settle_orphans() == ([job_id], [])
    assert store.status(job_id) == "failed"
