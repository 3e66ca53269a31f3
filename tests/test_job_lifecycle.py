"""Jobs are bounded and always end: leases, retention, queue and synchronous limits."""

from __future__ import annotations

from typing import Any

import pytest
from process_helpers import wait_for

from server import services


@pytest.fixture()
def rt(app: Any) -> Any:
    """The job runtime of the session app (its config restored after each test)."""
    runtime = services.of(app).runtime
    saved = runtime.config
    yield runtime
    runtime.config = saved


def _status(client: Any, job_id: str) -> str:
    return str(client.get(f"/jobs/{job_id}").get_json()["status"])


def test_expired_lease_of_another_server_fails_the_job(rt: Any, client: Any) -> None:
    job = rt.store.create("echo", {"echoInput": "x"}, "raw")
    with rt.db.transaction() as conn, conn.cursor() as cur:  # a job held by a server on another host
        cur.execute("UPDATE meta.jobs SET owner_host = 'elsewhere', status = 'running', "
                    "lease_expires = clock_timestamp() + interval '1 hour' WHERE job_id = %s", (job.job_id,))
    rt.maintain()
    assert _status(client, job.job_id) == "running"  # its lease holds: that server is alive
    with rt.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE meta.jobs SET lease_expires = clock_timestamp() - interval '1 second' "
                    "WHERE job_id = %s", (job.job_id,))
    rt.maintain()
    info = client.get(f"/jobs/{job.job_id}").get_json()
    assert info["status"] == "failed" and "stopped" in info["message"]


def test_heartbeat_renews_the_lease_of_a_held_job(rt: Any, client: Any) -> None:
    resp = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "x", "pause": 10}},
                       headers={"Prefer": "respond-async"})
    job_id = resp.get_json()["jobID"]
    wait_for(lambda: _status(client, job_id), lambda s: s == "running", 10, "the job running")
    with rt.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE meta.jobs SET lease_expires = clock_timestamp() + interval '1 second' "
                    "WHERE job_id = %s RETURNING lease_expires", (job_id,))
        short = cur.fetchone()[0]
    assert job_id in rt.held() and rt.store.renew(rt.held()) >= 1
    with rt.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT lease_expires FROM meta.jobs WHERE job_id = %s", (job_id,))
        assert cur.fetchone()[0] > short
    client.delete(f"/jobs/{job_id}")


def test_finished_jobs_expire_after_the_retention(rt: Any, client: Any) -> None:
    done = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "old"}})
    job_id = done.headers["Link"].split("/jobs/")[1].split(">")[0]
    assert _status(client, job_id) == "successful"
    rt.store.delete_older_than(1.0)
    assert _status(client, job_id) == "successful"  # a fresh job is kept
    with rt.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE meta.jobs SET finished = clock_timestamp() - interval '2 hours' WHERE job_id = %s",
                    (job_id,))
    assert rt.store.delete_older_than(1.0) >= 1
    assert client.get(f"/jobs/{job_id}").status_code == 404


def test_queue_bound_is_429_with_retry_after(rt: Any, client: Any) -> None:
    wait_for(rt.held, lambda held: not held, 30, "earlier jobs of this session ending")
    rt.config = rt.config.model_copy(update={"max_queued": 1})
    first = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "a", "pause": 10}},
                        headers={"Prefer": "respond-async"})
    assert first.status_code == 201
    second = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "b"}},
                         headers={"Prefer": "respond-async"})
    assert second.status_code == 429 and second.headers["Retry-After"].isdigit()
    assert second.get_json()["code"] == "TooManyRequests"
    client.delete(f"/jobs/{first.get_json()['jobID']}")
    future = rt.future(first.get_json()["jobID"])
    assert future is None or future.result(timeout=10) is None
    rt.config = rt.config.model_copy(update={"max_queued": 64})
    again = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "c"}},
                        headers={"Prefer": "respond-async"})
    assert again.status_code == 201


def test_synchronous_executions_are_limited(rt: Any, client: Any) -> None:
    taken = 0
    while rt.sync_slots.acquire(blocking=False):
        taken += 1
    try:
        assert taken == rt.config.max_sync
        busy = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "x"}})
        assert busy.status_code == 429 and "respond-async" in busy.get_json()["description"]
        queued = client.post("/processes/echo/execution", json={"inputs": {"echoInput": "x"}},
                             headers={"Prefer": "respond-async"})
        assert queued.status_code == 201
    finally:
        for _ in range(taken):
            rt.sync_slots.release()
    assert client.post("/processes/echo/execution", json={"inputs": {"echoInput": "x"}}).status_code == 200
