"""The multi-node topology of `./run cluster`, for real: the test database as primary, a streaming replica, two
gunicorn instances and nginx (balancer + shared tile cache). Warm tiles cost no Python, a reload reaches the cache
tier within 2 s, an instance killed under load does not stop the service, and /metrics describes it all."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest
import requests
from process_helpers import wait_for

from server.cluster import Cluster, Topology
from server.pgcluster import LocalCluster, cluster_home

REPO = Path(__file__).resolve().parent.parent
TILE = "/collections/facilities/tiles/WebMercatorQuad/12/1600/3496"
STALENESS_LIMIT_S = 2.0


@pytest.fixture(scope="module")
def cluster(dsn: str, loaded: dict[str, int]) -> Iterator[Cluster]:
    """Replica of the test database on 54374, instances on 18071-18072, nginx on 18070, HAProxy on 18073 (stats
    18074), PgBouncers on 54375 (primary) and 54376 (replica); SEJONG_TEST_REPLICA_PORT and SEJONG_TEST_HTTP_PORT
    move them (for a second run beside another)."""
    port = int(os.environ.get("SEJONG_TEST_PG_PORT", "54339"))
    replica_port = int(os.environ.get("SEJONG_TEST_REPLICA_PORT", "54374"))
    http = int(os.environ.get("SEJONG_TEST_HTTP_PORT", "18070"))
    primary = LocalCluster(datadir=cluster_home(REPO, f"pg-test-{port}") / "data", port=port)
    home = REPO / "var" / f"scaleout-test-{port}"
    shutil.rmtree(home, ignore_errors=True)
    topo = Topology(home=home, replica_port=replica_port, instance_ports=(http + 1, http + 2), bind=f"127.0.0.1:{http}",
                    bouncer_ports=(replica_port + 1, replica_port + 2), haproxy_bind=f"127.0.0.1:{http + 3}",
                    haproxy_stats_bind=f"127.0.0.1:{http + 4}",
                    workers=1, threads=4, version_poll_s=0.3,
                    config={"server": {"per_client_concurrency": 64, "rate_limit_anonymous": 0}})
    found = Cluster(topo, primary=primary)
    try:
        found.start(load=False)
        yield found
    finally:
        found.stop()
        shutil.rmtree(home, ignore_errors=True)


def _tile_requests(port: int) -> float:
    """Tile requests an instance has answered (its /metrics)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("sejong_request_duration_seconds_count") and 'family="tiles"' in line)


def test_warm_tiles_come_from_the_shared_cache(cluster: Cluster) -> None:
    base = cluster.topo.public_url
    first = requests.get(base + TILE, timeout=10)
    assert first.status_code == 200 and first.headers["X-Cache"] in ("MISS", "EXPIRED")
    direct = requests.get(f"http://127.0.0.1:{cluster.topo.instance_ports[0]}{TILE}", timeout=10)
    assert direct.headers["ETag"] == first.headers["ETag"] and direct.content == first.content
    before = sum(_tile_requests(p) for p in cluster.topo.instance_ports)
    for _ in range(20):
        warm = requests.get(base + TILE, timeout=10)
        assert warm.headers["X-Cache"] == "HIT" and warm.content == first.content
        assert warm.headers["ETag"] == first.headers["ETag"]
    assert sum(_tile_requests(p) for p in cluster.topo.instance_ports) == before  # no Python touched them
    ranged = requests.get(base + "/nginx-health", timeout=5)
    assert ranged.status_code == 200


def test_pmtiles_are_served_with_range_requests(cluster: Cluster) -> None:
    archive = cluster.pmtiles_dir() / "scaleout-test.pmtiles"
    archive.write_bytes(bytes(range(256)) * 64)  # the file server does not look inside
    try:
        part = requests.get(cluster.topo.public_url + "/pmtiles/scaleout-test.pmtiles",
                            headers={"Range": "bytes=100-199"}, timeout=5)
        assert part.status_code == 206 and part.content == bytes(range(100, 200))
        assert part.headers["Content-Range"] == f"bytes 100-199/{256 * 64}"
    finally:
        archive.unlink()


def test_a_reload_reaches_every_tier_within_the_limit(cluster: Cluster, dsn: str) -> None:
    base = cluster.topo.public_url
    old = requests.get(base + TILE, timeout=10).headers["ETag"]
    with cluster.following_versions():  # what `./run cluster` runs
        conn = psycopg2.connect(dsn)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE meta.datasets SET data_version = data_version + 1 "
                        "WHERE table_name = 'public.facilities'")
        conn.close()
        t0 = time.monotonic()
        wait_for(lambda: requests.get(base + TILE, timeout=10).headers["ETag"], lambda etag: etag != old,
                 STALENESS_LIMIT_S, "the balancer's tile changing after a reload")
        staleness = time.monotonic() - t0
        for port in cluster.topo.instance_ports:  # and every instance serves the same new tile
            assert requests.get(f"http://127.0.0.1:{port}{TILE}", timeout=10).headers["ETag"] != old
        print(f"staleness after a reload through the cache tier: {staleness * 1000:.0f} ms")


def test_an_instance_killed_under_load_does_not_stop_the_service(cluster: Cluster) -> None:
    base = cluster.topo.public_url
    victim_port = cluster.topo.instance_ports[0]
    results: list[tuple[float, int]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def client(n: int) -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            try:  # uncached: every request reaches an instance
                status = session.get(f"{base}/collections/facilities/items?limit=2&offset={(n * 1000 + i) % 200}",
                                     timeout=10).status_code
            except requests.RequestException:
                status = 0
            results.append((time.monotonic() - t0, status))

    with ThreadPoolExecutor(8) as pool:
        for n in range(8):
            pool.submit(client, n)
        time.sleep(2)
        killed_at = time.monotonic() - t0
        os.killpg(cluster.instances[victim_port].pid, signal.SIGKILL)
        time.sleep(4)
        stop.set()
    cluster.instances[victim_port].wait(10)
    failed = [(t, s) for t, s in results if s != 200]
    assert len(results) > 50
    assert len(failed) <= 8, failed  # at most the requests in flight on the killed instance
    assert all(t < killed_at + 1.0 for t, _ in failed), failed  # and none after it was noticed
    cluster.start_instance(victim_port)
    cluster.wait_ready(f"http://127.0.0.1:{victim_port}/health")


def _pools(cluster: Cluster, port: int) -> dict[str, int]:
    """Role -> client connections PgBouncer on `port` holds for it (its admin console: SHOW POOLS)."""
    owner = cluster.primary.user
    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname="pgbouncer", user=owner,
                            password=cluster.primary.credentials()[owner])
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW POOLS")
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()
    return {r["user"]: int(r["cl_active"]) + int(r["cl_waiting"]) for r in rows if r["database"] != "pgbouncer"}


def test_instances_reach_both_databases_through_pgbouncer(cluster: Cluster) -> None:
    """Write/read URLs list both bouncers, the replica URL is its bouncer; the instances hold sessions there
    (SHOW POOLS), per-session settings survive session pooling, LISTEN works, and auth is scram (0600 file)."""
    primary_b, replica_b = cluster.topo.bouncer_ports
    env = cluster.env()
    for key in ("DATABASE_URL", "DATABASE_READ_URL"):
        assert f"127.0.0.1:{primary_b},127.0.0.1:{replica_b}/" in env[key], key
    assert f":{replica_b}/" in env["DATABASE_REPLICA_URL"]
    for _ in range(5):
        assert requests.get(cluster.topo.public_url + "/collections/facilities/items?limit=1", timeout=10).ok
    assert _pools(cluster, primary_b).get("sejong_reader", 0) > 0  # LISTEN and the write/read fallback pools
    assert _pools(cluster, replica_b).get("sejong_reader", 0) > 0  # reads on the replica
    for name in ("primary", "replica"):
        assert (cluster.home / f"pgbouncer-{name}" / "userlist.txt").stat().st_mode & 0o777 == 0o600
    from core.db import Database

    db = Database(env["DATABASE_REPLICA_URL"], 1, 1234, application_name="bouncer-test")
    with db.connection() as conn, conn.cursor() as cur:  # startup options refused: set after connecting
        cur.execute("SELECT current_setting('statement_timeout'), current_setting('default_transaction_read_only'),"
                    " current_setting('application_name'), inet_server_port()")
        assert cur.fetchone() == ("1234ms", "on", "bouncer-test", cluster.replica.port if cluster.replica else 0)
    listener = psycopg2.connect(env["DATABASE_URL"])
    listener.autocommit = True
    try:
        with listener.cursor() as cur:
            cur.execute("LISTEN bouncer_test")
        notifier = psycopg2.connect(cluster.primary.url)
        notifier.autocommit = True
        with notifier.cursor() as cur:
            cur.execute("NOTIFY bouncer_test, 'hi'")
        notifier.close()
        wait_for(lambda: (listener.poll(), list(listener.notifies))[1], bool, 5, "the notification via PgBouncer")
    finally:
        listener.close()
    bad = env["DATABASE_REPLICA_URL"].replace("@", "x@", 1)  # a wrong password
    with pytest.raises(psycopg2.OperationalError, match="authentication failed"):
        psycopg2.connect(bad)


def test_an_instance_failing_its_health_check_leaves_rotation_and_returns(cluster: Cluster) -> None:
    """HAProxy's active checks: a stopped (SIGSTOP) instance is DOWN within (check interval + check timeout) x fall
    and gets no requests, which all keep succeeding; after SIGCONT it is UP again and serves again."""
    victim, other = cluster.topo.instance_ports
    limit = (cluster.topo.check_ms + cluster.topo.check_timeout_ms) * (cluster.topo.check_fall + 1) / 1000 + 1.0
    wait_for(cluster.haproxy_status, lambda s: s == {victim: "UP", other: "UP"}, 10, "both instances UP")
    url = f"http://{cluster.topo.haproxy_bind}/collections/facilities/items?limit=1"
    pid = cluster.instances[victim].pid
    os.killpg(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_for(cluster.haproxy_status, lambda s: s.get(victim) == "DOWN", limit, "the stopped instance DOWN")
        print(f"stopped instance out of rotation after {(time.monotonic() - t0) * 1000:.0f} ms")
        before = _items_requests(other)
        for _ in range(20):  # through the whole chain, and straight at HAProxy: all answered by the other one
            assert requests.get(url, timeout=5).status_code == 200
            assert requests.get(cluster.topo.public_url + "/collections/facilities/items?limit=1",
                                timeout=5).status_code == 200
        assert _items_requests(other) - before == 40
    finally:
        os.killpg(pid, signal.SIGCONT)
    wait_for(cluster.haproxy_status, lambda s: s.get(victim) == "UP", limit, "the instance back UP")
    before = _items_requests(victim)
    for _ in range(20):
        assert requests.get(url, timeout=5).status_code == 200
    assert _items_requests(victim) > before  # back in rotation
    page = requests.get(f"http://{cluster.topo.haproxy_stats_bind}/stats;csv", timeout=5).text
    assert f"instances,i{victim}," in page


def _items_requests(port: int) -> float:
    """Items requests an instance has answered (its /metrics)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("sejong_request_duration_seconds_count") and 'family="items"' in line)


def test_metrics_and_request_ids(cluster: Cluster) -> None:
    resp = requests.get(cluster.topo.public_url + "/collections/facilities/items?limit=1", timeout=10)
    assert resp.status_code == 200 and len(resp.headers["X-Request-Id"]) >= 16
    port = cluster.topo.instance_ports[1]
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for name in ('sejong_request_duration_seconds_bucket{family="items"', "sejong_tile_cache_lookups_total",
                 "sejong_db_connections", "sejong_replica_lag_seconds", "sejong_replica_up 1.0",
                 'sejong_jobs{state="queued"}', 'sejong_data_version{table="public.facilities"}'):
        assert name in text, name
    rid = "trace-me-0123456789"
    traced = requests.get(f"http://127.0.0.1:{port}/collections/facilities/items?limit=1",
                          headers={"X-Request-Id": rid}, timeout=10)
    assert traced.headers["X-Request-Id"] == rid
    log = (cluster.home / f"instance-{port}.log").read_text(errors="replace")
    assert f'"rid": "{rid}"' in log


def test_the_supervisor_restarts_haproxy_and_a_bouncer(cluster: Cluster) -> None:
    """What `./run cluster` does each turn (Cluster.restart_dead): HAProxy and the replica's PgBouncer SIGKILLed are
    started again, HAProxy sees both instances UP and the replica is reachable through its bouncer again."""
    assert cluster.haproxy is not None and cluster.restart_dead() == []
    for proc in (cluster.haproxy, cluster.bouncers[1]):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{cluster.topo.haproxy_bind}/health", timeout=5)
    assert sorted(cluster.restart_dead()) == ["HAProxy", "PgBouncer (replica)"]
    cluster.wait_ready(f"http://{cluster.topo.haproxy_bind}/health")
    ports = cluster.topo.instance_ports
    wait_for(cluster.haproxy_status, lambda s: s == dict.fromkeys(ports, "UP"), 10, "both instances UP")
    conn = psycopg2.connect(cluster.env()["DATABASE_REPLICA_URL"], connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT inet_server_port(), pg_is_in_recovery()")
            assert cur.fetchone() == (cluster.topo.replica_port, True)
    finally:
        conn.close()
    assert cluster.restart_dead() == []
