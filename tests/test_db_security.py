"""The embedded database trusts no one: other OS users are refused, the web role only reads, no role is superuser."""

from __future__ import annotations

import os
import shutil
import subprocess
from urllib.parse import urlsplit

import psycopg2
import pytest


def _admin() -> str:
    url = os.environ.get("SEJONG_TEST_ADMIN_URL")
    if not url:
        pytest.fail("SEJONG_TEST_ADMIN_URL is not set: run the tests with ./run test")
    return url


def _as_nobody(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(["runuser", "-u", "nobody", "--", "psql", "-X", "-w", *args], env=env,
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("psql") is None, reason="needs root to act as another user")
def test_another_os_user_cannot_connect(dsn: str) -> None:
    url = urlsplit(dsn)
    with psycopg2.connect(_admin()) as conn, conn.cursor() as cur:
        cur.execute("SHOW unix_socket_directories")
        socket_dir = cur.fetchone()[0].split(",")[0].strip()
    for user in ("postgres", "sejong_writer", "sejong_reader"):
        over_tcp = _as_nobody(["-h", "127.0.0.1", "-p", str(url.port), "-U", user, "-d", "sejong", "-c", "SELECT 1"])
        assert over_tcp.returncode != 0 and "password" in over_tcp.stderr, over_tcp.stderr
        over_socket = _as_nobody(["-h", socket_dir, "-p", str(url.port), "-U", user, "-d", "sejong",
                                  "-c", "SELECT 1"])
        assert over_socket.returncode != 0, over_socket.stdout
    with psycopg2.connect(_admin()) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'")
        assert cur.fetchone()[0] == 0


def test_roles_are_not_superusers_and_the_reader_only_reads(dsn: str, loaded: dict[str, int]) -> None:
    read_url = os.environ["DATABASE_READ_URL"]
    for url in (dsn, read_url):
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False, False)
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("COPY (SELECT 1) TO PROGRAM 'true'")
    with psycopg2.connect(read_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.bike_stations")
        assert cur.fetchone()[0] > 0
        for statement in ("CREATE TABLE public.intruder (x int)", "DELETE FROM public.bike_stations",
                          "CREATE SCHEMA intruder"):
            cur.execute("SET TRANSACTION READ WRITE")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()
