"""Shared fixtures: the real PostGIS started by ./run test, the bundled real data, and a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.oidc import OIDCProvider, start_oidc_provider

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="session")
def dsn() -> str:
    """The test database; a run without one fails (never skips)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: run the tests with ./run test (it starts a throwaway PostGIS)")
    return url


@pytest.fixture(scope="session")
def loaded(dsn: str) -> dict[str, int]:
    """The bundled real data, loaded once through our own loaders."""
    from loaders.bundled import load_bundled

    return load_bundled(dsn)


@pytest.fixture(scope="session")
def app(dsn: str, loaded: dict[str, int]):  # type: ignore[no-untyped-def]
    """A Flask app on the loaded database."""
    from server.app import create_app

    application = create_app()  # DATABASE_URL (write role) and DATABASE_READ_URL (read role) from ./run test
    application.config["TESTING"] = True
    return application


@pytest.fixture()
def client(app):  # type: ignore[no-untyped-def]
    """Flask test client."""
    return app.test_client()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(dsn: str, loaded: dict[str, int]) -> Iterator[str]:
    """The real server under gunicorn on a free loopback port, for independent clients."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=dsn, SEJONG_PUBLIC_URL=base)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", str(REPO / "server" / "gunicorn_conf.py"),
         "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--worker-class", "gthread", "server.wsgi:app"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start; see {ARTIFACTS / 'server.log'}")
        time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OIDCProvider]:
    """The OpenID provider the auth tests trust."""
    with start_oidc_provider() as provider:
        yield provider
