"""Start and stop a project-local PostgreSQL + PostGIS cluster (the embedded default)."""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin")]
EXTENSIONS = ("postgis", "pgrouting")


def _pg_bin() -> Path:
    """Directory holding initdb/pg_ctl."""
    for cand in PG_BIN_CANDIDATES:
        if (cand / "pg_ctl").exists():
            return cand
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql-15 postgresql-15-postgis-3)")


def _as_db_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres system user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _usable_by_postgres(path: Path) -> bool:
    """Whether the postgres system user could create files under path."""
    if os.geteuid() != 0:
        return True
    probe = path
    while not probe.exists():
        probe = probe.parent
    res = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(probe)], check=False)
    return res.returncode == 0


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in its own data folder, on its own port, bound to 127.0.0.1."""

    datadir: Path
    port: int
    dbname: str = "sejong"
    user: str = "postgres"

    def __post_init__(self) -> None:
        self.datadir = self.datadir.resolve()

    @property
    def socket_dir(self) -> Path:
        """Unix socket folder of this cluster."""
        return self.datadir.parent / "run"

    @property
    def url(self) -> str:
        """libpq URL for this cluster."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        """Create the data folder with initdb unless it exists."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self._chown(self.datadir.parent)
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.datadir)
        self._chown(self.socket_dir)
        LOGGER.info("initdb %s", self.datadir)
        subprocess.run(_as_db_user([str(_pg_bin() / "initdb"), "-D", str(self.datadir), "-U", self.user,
                                    "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL)
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# sejong-mapserver: short spatial queries\n"
                "jit = off\nshared_buffers = 512MB\nwork_mem = 32MB\nmax_connections = 100\n"
                "fsync = on\nlogging_collector = off\n"
            )

    def running(self) -> bool:
        """Whether a postmaster answers on our data folder."""
        res = subprocess.run(_as_db_user([str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "status"]),
                             check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return res.returncode == 0

    def start(self) -> None:
        """Start the cluster (idempotent) and make sure the database and extensions exist."""
        self.init()
        if not self.running():
            log = self.datadir.parent / "postgres.log"
            log.touch()
            self._chown(log)
            opts = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            subprocess.run(_as_db_user([str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-l", str(log),
                                        "-o", opts, "-w", "-t", "60", "start"]),
                           check=True, stdout=subprocess.DEVNULL)
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{self.dbname}"')
        conn.close()
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        with conn.cursor() as cur:
            for ext in EXTENSIONS:
                cur.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        conn.close()

    def stop(self) -> None:
        """Stop the cluster (fast shutdown)."""
        if self.running():
            subprocess.run(_as_db_user([str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                                        "-w", "stop"]), check=False, stdout=subprocess.DEVNULL)


def checkout_id(root: Path) -> str:
    """A short name for a checkout that is the same in every process (unlike the salted hash())."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]


def cluster_home(root: Path, name: str) -> Path:
    """A folder for a cluster under var/, or under /var/tmp when postgres cannot reach var/."""
    base = root / "var" / name
    (root / "var").mkdir(exist_ok=True)
    if _usable_by_postgres(root / "var"):
        return base
    alt = Path("/var/tmp") / f"sejong-mapserver-{checkout_id(root)}" / name
    LOGGER.warning("postgres cannot write under %s; using %s", base, alt)
    return alt
