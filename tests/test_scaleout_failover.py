"""Database faults with real processes: PostgreSQL restarted under a single-node server (503 + Retry-After, then it
recovers by itself), and the primary stopped and its replica promoted (a job runtime reconnects, without restart,
through a multi-host URL, and queued jobs resume), also with a PgBouncer in front of each node as `./run cluster`
runs them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from process_helpers import wait_for
from test_jobs_claim import INSTANCE  # a job runtime process that claims queued jobs

from core.db import Database
from core.schema import migrate
from processes.jobs import JobStore
from server.cluster import Cluster, Topology, multi_host_url
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
    _fail_over(primary, replica, multi_host_url([primary, replica], WRITER))


@pytest.fixture()
def bounced() -> Iterator[Cluster]:
    """Another primary (54366) and replica (54367), each behind a PgBouncer (54368, 54369) in session pooling."""
    home = HOME.with_name("scaleout-failover-bouncers")
    shutil.rmtree(home, ignore_errors=True)
    primary = LocalCluster(datadir=home / "primary" / "data", port=54366)
    primary.start()
    migrate(primary.url)
    cluster = Cluster(Topology(home=home, pg_port=54366, replica_port=54367, bouncer_ports=(54368, 54369)),
                      primary=primary)
    try:
        cluster.replica = primary.replica(home / "replica" / "data", 54367)
        cluster.start_bouncers()
        yield cluster
    finally:
        cluster.stop()
        primary.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_promotion_through_the_bouncers(bounced: Cluster) -> None:
    """The same failover with PgBouncer in the path: the bouncer of the stopped primary still accepts connections,
    so libpq must give up on it (its server login fails) and find the promoted node behind the other bouncer."""
    assert bounced.replica is not None
    nodes = [bounced.primary, bounced.replica]
    _fail_over(bounced.primary, bounced.replica, multi_host_url(nodes, WRITER, list(bounced.topo.bouncer_ports)))


def _fail_over(primary: LocalCluster, replica: LocalCluster, url: str) -> None:
    """A job runtime process on `url` runs a job; the primary is stopped and the replica promoted; a job queued on
    the promoted node is run by the same process, never restarted."""
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


def test_multi_host_urls_skip_hosts_that_do_not_answer(dsn: str) -> None:
    """core.pgconnect tries the hosts of a URL in turn: a closed port first is skipped; when none answers, the error
    names every host and not the password."""
    from psycopg2.extensions import make_dsn, parse_dsn

    from core import pgconnect

    params = parse_dsn(dsn)
    both = make_dsn(**{**params, "host": "127.0.0.1,127.0.0.1", "port": f"9,{params['port']}",
                       "target_session_attrs": "read-write", "connect_timeout": "2"})
    conn = pgconnect.connect(both)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT inet_server_port()")
            assert cur.fetchone() == (int(params["port"]),)
    finally:
        conn.close()
    standby_only = make_dsn(**{**params, "host": "127.0.0.1,127.0.0.1", "port": f"9,{params['port']}",
                               "target_session_attrs": "standby"})
    with pytest.raises(psycopg2.OperationalError) as err:
        pgconnect.connect(standby_only)
    message = str(err.value)
    assert message.startswith("no host of the URL is usable (standby): 127.0.0.1:9: ")
    assert f"127.0.0.1:{params['port']}: " in message and "standby" in message.rsplit(": ", 1)[-1]  # the primary
    if params.get("password"):
        assert params["password"] not in message
