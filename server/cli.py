"""Project commands: serve, test, load, bench (called by ./run)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from core.config import REPO_ROOT, NoDatabase, database_url, load_config
from server.pgcluster import LocalCluster, cluster_home

LOGGER = logging.getLogger("sejong")
VENV_BIN = Path(sys.executable).parent


def _embedded(port: int, name: str = "pg") -> LocalCluster:
    home = cluster_home(REPO_ROOT, name)
    return LocalCluster(datadir=home / "data", port=port)


def _database() -> dict[str, str]:
    """DATABASE_URL (and DATABASE_READ_URL) of the configured database, starting the embedded one if none is."""
    cfg = load_config()
    try:
        return {"DATABASE_URL": database_url(cfg)}
    except NoDatabase:
        pass
    cluster = _embedded(cfg.database.embedded_port)
    print(f"== starting embedded PostgreSQL on 127.0.0.1:{cluster.port} ({cluster.datadir})", flush=True)
    cluster.start()
    return {"DATABASE_URL": cluster.url, "DATABASE_READ_URL": cluster.read_url}


def cmd_serve(argv: list[str]) -> int:
    """Start the database (embedded unless DATABASE_URL), load the bundled data, serve with gunicorn."""
    parser = argparse.ArgumentParser(prog="./run serve")
    parser.add_argument("--no-load", action="store_true", help="do not (re)load the bundled data")
    args = parser.parse_args(argv)
    cfg = load_config()
    os.environ.update(_database())
    url = os.environ["DATABASE_URL"]
    if not args.no_load:
        from loaders.bundled import load_bundled

        print("== loading bundled data (unchanged files are skipped)", flush=True)
        counts = load_bundled(url)
        for table, rows in counts.items():
            print(f"   {table}: {rows} rows", flush=True)
    from server.assets import ensure_assets

    ensure_assets(REPO_ROOT)
    print(f"== serving on {cfg.server.url} (bind {cfg.server.bind})", flush=True)
    gunicorn = [str(VENV_BIN / "gunicorn"), "-c", str(REPO_ROOT / "server" / "gunicorn_conf.py"),
                "--bind", cfg.server.bind, "--workers", str(cfg.server.workers),
                "--threads", str(cfg.server.threads), "--worker-class", "gthread", "--access-logfile", "-",
                "server.wsgi:app"]
    os.execv(gunicorn[0], gunicorn)
    return 0


def cmd_test(argv: list[str]) -> int:
    """Lint, type-check, then run pytest against a throwaway PostGIS started and stopped here."""
    for tool, cmd in (("ruff", [str(VENV_BIN / "ruff"), "check", "."]),
                      ("mypy", [str(VENV_BIN / "mypy"), "core", "server", "layers", "loaders", "processes"]),
                      ("lint-imports", [str(VENV_BIN / "lint-imports")])):
        print(f"== {tool}", flush=True)
        if subprocess.run(cmd, cwd=REPO_ROOT, check=False).returncode != 0:
            print(f"{tool} failed", flush=True)
            return 1
    return cmd_pytest(argv)


def cmd_pytest(argv: list[str]) -> int:
    """Only pytest (arguments passed on) against a throwaway PostGIS on SEJONG_TEST_PG_PORT (default 54339)."""
    from server.assets import ensure_assets

    ensure_assets(REPO_ROOT)
    port = int(os.environ.get("SEJONG_TEST_PG_PORT", "54339"))
    home = cluster_home(REPO_ROOT, f"pg-test-{port}")
    if home.exists():
        stale = LocalCluster(datadir=home / "data", port=port)
        stale.stop()
        shutil.rmtree(home, ignore_errors=True)
    cluster = LocalCluster(datadir=home / "data", port=port)
    print(f"== starting throwaway PostGIS on 127.0.0.1:{port}", flush=True)
    try:
        cluster.start()
        env = dict(os.environ, DATABASE_URL=cluster.url, DATABASE_READ_URL=cluster.read_url,
                   SEJONG_TEST_ADMIN_URL=cluster.admin_url)
        res = subprocess.run([str(VENV_BIN / "python"), "-m", "pytest", *argv], cwd=REPO_ROOT, env=env, check=False)
        return res.returncode
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def cmd_load(argv: list[str]) -> int:
    """Run a loader against the project database."""
    env = dict(os.environ, **_database())
    return subprocess.run([str(VENV_BIN / "python"), "-m", "loaders", *argv], cwd=REPO_ROOT, env=env,
                          check=False).returncode


def cmd_bench(argv: list[str]) -> int:
    """Run the side-by-side benchmarks."""
    env = dict(os.environ, **_database())
    return subprocess.run([str(VENV_BIN / "python"), "-m", "bench", *argv], cwd=REPO_ROOT, env=env,
                          check=False).returncode


def cmd_db(argv: list[str]) -> int:
    """Start (or with 'stop', stop) the embedded database and print its URL."""
    cfg = load_config()
    cluster = _embedded(cfg.database.embedded_port)
    if argv and argv[0] == "stop":
        cluster.stop()
        return 0
    cluster.start()
    print(cluster.url)
    return 0


COMMANDS = {"serve": cmd_serve, "test": cmd_test, "pytest": cmd_pytest, "load": cmd_load, "bench": cmd_bench,
            "db": cmd_db}


def main() -> int:
    """Dispatch ./run <command>."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: ./run {{{'|'.join(COMMANDS)}}} [args]", file=sys.stderr)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
