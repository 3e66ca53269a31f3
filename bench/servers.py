"""Start and stop the HTTP servers under test: ours, pygeoapi (stock PostgreSQL provider) and tipg."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import yaml

from bench.datasets import BenchTable
from core.config import REPO_ROOT

VENV_BIN = Path(sys.executable).parent
TIPG_VENV = REPO_ROOT / "var" / "bench-venv-tipg"
BASE_PYTHON = Path("/root/.pyenv/versions/3.12.1/bin/python3.12")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running HTTP peer: how to reach it and how it names each table."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    collection: dict[str, str]  # table -> collection id
    extra_params: dict[str, str] = field(default_factory=dict)
    config: Path | None = None  # ours: the bench config it was started with

    @property
    def base(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def items_url(self, table: BenchTable) -> str:
        """The items endpoint of a table."""
        return f"{self.base}/collections/{self.collection[table.table]}/items"

    def stop(self) -> None:
        """Terminate the process group started for this server."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = log.open("wb")
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_ready(srv: Server, probe: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            break
        try:
            r = requests.get(srv.base + probe, timeout=10)
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    tail = srv.log.read_text(errors="replace")[-3000:] if srv.log.exists() else ""
    srv.stop()
    raise RuntimeError(f"{srv.name} did not become ready (exit code {srv.proc.poll()}); log tail:\n{tail}")


# --- ours ---------------------------------------------------------------------------------------------------------

def write_our_config(tables: list[BenchTable], path: Path) -> dict[str, str]:
    """config.yml plus a layer for each bench table not declared there; returns table -> layer id."""
    raw = yaml.safe_load((REPO_ROOT / "config.yml").read_text(encoding="utf-8"))
    layers: dict[str, Any] = raw.setdefault("layers", {})
    by_table = {v["table"]: k for k, v in layers.items()}
    for t in tables:
        if t.table in by_table:
            continue
        layers[t.layer_id] = {
            "title": {"ko": f"벤치마크: {t.key}", "en": f"Benchmark: {t.key}"},
            "description": {"ko": f"벤치마크 전용 테이블 {t.table} ({t.source})",
                            "en": f"Benchmark-only table {t.table} ({t.source})"},
            "table": t.table, "geometry": t.geom_col, "id": t.id_col, "keywords": ["benchmark"], "tiles": False,
        }
        by_table[t.table] = t.layer_id
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return {t.table: by_table[t.table] for t in tables}


def start_ours(dsn: str, tables: list[BenchTable], workdir: Path) -> Server:
    """server.wsgi:app under gunicorn (1 worker, 4 threads, gthread)."""
    port = free_port()
    cfg = workdir / "sejong-bench.yml"
    mapping = write_our_config(tables, cfg)
    env = dict(os.environ, DATABASE_URL=dsn, SEJONG_PUBLIC_URL=f"http://127.0.0.1:{port}", SEJONG_CONFIG=str(cfg))
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(REPO_ROOT / "server" / "gunicorn_conf.py"),
           "--bind", f"127.0.0.1:{port}",
           "--workers", "1", "--threads", "4",
           "--worker-class", "gthread", "server.wsgi:app"]
    log = workdir / "ours.log"
    srv = Server("ours", port, _spawn(cmd, env, log), log, mapping, config=cfg)
    _wait_ready(srv, "/collections?f=json")
    return srv


# --- pygeoapi -----------------------------------------------------------------------------------------------------

def _dsn_parts(dsn: str) -> dict[str, Any]:
    u = urlsplit(dsn)
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 5432, "dbname": unquote(u.path.lstrip("/")),
            "user": unquote(u.username or "postgres"), "password": unquote(u.password or "")}


def write_pygeoapi_config(dsn: str, tables: list[BenchTable], port: int, path: Path) -> dict[str, str]:
    """A pygeoapi config with one stock PostgreSQL-provider collection per table; returns table -> id."""
    conn = _dsn_parts(dsn)
    resources: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for t in tables:
        rid = t.key
        mapping[t.table] = rid
        resources[rid] = {
            "type": "collection", "title": t.key, "description": f"{t.table} ({t.source})",
            "keywords": ["benchmark"],
            "extents": {"spatial": {"bbox": [124, 33, 132, 39], "crs": CRS84}},
            "providers": [{
                "type": "feature", "name": "PostgreSQL",
                "data": {**conn, "search_path": [t.schema, "public"]},
                "id_field": t.id_col, "table": t.name, "geom_field": t.geom_col,
                "storage_crs": f"http://www.opengis.net/def/crs/EPSG/0/{t.srid}",
                "crs": [CRS84, f"http://www.opengis.net/def/crs/EPSG/0/{t.srid}"],
            }],
        }
    doc = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "languages": ["en-US"],
            "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "bench", "description": "benchmark peer", "keywords": ["bench"],
                               "keywords_type": "theme", "terms_of_service": "https://example.org",
                               "url": "https://example.org"},
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "bench", "url": "https://example.org"},
            "contact": {"name": "bench", "position": "bench", "address": "-", "city": "-", "stateorprovince": "-",
                        "postalcode": "-", "country": "-", "phone": "-", "fax": "-", "email": "bench@example.org",
                        "url": "https://example.org", "hours": "-", "instructions": "-", "role": "pointOfContact"},
        },
        "resources": resources,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return mapping


def start_pygeoapi(dsn: str, tables: list[BenchTable], workdir: Path) -> Server:
    """pygeoapi.flask_app:APP under gunicorn with the same worker model as ours."""
    port = free_port()
    cfg, oapi = workdir / "pygeoapi-config.yml", workdir / "pygeoapi-openapi.yml"
    mapping = write_pygeoapi_config(dsn, tables, port, cfg)
    env = dict(os.environ, PYGEOAPI_CONFIG=str(cfg), PYGEOAPI_OPENAPI=str(oapi))
    gen = subprocess.run([str(VENV_BIN / "pygeoapi"), "openapi", "generate", str(cfg), "--output-file", str(oapi)],
                         env=env, cwd=workdir, capture_output=True, text=True, check=False)
    if gen.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed:\n{gen.stdout[-2000:]}\n{gen.stderr[-2000:]}")
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(REPO_ROOT / "server" / "gunicorn_conf.py"),
           "--bind", f"127.0.0.1:{port}",
           "--workers", "1", "--threads", "4",
           "--worker-class", "gthread", "pygeoapi.flask_app:APP"]
    log = workdir / "pygeoapi.log"
    srv = Server("pygeoapi", port, _spawn(cmd, env, log), log, mapping, {"f": "json"})
    _wait_ready(srv, "/collections?f=json")
    return srv


# --- tipg ---------------------------------------------------------------------------------------------------------

def ensure_tipg(skip_install: bool) -> Path:
    """var/bench-venv-tipg with tipg and uvicorn (a separate venv: tipg pins its own FastAPI/pydantic stack)."""
    uvicorn = TIPG_VENV / "bin" / "uvicorn"
    ok = uvicorn.exists() and subprocess.run([str(TIPG_VENV / "bin" / "python"), "-c", "import tipg.main"],
                                             capture_output=True, check=False).returncode == 0
    if ok:
        return uvicorn
    if skip_install:
        raise RuntimeError(f"tipg is not installed in {TIPG_VENV} and --skip-install was given")
    base = BASE_PYTHON if BASE_PYTHON.exists() else Path(sys.executable)
    print(f"   installing tipg into {TIPG_VENV}", flush=True)
    subprocess.run([str(base), "-m", "venv", str(TIPG_VENV)], check=True)
    subprocess.run([str(TIPG_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "tipg",
                    "uvicorn"], check=True)
    return uvicorn


def start_tipg(dsn: str, tables: list[BenchTable], workdir: Path, skip_install: bool) -> Server:
    """tipg.main:app under uvicorn, restricted to the schemas and tables under test."""
    uvicorn = ensure_tipg(skip_install)
    port = free_port()
    schemas = sorted({t.schema for t in tables})
    env = dict(os.environ, DATABASE_URL=dsn,
               TIPG_DB_SCHEMAS=json.dumps(schemas), TIPG_DB_TABLES=json.dumps([t.table for t in tables]),
               TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS=json.dumps(schemas),
               TIPG_MAX_FEATURES_PER_QUERY="10000")
    cmd = [str(uvicorn), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
           "--log-level", "warning"]
    log = workdir / "tipg.log"
    srv = Server("tipg", port, _spawn(cmd, env, log), log, {t.table: t.table for t in tables})
    _wait_ready(srv, "/collections?f=json")
    return srv
