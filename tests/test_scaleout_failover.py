"""Database faults with real processes: PostgreSQL restarted under a single-node server (503 + Retry-After, then it
recovers by itself), and the primary stopped and its replica promoted (a job runtime reconnects, without restart,
through a multi-host URL, and queued jobs resume)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from process_helpers import wait_for
from test_jobs_claim import INSTANCE  # a job runtime process that claims queued jobs

from core.db import Database
from core.schema import migrate
from processes.jobs import JobStore
from server.cluster import multi_host_url
from server.pgcluster import WRITER, LocalCluster

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / "var" / "scaleout-failover"


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[LocalCluster, LocalCluster]]:
    """A small primary (schema only) on 54364 and its streaming replica on 54365."""
    shutil.rmtree(HOME, ignore_errors=True)
    primary = LocalCluster(datadir=HOME / "primary" / "data", port=54364)
    primary.start()
    migrate(primary.url)
    replica = primary.replica(HOME / "replica" / "data", 54365)
    try:
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(HOME, ignore_errors=True)


def test_single_node_outage_is_503_with_retry_after_and_recovers(pair: tuple[LocalCluster, LocalCluster]) -> None:
    from server.app import close_app, create_app

    primary, _ = pair
    app = create_app(dsn=primary.url)
    client = app.test_client()
    try:
        assert client.get("/health").status_code == 200
        assert client.get("/jobs").status_code == 200
        primary.stop()
        for path in ("/health", "/jobs", "/health", "/jobs"):
            resp: Any = client.get(path)
            assert resp.status_code == 503, (path, resp.status_code, resp.get_data(as_text=True)[:300])
            assert resp.headers["Retry-After"].isdigit() and resp.get_json()["code"] == "ServiceUnavailable"
        primary.start()
        wait_for(lambda: client.get("/jobs").status_code, lambda s: s == 200, 20, "recovery without restart")
        assert client.get("/health").status_code == 200
    finally:
        if not primary.running():
            primary.start()
        close_app(app)


def test_primary_stopped_replica_promoted_jobs_resume(pair: tuple[LocalCluster, LocalCluster]) -> None:
    primary, replica = pair
    url = multi_host_url([primary, replica], WRITER)
    db = Database(url, 2, 30_000, read_only=False, application_name="test-failover")
    store = JobStore(db, 5.0)
    proc = subprocess.Popen([sys.executable, "-c", INSTANCE, url], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

        def queue(text: str) -> str:
            job = store.create("echo", {"echoInput": text}, "raw")
            assert store.release(job.job_id, ["echoInput"])
            return job.job_id

        before = queue("before")
        wait_for(lambda: store.status(before), lambda s: s == "successful", 20, "a job before the failover")
        primary.stop()
        replica.promote()
        after = wait_for(lambda: _try(lambda: queue("after")), bool, 20, "writes reaching the promoted node")
        wait_for(lambda: _try(lambda: store.status(after)), lambda s: s == "successful", 30,
                 "the same runtime (not restarted) running a job on the promoted node")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        db.close()


def _try(call: Any) -> Any:
    """call(), or None while the database is still failing over."""
    try:
        return call()
    except Exception:
        return None
