"""Start and stop a project-local PostgreSQL + PostGIS cluster (the embedded default)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

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


READER = "sejong_reader"
WRITER = "sejong_writer"
HBA = """# sejong-mapserver: no trust anywhere. Over the socket (folder mode 0700) only the same OS user;
# over TCP a password (scram-sha-256) for every role.
local   all all                 peer
host    all all 127.0.0.1/32    scram-sha-256
host    all all ::1/128         scram-sha-256
"""
REPLICATION_HBA = "host    replication postgres 127.0.0.1/32 scram-sha-256\n"  # streaming replicas (replica())


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in its own data folder, on its own port, bound to 127.0.0.1, with password auth.

    Roles: the superuser (setup only), `sejong_writer` (owns the database; loads, jobs, migrations) and
    `sejong_reader` (what the web server reads with). Their generated passwords are in credentials.json (0600).
    """

    datadir: Path
    port: int
    dbname: str = "sejong"
    user: str = "postgres"

    def __post_init__(self) -> None:
        self.datadir = self.datadir.resolve()

    @property
    def socket_dir(self) -> Path:
        """Unix socket folder of this cluster (mode 0700)."""
        return self.datadir.parent / "run"

    @property
    def credentials_file(self) -> Path:
        """Generated passwords of the three roles (readable by the owner of var/ only)."""
        return self.datadir.parent / "credentials.json"

    def credentials(self) -> dict[str, str]:
        """Role -> password, generated on first use."""
        path = self.credentials_file
        if path.exists():
            found: dict[str, str] = json.loads(path.read_text())
            return found
        path.parent.mkdir(parents=True, exist_ok=True)
        creds = {role: secrets.token_urlsafe(24) for role in (self.user, WRITER, READER)}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(creds, fh)
        return creds

    def _url(self, role: str, dbname: str | None = None) -> str:
        password = quote(self.credentials()[role], safe="")
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{dbname or self.dbname}"

    @property
    def url(self) -> str:
        """URL of the write role (loads, jobs, migrations)."""
        return self._url(WRITER)

    @property
    def read_url(self) -> str:
        """URL of the read-only role the web server uses."""
        return self._url(READER)

    @property
    def admin_url(self) -> str:
        """Superuser URL: setup and tests that create databases only."""
        return self._url(self.user)

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
        self._chown(self.datadir)
        LOGGER.info("initdb %s", self.datadir)
        pwfile = self.datadir.parent / ".initdb-pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.credentials()[self.user] + "\n")
        self._chown(pwfile)
        try:
            subprocess.run(_as_db_user([str(_pg_bin() / "initdb"), "-D", str(self.datadir), "-U", self.user,
                                        "--auth-local=peer", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                                        "--encoding=UTF8", "--locale=C.UTF-8"]),
                           check=True, stdout=subprocess.DEVNULL)
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# sejong-mapserver: short spatial queries; only the owner may use the socket\n"
                "jit = off\nshared_buffers = 512MB\nwork_mem = 32MB\nmax_connections = 200\n"
                "fsync = on\nlogging_collector = off\nunix_socket_permissions = 0700\n"
                "password_encryption = scram-sha-256\n"
            )
        (self.datadir / "pg_hba.conf").write_text(HBA)

    def running(self) -> bool:
        """Whether a postmaster answers on our data folder."""
        res = subprocess.run(_as_db_user([str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "status"]),
                             check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return res.returncode == 0

    def start(self) -> None:
        """Start the cluster (idempotent) and make sure auth, roles, database and extensions are in place."""
        self.init()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.socket_dir)
        self.socket_dir.chmod(0o700)
        if not self.running():
            log = self.datadir.parent / "postgres.log"
            log.touch()
            self._chown(log)
            opts = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            subprocess.run(_as_db_user([str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-l", str(log),
                                        "-o", opts, "-w", "-t", "60", "start"]),
                           check=True, stdout=subprocess.DEVNULL)
        if self.standby:
            return  # a streaming replica: read-only, its roles and database are the primary's
        self._close_trust()
        self._ensure_database()

    @property
    def standby(self) -> bool:
        """Whether this cluster is a streaming replica (until promoted)."""
        return (self.datadir / "standby.signal").exists()

    def replica(self, datadir: Path, port: int) -> LocalCluster:
        """A streaming replica of this running cluster in `datadir` (pg_basebackup -R on first use), started on
        `port`, with the same roles and passwords (its credentials.json is a copy of this one's)."""
        rep = LocalCluster(datadir=datadir, port=port, dbname=self.dbname, user=self.user)
        if not (rep.datadir / "PG_VERSION").exists():
            self._allow_replication()
            rep.datadir.parent.mkdir(parents=True, exist_ok=True)
            self._chown(rep.datadir.parent)
            shutil.rmtree(rep.datadir, ignore_errors=True)
            if not rep.credentials_file.exists():
                fd = os.open(rep.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    json.dump(self.credentials(), fh)
            source = (f"host=127.0.0.1 port={self.port} user={self.user} password={self.credentials()[self.user]} "
                      "application_name=sejong-replica")
            subprocess.run(_as_db_user([str(_pg_bin() / "pg_basebackup"), "-D", str(rep.datadir), "-R", "-X",
                                        "stream", "-c", "fast", "-d", source]), check=True, stdout=subprocess.DEVNULL)
            with (rep.datadir / "postgresql.conf").open("a") as fh:  # replay is not held up by long reads
                fh.write("\n# sejong-mapserver replica\nmax_standby_streaming_delay = 1s\nhot_standby_feedback = on\n")
        rep.start()
        return rep

    def _allow_replication(self) -> None:
        """Let the superuser stream WAL over TCP with its password (pg_hba 'replication' line), then reload."""
        hba = self.datadir / "pg_hba.conf"
        text = subprocess.run(_as_db_user(["cat", str(hba)]), check=True, capture_output=True, text=True).stdout
        if REPLICATION_HBA in text:
            return
        subprocess.run(_as_db_user(["sh", "-c", f"cat >> {hba}"]), input=REPLICATION_HBA, text=True, check=True)
        conn = self._connect_admin()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_reload_conf()")
        conn.close()

    def promote(self) -> None:
        """Make this replica a primary (pg_ctl promote; waits until it accepts writes)."""
        subprocess.run(_as_db_user([str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-w", "promote"]),
                       check=True, stdout=subprocess.DEVNULL)

    def _connect_admin(self, dbname: str = "postgres") -> Any:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(self._url(self.user, dbname))
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        conn.autocommit = True
        return conn

    def _close_trust(self) -> None:
        """A cluster made by an older version trusted every local user: give it passwords and our pg_hba."""
        hba = self.datadir / "pg_hba.conf"
        text = subprocess.run(_as_db_user(["cat", str(hba)]), check=True, capture_output=True, text=True).stdout
        methods = [line.split()[-1] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if "trust" not in methods:
            return
        import psycopg2
        from psycopg2 import sql

        LOGGER.warning("closing trust authentication of %s", self.datadir)
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(self.user)),
                        (self.credentials()[self.user],))
            cur.execute("ALTER SYSTEM SET unix_socket_permissions = '0700'")
            cur.execute("ALTER SYSTEM SET password_encryption = 'scram-sha-256'")
            cur.execute("ALTER SYSTEM SET max_connections = 200")
        conn.close()
        subprocess.run(_as_db_user(["sh", "-c", f"cat > {hba}"]), input=HBA, text=True, check=True)
        self.stop()
        self.start()

    def _ensure_database(self) -> None:
        from psycopg2 import sql

        creds = self.credentials()
        conn = self._connect_admin()
        with conn.cursor() as cur:
            for role in (WRITER, READER):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD %s").format(
                    sql.Identifier(role)), (creds[role],))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.dbname),
                                                                          sql.Identifier(WRITER)))
            cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(self.dbname),
                                                                         sql.Identifier(WRITER)))
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(self.dbname)))
            cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(self.dbname), sql.Identifier(READER)))
        conn.close()
        conn = self._connect_admin(self.dbname)
        with conn.cursor() as cur:
            for ext in EXTENSIONS:
                cur.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
            names = {"owner_name": sql.Literal(self.user), "writer_name": sql.Literal(WRITER),
                     "reader_name": sql.Literal(READER), "writer": sql.Identifier(WRITER),
                     "reader": sql.Identifier(READER)}
            cur.execute(sql.SQL(_HAND_OVER).format(**names))
            cur.execute(sql.SQL(_READ_GRANTS).format(**names))
        conn.close()

    def stop(self) -> None:
        """Stop the cluster (fast shutdown)."""
        if self.running():
            subprocess.run(_as_db_user([str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                                        "-w", "stop"]), check=False, stdout=subprocess.DEVNULL)


# Objects an older version created as the superuser (its tables, views, schemas, functions; not the
# extensions' own) are handed to the write role, which owns everything of the project from now on.
_HAND_OVER = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
           WHERE n.nspowner = {owner_name}::regrole AND n.nspname NOT LIKE 'pg\\_%'
             AND n.nspname NOT IN ('information_schema', 'public')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = n.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, {writer_name});
  END LOOP;
  FOR r IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relowner = {owner_name}::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
             AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') LOOP
    EXECUTE format(CASE WHEN r.relkind = 'v' THEN 'ALTER VIEW %I.%I OWNER TO %I'
                        WHEN r.relkind = 'm' THEN 'ALTER MATERIALIZED VIEW %I.%I OWNER TO %I'
                        ELSE 'ALTER TABLE %I.%I OWNER TO %I' END, r.nspname, r.relname, {writer_name});
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE p.proowner = {owner_name}::regrole AND n.nspname NOT LIKE 'pg\\_%'
             AND n.nspname NOT IN ('information_schema', 'public')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.fn, {writer_name});
  END LOOP;
END $$;
"""

# The reader may read what the writer makes (and only read): schemas' usage and tables' SELECT.
_READ_GRANTS = """
ALTER DEFAULT PRIVILEGES FOR ROLE {writer} GRANT USAGE ON SCHEMAS TO {reader};
ALTER DEFAULT PRIVILEGES FOR ROLE {writer} GRANT SELECT ON TABLES TO {reader};
GRANT USAGE ON SCHEMA public TO {reader};
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT nspname FROM pg_namespace WHERE nspowner = {writer_name}::regrole LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', r.nspname, {reader_name});
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', r.nspname, {reader_name});
  END LOOP;
END $$;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};
"""


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
