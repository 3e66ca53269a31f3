"""Project commands: serve, test, load, bench (called by ./run)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from core.config import REPO_ROOT, ConfigError, NoDatabase, database_url, load_config
from server.pgcluster import LocalCluster, cluster_home

LOGGER = logging.getLogger("sejong")
VENV_BIN = Path(sys.executable).parent


def _embedded(port: int, name: str = "pg") -> LocalCluster:
    home = cluster_home(REPO_ROOT, name)
    return LocalCluster(datadir=home / "data", port=port)


def redact(url: str) -> str:
    """A database URL or keyword DSN without its password."""
    if "://" not in url:
        return re.sub(r"password\s*=\s*('[^']*'|\S+)", "password=***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def _announce(url: str, how: str) -> None:
    """Say which database a command targets (never its password)."""
    print(f"== database: {redact(url)} ({how})", file=sys.stderr, flush=True)


def _database() -> dict[str, str]:
    """DATABASE_URL (and DATABASE_READ_URL) of the configured database, starting the embedded one if none is."""
    cfg = load_config()
    try:
        url = database_url(cfg)
        _announce(url, "DATABASE_URL" if os.environ.get("DATABASE_URL") else "config.yml database.url")
        return {"DATABASE_URL": url}
    except NoDatabase:
        pass
    cluster = _embedded(cfg.database.embedded_port)
    print(f"== starting embedded PostgreSQL on 127.0.0.1:{cluster.port} ({cluster.datadir})", flush=True)
    cluster.start()
    _announce(cluster.url, "embedded; set DATABASE_URL to use another")
    return {"DATABASE_URL": cluster.url, "DATABASE_READ_URL": cluster.read_url}


def _wants_help(argv: list[str]) -> bool:
    """-h/--help anywhere: answer without starting or connecting to a database."""
    return any(a in ("-h", "--help") for a in argv)


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
    if _wants_help(argv):
        return subprocess.run([str(VENV_BIN / "python"), "-m", "pytest", *argv], cwd=REPO_ROOT, check=False).returncode
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
        _announce(cluster.url, "throwaway, for the tests")
        env = dict(os.environ, DATABASE_URL=cluster.url, DATABASE_READ_URL=cluster.read_url,
                   SEJONG_TEST_ADMIN_URL=cluster.admin_url)
        res = subprocess.run([str(VENV_BIN / "python"), "-m", "pytest", *argv], cwd=REPO_ROOT, env=env, check=False)
        return res.returncode
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def cmd_load(argv: list[str]) -> int:
    """Run a loader against the project database; `load network FILE --name NAME` is the OSM network loader,
    `load kais-network FILE --name NAME` the KAIS road-centreline (TL_SPRD_MANAGE) one, `load surfaces [--force]`
    (re)builds the air-quality surfaces."""
    networks = {"network": "loaders.osm_network", "kais-network": "loaders.kais_network",
                "surfaces": "loaders.surfaces"}
    module, args = (networks[argv[0]], argv[1:]) if argv[:1] and argv[0] in networks else ("loaders", argv)
    env = dict(os.environ) if _wants_help(argv) or not argv else dict(os.environ, **_database())
    if not argv:
        args = ["--help"]
    return subprocess.run([str(VENV_BIN / "python"), "-m", module, *args], cwd=REPO_ROOT, env=env,
                          check=False).returncode


FEEDS = {"airkorea": "loaders.airkorea"}  # ./run ingest <feed>: real-time feeds and the module that fetches each


def cmd_ingest(argv: list[str]) -> int:
    """Fetch a real-time feed into the project database: `ingest airkorea` (key in $AIRKOREA_SERVICE_KEY)."""
    if not argv or argv[0] not in FEEDS:
        print(f"usage: ./run ingest {{{'|'.join(FEEDS)}}} [--help]", file=sys.stderr)
        return 0 if _wants_help(argv) else 2
    env = dict(os.environ) if _wants_help(argv) else dict(os.environ, **_database())
    return subprocess.run([str(VENV_BIN / "python"), "-m", FEEDS[argv[0]], *argv[1:]], cwd=REPO_ROOT, env=env,
                          check=False).returncode


def cmd_bench(argv: list[str]) -> int:
    """Run the side-by-side benchmarks."""
    env = dict(os.environ) if _wants_help(argv) else dict(os.environ, **_database())
    return subprocess.run([str(VENV_BIN / "python"), "-m", "bench", *argv], cwd=REPO_ROOT, env=env,
                          check=False).returncode


def cmd_db(argv: list[str]) -> int:
    """Start (or with 'stop', stop) the embedded database and print its URL."""
    if _wants_help(argv):
        print("usage: ./run db [stop]   start the embedded database and print its URL, or stop it")
        return 0
    cfg = load_config()
    cluster = _embedded(cfg.database.embedded_port)
    if argv and argv[0] == "stop":
        cluster.stop()
        return 0
    cluster.start()
    print(cluster.url)
    return 0


def _expiry(text: str) -> datetime:
    """--expires: YYYY-MM-DD (the key stops working at 00:00 UTC that day) or an ISO datetime with its offset."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM-DD or an ISO datetime") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def run_keys(argv: list[str], dsn: str) -> int:
    """./run keys create NAME --roles a,b [--expires YYYY-MM-DD] | list | revoke ID, against the write URL dsn."""
    from server import apikeys

    parser = argparse.ArgumentParser(prog="./run keys", description="API keys for services (sent as "
                                     "'Authorization: Bearer KEY' or 'X-API-Key: KEY'); stored hashed")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="make a key and print it (once: it is stored only hashed)")
    create.add_argument("name", help="who or what uses the key")
    create.add_argument("--roles", default="", help="comma-separated roles, e.g. department,editor")
    create.add_argument("--expires", type=_expiry, help="YYYY-MM-DD (00:00 UTC that day) or an ISO datetime")
    sub.add_parser("list", help="every key: id, name, roles, created, expires, state")
    revoke = sub.add_parser("revoke", help="refuse a key from now on (servers drop it at once)")
    revoke.add_argument("id", help="the key's id (from list)")
    args = parser.parse_args(argv)
    if args.action == "create":
        if args.expires is not None and args.expires <= datetime.now(UTC):
            print(f"error: --expires {args.expires.isoformat()} is not in the future", file=sys.stderr)
            return 2
        try:
            key, secret = apikeys.create_key(dsn, args.name, [r.strip() for r in args.roles.split(",") if r.strip()],
                                             args.expires)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"created key {key.key_id} ({key.name}) roles={','.join(key.roles) or '-'} "
              f"expires={key.expires_at.isoformat() if key.expires_at else 'never'}", file=sys.stderr)
        print(secret)  # the only time it is shown
        return 0
    if args.action == "list":
        now = datetime.now(UTC)
        for k in apikeys.list_keys(dsn):
            state = ("revoked" if k.revoked_at else "expired" if k.expires_at and k.expires_at <= now else "active")
            print("\t".join([k.key_id, k.name, ",".join(k.roles) or "-", k.created_at.isoformat(timespec="seconds"),
                             k.expires_at.isoformat(timespec="seconds") if k.expires_at else "never", state]))
        return 0
    if not apikeys.revoke_key(dsn, args.id):
        print(f"error: no active key {args.id!r} (see ./run keys list)", file=sys.stderr)
        return 1
    print(f"revoked key {args.id}", file=sys.stderr)
    return 0


def cmd_cluster(argv: list[str]) -> int:
    """Primary + streaming replica, two server instances and nginx on one machine (server.cluster)."""
    from server.cluster import main

    return main(argv)


def cmd_keys(argv: list[str]) -> int:
    """API keys: create, list, revoke (in the configured database, as the write role)."""
    if _wants_help(argv) or not argv:
        return run_keys(argv or ["--help"], "")
    return run_keys(argv, _database()["DATABASE_URL"])


COMMANDS = {"serve": cmd_serve, "test": cmd_test, "pytest": cmd_pytest, "load": cmd_load, "bench": cmd_bench,
            "db": cmd_db, "keys": cmd_keys, "ingest": cmd_ingest, "cluster": cmd_cluster}


def main() -> int:
    """Dispatch ./run <command>."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: ./run {{{'|'.join(COMMANDS)}}} [args]   (load network FILE --name NAME: an OSM network)",
              file=sys.stderr)
        return 2
    try:
        return COMMANDS[sys.argv[1]](sys.argv[2:])
    except ConfigError as exc:  # one line per problem, no traceback
        for line in str(exc).splitlines():
            print(f"config error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
