"""The one connection pool: bounded (503 + Retry-After when exhausted), read-only by default, fork-safe."""

from __future__ import annotations

import os
from typing import Any

import psycopg2
import pytest

from core.config import load_config
from core.db import Database
from core.errors import Busy
from server import services
from server.app import create_app


def test_exhausted_pool_is_busy_and_recovers(dsn: str) -> None:
    db = Database(dsn, pool_size=1)
    with db.connection() as held:
        with pytest.raises(Busy) as info, db.connection():
            pass
        assert info.value.http_status == 503 and info.value.headers["Retry-After"].isdigit()
        with held.cursor() as cur:
            cur.execute("SELECT 1")
    with db.connection() as again, again.cursor() as cur:  # the slot came back
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
    db.close()


def test_exhausted_pool_is_503_over_http(dsn: str, loaded: dict[str, int]) -> None:
    cfg = load_config()
    cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"pool_size": 1})})
    app = create_app(cfg, dsn=dsn)
    client = app.test_client()
    assert client.get("/collections/bike_stations/items?limit=1").status_code == 200
    with services.of(app).db.connection():
        resp = client.get("/collections/bike_stations/items?limit=1")
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
    body: dict[str, Any] = resp.get_json()
    assert body["code"] == "ServiceUnavailable" and "busy" in body["description"]
    assert client.get("/collections/bike_stations/items?limit=1").status_code == 200
    runtime = services.of(app).runtime
    if runtime is not None:
        runtime.shutdown()
    services.of(app).db.close()


def test_read_pool_refuses_writes_and_write_pool_commits(dsn: str) -> None:
    reader = Database(dsn)
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction), reader.connection() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE public.pool_probe (x int)")
    writer = Database(dsn, read_only=False)
    with writer.transaction() as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE probe (x int) ON COMMIT DROP")
        cur.execute("SELECT current_setting('transaction_read_only')")
        assert cur.fetchone() == ("off",)
    with pytest.raises(RuntimeError), reader.transaction():
        pass
    reader.close()
    writer.close()


def test_pool_is_rebuilt_in_a_forked_child(dsn: str) -> None:
    db = Database(dsn)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        parent_backend = cur.fetchone()[0]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's socket
        try:
            with db.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                os.write(write_end, str(cur.fetchone()[0]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_backend = int(os.read(read_end, 32).decode())
    os.waitpid(pid, 0)
    assert child_backend != parent_backend
    with db.connection() as conn, conn.cursor() as cur:  # the parent's pooled connection still works
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] == parent_backend
    db.close()


def test_cluster_folder_name_is_the_same_in_every_process(tmp_path: Any) -> None:
    """The fallback cluster folder is named from the checkout, not Python's per-process salted hash()."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from server.pgcluster import checkout_id; "
            "print(checkout_id(Path(sys.argv[1])))")
    names = {subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2", "3")}
    assert len(names) == 1 and names != {""}
