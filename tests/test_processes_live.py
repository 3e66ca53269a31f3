"""Processes against a real gunicorn server: OWSLib sync/async, and a kill -9 restart while a job runs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
WSGI = "server.wsgi:app"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(dsn: str, port: int, log_name: str) -> subprocess.Popen[bytes]:
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=dsn, SEJONG_PUBLIC_URL=base)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / log_name).open("ab")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--worker-class", "gthread", WSGI],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/processes", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill(proc)
            pytest.fail(f"server did not start; see {ARTIFACTS / log_name}")
        time.sleep(0.3)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the whole gunicorn group we started: master and workers
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(dsn: str, loaded: dict[str, int]) -> Iterator[str]:
    """A gunicorn server with the Processes routes."""
    port = _free_port()
    proc = _start(dsn, port, "procs_server.log")
    yield f"http://127.0.0.1:{port}"
    _kill(proc)


def _poll(base: str, job_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info: dict[str, Any] = requests.get(f"{base}/jobs/{job_id}", timeout=5).json()
        if info["status"] not in ("accepted", "running") or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def test_owslib_sync_and_async(server: str) -> None:
    from owslib.ogcapi.processes import Processes

    p = Processes(server)
    assert {"echo", "accessibility"} <= {x["id"] for x in p.processes()}
    assert p.process("accessibility")["example"]["inputs"]
    sync = p.execute("echo", {"echoInput": "teststring"})
    assert "teststring" in str(sync)
    started = p.execute("echo", {"echoInput": "teststring"}, async_=True)
    info = _poll(server, started["jobID"])
    assert info["status"] == "successful"
    results = requests.get(f"{server}/jobs/{started['jobID']}/results", timeout=5)
    assert results.status_code == 200 and "teststring" in results.text
    acc = p.execute("accessibility", {"facility_type": "bike_station", "facilities": {"layer": "bike_stations"},
                                      "demand": {"layer": "admin_areas", "weight": "voters"}, "outputs": ["summary"]})
    assert acc["summary"]["method"].startswith("network sejong (KAIS")  # Sejong's own road network by default
    job = p.execute("accessibility", {"facility_type": "library", "facilities": {"layer": "facilities",
                                                                                  "filter": "kind = 'library'"},
                                      "demand": {"layer": "admin_areas", "weight": "voters"},
                                      "network": "none"}, async_=True)  # network isochrones city-wide by car: ~1 min
    assert _poll(server, job["jobID"])["status"] == "successful"
    res = requests.get(f"{server}/jobs/{job['jobID']}/results", timeout=10).json()
    assert res["by_area"] and res["isochrones"]["features"]


def test_restart_while_running(dsn: str, loaded: dict[str, int]) -> None:
    """kill -9 the server while a job runs: after the restart the job is reported failed, never lost."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(dsn, port, "procs_restart.log")
    resp = requests.post(f"{base}/processes/echo/execution", json={"inputs": {"echoInput": "x", "pause": 30}},
                         headers={"Prefer": "respond-async"}, timeout=5)
    assert resp.status_code == 201
    job_id = resp.json()["jobID"]
    deadline = time.monotonic() + 10
    while requests.get(f"{base}/jobs/{job_id}", timeout=5).json()["status"] != "running":
        assert time.monotonic() < deadline, "the job never started running"
        time.sleep(0.05)
    _kill(proc)
    proc = _start(dsn, port, "procs_restart.log")
    try:
        info = requests.get(f"{base}/jobs/{job_id}", timeout=5).json()
        assert info["status"] in ("failed", "successful"), info
        assert info["status"] == "failed" and "restart" in info["message"]
        results = requests.get(f"{base}/jobs/{job_id}/results", timeout=5)
        assert results.status_code == 500 and "restart" in results.json()["description"]
    finally:
        _kill(proc)
