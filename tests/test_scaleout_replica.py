"""Reads from a real streaming replica (pg_basebackup of the test database): fresh data versions after a reload,
fallback to the primary while the replica is stopped, and back to it when it returns."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from process_helpers import wait_for

from core.config import load_config
from server.pgcluster import LocalCluster, cluster_home

REPO = Path(__file__).resolve().parent.parent
REPLICA_PORT = 54361
TILE = "/collections/bike_stations/tiles/WebMercatorQuad/12/1601/3496"
STALENESS_LIMIT_S = 2.0


@pytest.fixture(scope="module")
def replica(dsn: str, loaded: dict[str, int]) -> Iterator[LocalCluster]:
    """A streaming replica of the test database, made after the bundled data is loaded."""
    port = int(os.environ.get("SEJONG_TEST_PG_PORT", "54339"))
    primary = LocalCluster(datadir=cluster_home(REPO, f"pg-test-{port}") / "data", port=port)
    home = cluster_home(REPO, f"pg-test-replica-{REPLICA_PORT}")
    shutil.rmtree(home, ignore_errors=True)
    rep = primary.replica(home / "data", REPLICA_PORT)
    try:
        yield rep
    finally:
        rep.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def rapp(replica: LocalCluster) -> Iterator[Any]:
    """An app reading from the replica (lag limit 5 s), writing to the primary."""
    from server.app import close_app, create_app

    cfg = load_config()
    cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={
        "replica_url": replica.read_url, "replica_max_lag_s": 5.0, "version_poll_s": 0.5})})
    app = create_app(cfg)
    app.config["TESTING"] = True
    yield app
    close_app(app)


def _on_replica(app: Any) -> bool:
    from server import services

    with services.of(app).db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        return bool(cur.fetchone()[0])


def _bump(dsn: str, table: str) -> int:
    """A new data version of a table on the primary (as a reload's swap does: the catalog row, notified)."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE meta.datasets SET data_version = data_version + 1 WHERE table_name = %s "
                    "RETURNING data_version", (table,))
        version = int(cur.fetchone()[0])
    conn.close()
    return version


def test_reads_go_to_the_replica_and_see_a_reload_within_the_limit(rapp: Any, dsn: str) -> None:
    from server import services

    client = rapp.test_client()
    assert wait_for(lambda: _on_replica(rapp), bool, 10, "reads on the replica")
    first = client.get(TILE)
    assert first.status_code == 200
    assert client.get(TILE).headers["ETag"] == first.headers["ETag"]  # cached, same version
    version = _bump(dsn, "public.bike_stations")
    t0 = time.monotonic()
    wait_for(lambda: client.get(TILE).headers["ETag"], lambda etag: etag != first.headers["ETag"],
             STALENESS_LIMIT_S, "a new tile ETag after the reload")
    staleness = time.monotonic() - t0
    seen = services.of(rapp).versions.current()
    assert seen is not None and seen["public.bike_stations"] == version  # the replica's version, vouched for
    print(f"staleness after a reload on a replica-backed server: {staleness * 1000:.0f} ms")


def test_replica_stopped_reads_continue_on_the_primary_and_return(rapp: Any, replica: LocalCluster) -> None:
    client = rapp.test_client()
    assert wait_for(lambda: _on_replica(rapp), bool, 10, "reads on the replica")
    url = "/collections/facilities/items?limit=2"
    assert client.get(url).status_code == 200
    replica.stop()
    statuses = [client.get(url).status_code for _ in range(3)]  # the first may meet a dead pooled connection
    assert all(s in (200, 503) for s in statuses) and statuses[-1] == 200
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # then every read is answered, by the primary
        assert client.get(url).status_code == 200
        assert client.get(TILE).status_code == 200
    assert client.get("/health").status_code == 200
    assert not _on_replica(rapp)
    replica.start()
    wait_for(lambda: _on_replica(rapp), bool, 15, "reads back on the restarted replica")
    assert client.get(url).status_code == 200
