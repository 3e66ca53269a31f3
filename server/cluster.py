"""`./run cluster`: the multi-node topology on one machine, for development, CI and the scale-out tests.

A PostgreSQL primary and a streaming replica (pg_basebackup -R; both server.pgcluster clusters on their own ports),
N gunicorn server instances, HAProxy (deploy/haproxy.cfg.template) balancing over them with active health checks
(GET /health), and nginx (deploy/nginx.conf.template) in front of HAProxy as the shared tile cache:
clients -> nginx (cache, PMTiles) -> haproxy (balancer, checks) -> instances.
Instances write to whichever node accepts writes (a libpq multi-host URL with target_session_attrs=read-write,
so after `pg_ctl promote` they reconnect to the new primary without a restart) and read from the replica, falling
back to the primary (server.readpath). The supervisor here bumps nginx's cache epoch once the replica holds a new
data version and every instance vouches for it (its /metrics), so no tile of older data is cached under the new one.

PgBouncer in front of each database node (deploy/pgbouncer.ini.template), in SESSION pooling mode: LISTEN, the
per-connection settings (statement_timeout, read-only, application_name per request) need the session. The write
and read URLs list both bouncers, so libpq's multi-host failover works through them; auth is scram, the auth_file
is generated from the cluster's credentials (0600). PgBouncer refuses libpq startup options: core.pgconnect sets
them after connecting.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
import yaml

from core.config import REPO_ROOT
from server.pgcluster import READER, WRITER, LocalCluster

LOGGER = logging.getLogger(__name__)
VENV_BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
EPOCH_POLL_S = 0.1
VERSION_LINE = re.compile(r'^sejong_data_version\{table="([^"]+)"\} (\S+)$', re.M)


@dataclass
class Topology:
    """Where everything of one cluster lives and listens."""

    home: Path = REPO_ROOT / "var" / "cluster"
    pg_port: int = 54340
    replica_port: int = 54341
    instance_ports: tuple[int, ...] = (5001, 5002)
    bouncer_ports: tuple[int, int] = (54342, 54343)  # PgBouncer in front of the primary, of the replica
    bind: str = "127.0.0.1:5000"
    haproxy_bind: str = "127.0.0.1:5009"  # the balancer behind nginx
    haproxy_stats_bind: str = "127.0.0.1:5010"  # its stats page (/stats)
    check_ms: int = 500  # HAProxy's active /health check interval; `check_fall` failures take an instance out
    check_fall: int = 2
    check_rise: int = 2
    check_timeout_ms: int = 1500  # a check answered later than this counts as failed
    workers: int = 1  # gunicorn workers per instance (one: its /metrics is the whole instance)
    threads: int = 8
    cache_mb: int = 512
    version_poll_s: float = 0.5
    config: dict[str, dict[str, Any]] = field(default_factory=dict)  # overrides of config.yml sections

    @property
    def server_maxconn(self) -> int:
        """Requests HAProxy sends one instance at once: one fewer than its threads, so a thread is free for /health
        (more requests wait in HAProxy's queue, not in the instance). Guaranteed with one worker, as the cluster runs
        them; with several, the kernel may hand one worker more than its share."""
        return max(1, self.workers * self.threads - 1)

    @property
    def public_url(self) -> str:
        """The balancer's URL."""
        return f"http://{self.bind}"


def multi_host_url(nodes: list[LocalCluster], role: str, ports: list[int] | None = None) -> str:
    """A libpq URL over every node (or the `ports` of their bouncers) that connects to the one accepting writes
    (the primary, or the promoted one)."""
    first = nodes[0]
    password = quote(first.credentials()[role], safe="")
    hosts = ",".join(f"127.0.0.1:{p}" for p in (ports or [n.port for n in nodes]))
    return f"postgresql://{role}:{password}@{hosts}/{first.dbname}?target_session_attrs=read-write&connect_timeout=2"


def _haproxy_maxconn() -> int:
    """Connections HAProxy may hold: two descriptors each must fit the open-files limit it can raise itself to."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return max(256, min(20000, (hard if hard != resource.RLIM_INFINITY else 65536) // 2 - 100))


def render(template: str, values: dict[str, Any]) -> str:
    """Fill the {{name}} placeholders of a config template (nginx's own $variables stay as they are)."""
    text = re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), template)
    return text


class Cluster:
    """Start, watch and stop one topology (every process is a child of this one)."""

    def __init__(self, topo: Topology, primary: LocalCluster | None = None) -> None:
        self.topo = topo
        self.home = topo.home
        self.own_primary = primary is None  # a given primary (the tests' database) is left running
        self.primary = primary or LocalCluster(datadir=self.home / "pg-primary" / "data", port=topo.pg_port)
        self.replica: LocalCluster | None = None
        self.instances: dict[int, subprocess.Popen[bytes]] = {}
        self.nginx: subprocess.Popen[bytes] | None = None
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.bouncers: list[subprocess.Popen[bytes]] = []
        self._epoch = ""

    # --- databases ----------------------------------------------------------------------------------------------

    def start_databases(self, load: bool = True, only: list[str] | None = None) -> None:
        """The primary (with the bundled data, or `only` those datasets, unless load=False) and its replica."""
        self.primary.start()
        from core.schema import migrate

        migrate(self.primary.url)
        if load:
            from loaders.bundled import load_bundled

            load_bundled(self.primary.url, only=only)
        self.replica = self.primary.replica(self.home / "pg-replica" / "data", self.topo.replica_port)

    BOUNCERS = ("primary", "replica")  # one PgBouncer in front of each node, in this order

    def start_bouncers(self) -> None:
        """One PgBouncer (session pooling, scram) in front of each database node."""
        self.bouncers = [self._spawn_bouncer(i) for i in range(len(self.BOUNCERS))]
        for i in range(len(self.BOUNCERS)):
            self._wait_bouncer(i)

    def _spawn_bouncer(self, i: int) -> subprocess.Popen[bytes]:
        """The PgBouncer in front of node i (0 the primary, 1 the replica), with its config written afresh."""
        assert self.replica is not None
        name, node, port = self.BOUNCERS[i], (self.primary, self.replica)[i], self.topo.bouncer_ports[i]
        conf = self.write_bouncer_config(self.home / f"pgbouncer-{name}", node, port)
        cmd = [PGBOUNCER, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(conf)]
        with (self.home / f"pgbouncer-{name}.stderr").open("wb") as err:  # what it says before its log opens
            return subprocess.Popen(cmd, cwd=conf.parent, start_new_session=True, stdout=subprocess.DEVNULL,
                                    stderr=err)

    def write_bouncer_config(self, home: Path, node: LocalCluster, port: int) -> Path:
        """pgbouncer.ini and its auth_file (the cluster's roles and passwords, mode 0600, owned by the user
        PgBouncer runs as) for one node."""
        home.mkdir(parents=True, exist_ok=True)
        auth = home / "userlist.txt"
        auth.touch(mode=0o600)
        os.chmod(auth, 0o600)
        auth.write_text("".join(f'"{role}" "{password}"\n' for role, password in node.credentials().items()))
        conf = home / "pgbouncer.ini"
        conf.write_text(render((REPO_ROOT / "deploy" / "pgbouncer.ini.template").read_text(), {
            "dbname": node.dbname, "db_port": node.port, "port": port, "auth_file": auth, "home": home,
            "stats_user": node.user, "pool_size": 80}))  # per role (writer, reader): 160 of the node's 200 connections
        if os.geteuid() == 0:  # PgBouncer refuses to run as root: it runs as postgres (-u) and reads these
            pg = pwd.getpwnam("postgres")
            for path in (home, auth, conf):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        return conf

    def _wait_bouncer(self, i: int, timeout: float = 10.0) -> None:
        """Until PgBouncer i listens; if it exits or stays silent, the error quotes what it said."""
        import socket

        name, proc, port = self.BOUNCERS[i], self.bouncers[i], self.topo.bouncer_ports[i]
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                said = []
                for path in (self.home / f"pgbouncer-{name}.stderr", self.home / f"pgbouncer-{name}" / "pgbouncer.log"):
                    with contextlib.suppress(OSError):
                        said += path.read_text(errors="replace").splitlines()[-5:]
                state = f"exited with {proc.returncode}" if proc.returncode is not None else \
                    f"did not listen within {timeout:.0f} s"
                raise RuntimeError(f"PgBouncer ({name}) on {port} {state}: " + (" | ".join(said) or "it said nothing"))
            time.sleep(0.1)

    def env(self) -> dict[str, str]:
        """What every instance gets: write and read URLs over both bouncers (primary's first), the replica's bouncer
        URL, its config copy."""
        assert self.replica is not None
        nodes = [self.primary, self.replica]
        ports = list(self.topo.bouncer_ports)
        replica_url = self.replica.read_url.replace(f":{self.replica.port}/", f":{ports[1]}/")
        return {"DATABASE_URL": multi_host_url(nodes, WRITER, ports),
                "DATABASE_READ_URL": multi_host_url(nodes, READER, ports),
                "DATABASE_REPLICA_URL": replica_url, "SEJONG_CONFIG": str(self.write_config()),
                "SEJONG_PUBLIC_URL": self.topo.public_url}

    def write_config(self) -> Path:
        """config.yml with the cluster's settings: one trusted proxy (nginx), the replica's version poll."""
        raw = yaml.safe_load((REPO_ROOT / "config.yml").read_text(encoding="utf-8"))
        raw.setdefault("server", {})["trusted_proxies"] = 1
        raw.setdefault("database", {})["version_poll_s"] = self.topo.version_poll_s
        data = raw.setdefault("data", {})
        data_dir = Path(str(data.get("dir", "../shared/data")))
        if "$" not in str(data_dir) and not data_dir.is_absolute():
            data["dir"] = str((REPO_ROOT / data_dir).resolve())
        for section, values in self.topo.config.items():
            raw.setdefault(section, {}).update(values)
        path = self.home / "config.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    # --- instances ----------------------------------------------------------------------------------------------

    def start_instance(self, port: int) -> subprocess.Popen[bytes]:
        """One gunicorn server instance on 127.0.0.1:port (its own process group; log in home/instance-PORT.log)."""
        log = (self.home / f"instance-{port}.log").open("ab")
        cmd = [str(VENV_BIN / "gunicorn"), "-c", str(REPO_ROOT / "server" / "gunicorn_conf.py"),
               "--bind", f"127.0.0.1:{port}", "--workers", str(self.topo.workers), "--threads",
               str(self.topo.threads), "--worker-class", "gthread", "--access-logfile", "-", "server.wsgi:app"]
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, **self.env()}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.instances[port] = proc
        return proc

    def wait_ready(self, url: str, timeout: float = 90.0) -> None:
        """Until url answers 200 (RuntimeError after timeout)."""
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s (logs in {self.home})")

    # --- nginx --------------------------------------------------------------------------------------------------

    @property
    def nginx_home(self) -> Path:
        """nginx's config, logs, temp files and cache."""
        return self.home / "nginx"

    def pmtiles_dir(self) -> Path:
        """Where PMTiles archives are served from (/pmtiles/, with range requests)."""
        return REPO_ROOT / "var" / "tiles"

    def write_nginx_config(self) -> Path:
        """deploy/nginx.conf.template filled in for this topology."""
        home = self.nginx_home
        for sub in ("tmp", "cache"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.pmtiles_dir().mkdir(parents=True, exist_ok=True)
        servers = f"        server {self.topo.haproxy_bind} max_fails=0;"  # HAProxy balances and checks
        text = render((REPO_ROOT / "deploy" / "nginx.conf.template").read_text(), {
            "workers": max(1, min(2, os.cpu_count() or 1)), "home": home, "cache_mb": self.topo.cache_mb,
            "servers": servers, "bind": self.topo.bind, "pmtiles": self.pmtiles_dir()})
        if os.geteuid() == 0:  # nginx's workers run as nobody: they write the cache and temp folders
            text = "user nobody nogroup;\n" + text
            nobody = pwd.getpwnam("nobody")
            for sub in ("tmp", "cache"):
                for folder, _, _ in os.walk(home / sub):
                    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        self._write_epoch(self._epoch or "0")
        conf = home / "nginx.conf"
        conf.write_text(text)
        return conf

    def _write_epoch(self, epoch: str) -> None:
        (self.nginx_home / "epoch.conf").write_text(f'map $host $data_epoch {{ default "{epoch}"; }}\n')
        self._epoch = epoch

    def start_nginx(self) -> subprocess.Popen[bytes]:
        """nginx in the foreground of its own process group."""
        conf = self.write_nginx_config()
        self.nginx = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], cwd=self.nginx_home,
                                      start_new_session=True)
        return self.nginx

    # --- haproxy ------------------------------------------------------------------------------------------------

    @property
    def haproxy_home(self) -> Path:
        """HAProxy's config, pid file and admin socket."""
        return self.home / "haproxy"

    def write_haproxy_config(self) -> Path:
        """deploy/haproxy.cfg.template filled in for this topology (one server line per instance)."""
        home = self.haproxy_home
        home.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server i{p} 127.0.0.1:{p}" for p in self.topo.instance_ports)
        text = render((REPO_ROOT / "deploy" / "haproxy.cfg.template").read_text(), {
            "home": home, "bind": self.topo.haproxy_bind, "stats_bind": self.topo.haproxy_stats_bind,
            "check_ms": self.topo.check_ms, "check_timeout_ms": self.topo.check_timeout_ms,
            "fall": self.topo.check_fall, "rise": self.topo.check_rise, "servers": servers,
            "maxconn": _haproxy_maxconn(), "server_maxconn": self.topo.server_maxconn})
        conf = home / "haproxy.cfg"
        conf.write_text(text)
        return conf

    def start_haproxy(self) -> subprocess.Popen[bytes]:
        """HAProxy in the foreground of its own process group (its log: home/haproxy/haproxy.log)."""
        conf = self.write_haproxy_config()
        log = (self.haproxy_home / "haproxy.log").open("ab")
        self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(conf)], cwd=self.haproxy_home, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self.haproxy

    def haproxy_status(self) -> dict[int, str]:
        """Instance port -> HAProxy's view of it (UP, DOWN, ...), from its admin socket (`show stat`)."""
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(self.haproxy_home / "haproxy.sock"))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        lines = b"".join(chunks).decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        status: dict[int, str] = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "instances" and row.get("svname", "").startswith("i"):
                status[int(row["svname"][1:])] = row["status"].split()[0]
        return status

    def replica_versions(self) -> dict[str, int]:
        """The data versions the replica holds (what instances render from)."""
        assert self.replica is not None
        conn = psycopg2.connect(self.replica.read_url, connect_timeout=2)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT table_name, data_version FROM meta.datasets")
                return {str(t): int(v) for t, v in cur.fetchall()}
        finally:
            conn.close()

    @contextlib.contextmanager
    def following_versions(self, interval_s: float = 0.05) -> Iterator[None]:
        """The epoch loop of `./run cluster` in a thread while the block runs (tests, benchmarks). The versions it
        starts from are read before the block, so a reload made inside it is always seen as new."""
        versions = self.replica_versions()
        stop = threading.Event()

        def loop() -> None:
            nonlocal versions
            while not stop.is_set():
                versions = self.follow_versions(versions)
                stop.wait(interval_s)

        thread = threading.Thread(target=loop, name="epoch-loop", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    def follow_versions(self, versions: dict[str, int]) -> dict[str, int]:
        """One step of the epoch loop: on new replica versions, wait for the instances to see them, then point
        nginx's cache key at a new epoch (nginx -s reload; entries of older data are not hit again)."""
        try:
            found = self.replica_versions()
        except psycopg2.Error:
            return versions  # replica down: instances read the primary; the epoch changes when it is back
        if found == versions:
            return versions
        deadline = time.monotonic() + self.topo.version_poll_s + 1.0
        while not all(self._vouches(port, found) for port in self.topo.instance_ports):
            if time.monotonic() > deadline:  # a stuck instance: its next poll publishes them anyway
                break
            time.sleep(0.01)
        epoch = hashlib.sha1(json.dumps(found, sort_keys=True).encode()).hexdigest()[:12]
        self._write_epoch(epoch)
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGHUP)  # reload: new workers use the new epoch, the cache zone stays
        return found

    def _vouches(self, port: int, versions: dict[str, int]) -> bool:
        """Whether an instance serves tiles of at least these versions: it vouches for them (its /metrics), or
        for none (then it reads them per request), or it is down (then it serves nothing)."""
        import requests

        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
        except requests.RequestException:
            return True
        seen = {m.group(1): float(m.group(2)) for m in VERSION_LINE.finditer(text)}
        return not seen or all(seen.get(t, 0) >= v for t, v in versions.items())

    # --- all ----------------------------------------------------------------------------------------------------

    def start(self, load: bool = True, only: list[str] | None = None) -> None:
        """Databases, instances, HAProxy, nginx; returns when the balancer answers."""
        self.start_databases(load, only)
        self.start_bouncers()
        for port in self.topo.instance_ports:
            self.start_instance(port)
        for port in self.topo.instance_ports:
            self.wait_ready(f"http://127.0.0.1:{port}/health")
        self.start_haproxy()
        self.wait_ready(f"http://{self.topo.haproxy_bind}/health")
        self.start_nginx()
        self.wait_ready(self.topo.public_url + "/health")

    def restart_dead(self) -> list[str]:
        """One turn of the supervisor: start again every process of the topology that exited (instances, bouncers,
        HAProxy, nginx); what was restarted. The balancer skips a dead instance meanwhile; while a bouncer is down,
        reads fall back to the other node and the multi-host URL skips it."""
        restarted = []
        for port, proc in list(self.instances.items()):
            if proc.poll() is not None:
                LOGGER.warning("instance %d exited (%s); restarting it", port, proc.returncode)
                self.start_instance(port)
                restarted.append(f"instance {port}")
        for i, proc in enumerate(self.bouncers):
            if proc.poll() is not None:
                LOGGER.warning("PgBouncer (%s) exited (%s); restarting it", self.BOUNCERS[i], proc.returncode)
                self.bouncers[i] = self._spawn_bouncer(i)
                self._wait_bouncer(i)
                restarted.append(f"PgBouncer ({self.BOUNCERS[i]})")
        fronts = (("HAProxy", self.haproxy, self.start_haproxy), ("nginx", self.nginx, self.start_nginx))
        for name, front, start in fronts:
            if front is not None and front.poll() is not None:
                LOGGER.warning("%s exited (%s); restarting it", name, front.returncode)
                start()
                restarted.append(name)
        return restarted

    def stop(self) -> None:
        """Stop nginx, HAProxy, the instances, the bouncers and both databases."""
        procs = [p for p in [self.nginx, self.haproxy, *self.instances.values(), *self.bouncers] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.replica is not None:
            self.replica.stop()
        if self.own_primary:
            self.primary.stop()


def main(argv: list[str]) -> int:
    """`./run cluster [--instances N] [--port P] [--no-load]`: run the topology until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="./run cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=2, help="server instances (default 2)")
    parser.add_argument("--port", type=int, default=5000,
                        help="nginx's port (instances: the next ones, then HAProxy and its stats page)")
    parser.add_argument("--pg-port", type=int, default=54340,
                        help="the primary's port (replica: the next one; their PgBouncers: the two after)")
    parser.add_argument("--no-load", action="store_true", help="do not (re)load the bundled data")
    args = parser.parse_args(argv)
    topo = Topology(pg_port=args.pg_port, replica_port=args.pg_port + 1, bind=f"127.0.0.1:{args.port}",
                    bouncer_ports=(args.pg_port + 2, args.pg_port + 3),
                    instance_ports=tuple(args.port + 1 + i for i in range(args.instances)),
                    haproxy_bind=f"127.0.0.1:{args.port + 1 + args.instances}",
                    haproxy_stats_bind=f"127.0.0.1:{args.port + 2 + args.instances}")
    cluster = Cluster(topo)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        cluster.start(load=not args.no_load)
        print(f"== cluster up: {topo.public_url} (nginx) -> {topo.haproxy_bind} (haproxy, stats "
              f"http://{topo.haproxy_stats_bind}/stats) -> instances {', '.join(map(str, topo.instance_ports))}; "
              f"primary :{topo.pg_port}, replica :{topo.replica_port}, their PgBouncers :{topo.bouncer_ports[0]}, "
              f":{topo.bouncer_ports[1]}; logs in {cluster.home}", flush=True)
        versions: dict[str, int] = {}
        while True:
            versions = cluster.follow_versions(versions)
            cluster.restart_dead()
            time.sleep(EPOCH_POLL_S)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()
