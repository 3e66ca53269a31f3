"""Tile servers under test: ours with a tiles-enabled bench layer, pygeoapi's MVT-postgresql provider and tipg.

Reuses bench.servers (config writers, spawning, readiness) without changing how the features bench starts them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from bench import servers
from bench.datasets import BenchTable
from bench.servers import Server

MVT = "application/vnd.mapbox-vector-tile"
KEEP_ALIVE = "30"  # seconds; the cold pass interleaves slow tiles of other systems between two requests


def start_ours(dsn: str, tables: list[BenchTable], workdir: Path, tile_zooms: dict[str, tuple[int, int]],
               tag: str = "ours") -> Server:
    """Our server under gunicorn (1 worker, 4 threads, as the features bench), bench layers served as tiles.

    tile_zooms maps a bench table (schema.table) that is not in config.yml to its (minzoom, maxzoom).  Every call
    starts a new process, so its in-process tile cache is empty (cold).
    """
    port = servers.free_port()
    cfg = workdir / f"sejong-bench-tiles-{tag}.yml"
    mapping = servers.write_our_config(tables, cfg)
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    for table, (zmin, zmax) in tile_zooms.items():
        layer = raw["layers"][mapping[table]]
        if layer.get("tiles") is False:  # only bench-only layers; config.yml layers keep their own declaration
            layer["tiles"] = {"minzoom": zmin, "maxzoom": zmax}
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = dict(os.environ, DATABASE_URL=dsn, SEJONG_PUBLIC_URL=f"http://127.0.0.1:{port}", SEJONG_CONFIG=str(cfg))
    cmd = [str(servers.VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
           "--worker-class", "gthread", "--keep-alive", KEEP_ALIVE, "server.wsgi:app"]
    log = workdir / f"{tag}.log"
    srv = Server("ours", port, servers._spawn(cmd, env, log), log, mapping, config=cfg)
    servers._wait_ready(srv, "/collections?f=json")
    return srv


def write_pygeoapi_tiles_config(dsn: str, tables: list[BenchTable], port: int, path: Path) -> dict[str, str]:
    """The features bench's pygeoapi config plus an MVT-postgresql tile provider on every collection."""
    mapping = servers.write_pygeoapi_config(dsn, tables, port, path)
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    by_table = {t.table: t for t in tables}
    for table, rid in mapping.items():
        t = by_table[table]
        feature = doc["resources"][rid]["providers"][0]
        doc["resources"][rid]["providers"].append({
            "type": "tile", "name": "MVT-postgresql",
            "data": feature["data"], "id_field": t.id_col, "table": t.name, "geom_field": t.geom_col,
            "storage_crs": f"http://www.opengis.net/def/crs/EPSG/0/{t.srid}",
            # no options.schemes: pygeoapi 0.24 passes every non-dict option to its cached get_engine(), and a
            # list there fails with "TypeError: unhashable type: 'list'"; the provider offers WebMercatorQuad anyway
            "options": {"zoom": {"min": 0, "max": 22}},
            "format": {"name": "pbf", "mimetype": MVT},
        })
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return mapping


def start_pygeoapi(dsn: str, tables: list[BenchTable], workdir: Path) -> Server:
    """pygeoapi.flask_app:APP under gunicorn with the same worker model as ours."""
    import subprocess

    port = servers.free_port()
    cfg, oapi = workdir / "pygeoapi-tiles-config.yml", workdir / "pygeoapi-tiles-openapi.yml"
    mapping = write_pygeoapi_tiles_config(dsn, tables, port, cfg)
    env = dict(os.environ, PYGEOAPI_CONFIG=str(cfg), PYGEOAPI_OPENAPI=str(oapi))
    gen = subprocess.run([str(servers.VENV_BIN / "pygeoapi"), "openapi", "generate", str(cfg), "--output-file",
                          str(oapi)], env=env, cwd=workdir, capture_output=True, text=True, check=False)
    if gen.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed:\n{gen.stdout[-2000:]}\n{gen.stderr[-2000:]}")
    cmd = [str(servers.VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
           "--worker-class", "gthread", "--keep-alive", KEEP_ALIVE, "pygeoapi.flask_app:APP"]
    log = workdir / "pygeoapi-tiles.log"
    srv = Server("pygeoapi", port, servers._spawn(cmd, env, log), log, mapping, {"f": "mvt"})
    servers._wait_ready(srv, "/collections?f=json")
    return srv


def start_tipg(dsn: str, tables: list[BenchTable], workdir: Path, skip_install: bool) -> Server:
    """tipg as the features bench starts it, with the per-tile feature cap raised (default 10,000 truncates tiles).

    Everything else is tipg's default (4096 extent, 256 buffer, clip); the cap is the only change, so that its
    tiles hold the same features as the others and the timings compare the same work.
    """
    saved = os.environ.get("TIPG_MAX_FEATURES_PER_TILE")
    os.environ["TIPG_MAX_FEATURES_PER_TILE"] = "1000000"
    try:
        return servers.start_tipg(dsn, tables, workdir, skip_install)
    finally:
        if saved is None:
            os.environ.pop("TIPG_MAX_FEATURES_PER_TILE", None)
        else:
            os.environ["TIPG_MAX_FEATURES_PER_TILE"] = saved


def tile_path(srv: Server, table: BenchTable, z: int, x: int, y: int) -> str:
    """Path (and query) of one WebMercatorQuad tile on a server; x = column, y = row."""
    cid = srv.collection[table.table]
    if srv.name == "tipg":
        return f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{x}/{y}"
    if srv.name == "pygeoapi":
        return f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt"
    return f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{y}/{x}"
