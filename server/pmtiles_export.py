"""Pre-render one layer's vector tiles into a PMTiles v3 archive for static hosting.

    python -m server.pmtiles_export --layer bike_stations --minzoom 8 --maxzoom 14 \\
        --out var/tiles/bike_stations.pmtiles

The tiles are the server's own: each one is requested from the application (built with create_app, DATABASE_URL
from the environment) at /collections/{layer}/tiles/WebMercatorQuad/{z}/{row}/{col}, so rendering, properties,
generalisation and zoom limits are exactly what the server answers.  Only tiles inside the layer's
tileMatrixSetLimits (its extent, its declared zooms) are requested; empty tiles are left out of the archive, as
PMTiles readers expect.  The data version is read before and after: if a loader swapped the data meanwhile, the
archive would mix two versions, so the export fails and writes nothing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import local
from typing import Any

from flask import Flask
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from core.errors import NotFound, OGCError
from core.tms import WEB_MERCATOR_QUAD
from layers.model import Layer
from server import services
from server.tilecache import TileCache
from server.tiles import _versions, limits, zoom_range

TMS = WEB_MERCATOR_QUAD  # PMTiles addresses tiles as z/x/y in Web Mercator only
CHUNK = 256  # tiles rendered concurrently before they are written in tile-id order


class ExportError(Exception):
    """The export cannot be done (unknown layer, no tiles, data changed during the export)."""


@dataclass(frozen=True)
class ExportResult:
    """What went into the archive."""

    path: Path
    layer: str
    minzoom: int
    maxzoom: int
    requested: int  # tiles inside the tileMatrixSetLimits
    written: int  # non-empty tiles (addressed in the archive)
    unique: int  # distinct tile contents stored
    empty: int
    bytes: int
    seconds: float
    data_version: int
    bounds: tuple[float, float, float, float]


def tile_path(layer_id: str, z: int, x: int, y: int) -> str:
    """The server route of one WebMercatorQuad tile (tileMatrix/tileRow/tileCol)."""
    return f"/collections/{layer_id}/tiles/{TMS.id}/{z}/{y}/{x}"


def plan(layer: Layer, minzoom: int, maxzoom: int) -> tuple[int, int, list[tuple[int, int, int]]]:
    """The zooms actually exported and every (z, x, y) inside the layer's tileMatrixSetLimits, in tile-id order."""
    if layer.extent is None:
        raise ExportError(f"layer {layer.id!r} has no extent (no data loaded?)")
    zmin, zmax = zoom_range(layer)
    lo, hi = max(minzoom, zmin), min(maxzoom, zmax)
    if lo > hi:
        raise ExportError(f"zooms {minzoom}-{maxzoom} are outside the tiles of {layer.id!r} ({zmin}-{zmax})")
    tiles = []
    for lim in limits(TMS, layer.extent, lo, hi):
        z = int(lim["tileMatrix"])
        tiles += [(z, col, row) for row in range(lim["minTileRow"], lim["maxTileRow"] + 1)
                  for col in range(lim["minTileCol"], lim["maxTileCol"] + 1)]
    tiles.sort(key=lambda t: zxy_to_tileid(*t))
    return lo, hi, tiles


def _current_version(app: Flask, layer: Layer) -> int:
    with services.of(app).db.connection() as conn:
        return int(_versions(conn, [layer])[layer.id])


def _chunks(items: list[tuple[int, int, int]], size: int) -> Iterator[list[tuple[int, int, int]]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _e7(v: float) -> int:
    return round(v * 10_000_000)


def export(app: Flask, layer_id: str, minzoom: int, maxzoom: int, out: Path, *, jobs: int = 4,
           compression: str = "gzip", progress: Callable[[int, int, float], None] | None = None) -> ExportResult:
    """Render the layer's tiles from minzoom to maxzoom through the app and write them to out (PMTiles v3)."""
    started = time.monotonic()
    registry = services.of(app).registry
    registry.refresh()  # the current metadata and data version, not a cached copy
    try:
        layer: Layer = registry.get(layer_id)  # as an anonymous caller: an archive is a file anyone may copy
    except NotFound as exc:
        raise ExportError(f"unknown layer {layer_id!r}: {exc}") from exc
    except OGCError as exc:  # a protected layer (401 to an anonymous caller)
        raise ExportError(f"layer {layer_id!r} is internal (access: {registry.config.layers[layer_id].access}); a "
                          "PMTiles archive is a static file anyone who gets it can read, so only public layers are "
                          "exported") from exc
    if not layer.tiles_enabled:
        raise ExportError(f"layer {layer_id!r} is not served as tiles")
    lo, hi, tiles = plan(layer, minzoom, maxzoom)
    bounds = layer.extent
    assert bounds is not None  # plan() refuses a layer without extent
    version = _current_version(app, layer)
    svc = services.of(app)
    saved_cache, svc.tile_cache = svc.tile_cache, TileCache(0)  # render every tile now; leave the server's caches
    try:
        return _write(app, layer, lo, hi, tiles, bounds, version, out, jobs, compression, progress, started)
    finally:
        svc.tile_cache = saved_cache


def _write(app: Flask, layer: Layer, lo: int, hi: int, tiles: list[tuple[int, int, int]],
           bounds: tuple[float, float, float, float], version: int, out: Path, jobs: int, compression: str,
           progress: Callable[[int, int, float], None] | None, started: float) -> ExportResult:
    tls = local()

    def fetch(tile: tuple[int, int, int]) -> bytes:
        client = getattr(tls, "client", None)
        if client is None:
            client = tls.client = app.test_client()
        resp = client.get(tile_path(layer.id, *tile))
        if resp.status_code != 200:
            raise ExportError(f"tile {tile_path(layer.id, *tile)}: HTTP {resp.status_code} {resp.get_data()[:300]!r}")
        return resp.get_data()

    out.parent.mkdir(parents=True, exist_ok=True)
    written = empty = done = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            writer = Writer(fh)
            for chunk in _chunks(tiles, CHUNK):
                for tile, body in zip(chunk, pool.map(fetch, chunk), strict=True):
                    done += 1
                    if not body:
                        empty += 1
                        continue
                    data = gzip.compress(body, compresslevel=9, mtime=0) if compression == "gzip" else body
                    writer.write_tile(zxy_to_tileid(*tile), data)
                    written += 1
                if progress is not None:
                    progress(done, len(tiles), time.monotonic() - started)
            if not written:
                raise ExportError(f"every one of the {len(tiles)} tiles of {layer.id!r} at z{lo}-{hi} is empty")
            if _current_version(app, layer) != version:
                raise ExportError(f"the data of {layer.id!r} was reloaded during the export; run it again")
            west, south, east, north = bounds
            header: dict[str, Any] = {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP if compression == "gzip" else Compression.NONE,
                "min_zoom": lo, "max_zoom": hi,
                "min_lon_e7": _e7(west), "min_lat_e7": _e7(south), "max_lon_e7": _e7(east), "max_lat_e7": _e7(north),
                "center_zoom": lo, "center_lon_e7": _e7((west + east) / 2), "center_lat_e7": _e7((south + north) / 2),
            }
            writer.finalize(header, _metadata(app, layer, lo, hi, version))
            unique = len(writer.hash_to_offset)
        tmp.chmod(0o644)  # mkstemp makes it private; a static host must be able to read it
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(out, layer.id, lo, hi, len(tiles), written, unique, empty, out.stat().st_size,
                        round(time.monotonic() - started, 2), version, bounds)


def _metadata(app: Flask, layer: Layer, minzoom: int, maxzoom: int, version: int) -> dict[str, Any]:
    """The layer's TileJSON (vector_layers, attribution, names) as PMTiles metadata, without the server's URL."""
    resp = app.test_client().get(f"/collections/{layer.id}/tilejson.json")
    doc: dict[str, Any] = resp.get_json() if resp.status_code == 200 else {}
    doc.pop("tiles", None)
    doc.update({
        "name": layer.config.title.get("ko"), "description": layer.config.title.get("en"), "type": "overlay",
        "format": "pbf", "minzoom": minzoom, "maxzoom": maxzoom, "generator": "sejong-mapserver pmtiles_export",
        "layer": layer.id, "data_version": version,
    })
    for vl in doc.get("vector_layers", []):
        vl["minzoom"] = max(minzoom, vl.get("minzoom", minzoom))
        vl["maxzoom"] = min(maxzoom, vl.get("maxzoom", maxzoom))
    return doc


def _printer(stream: Any) -> Callable[[int, int, float], None]:
    last = [0.0]

    def show(done: int, total: int, elapsed: float) -> None:
        if done < total and elapsed - last[0] < 1.0:
            return
        last[0] = elapsed
        rate = done / elapsed if elapsed > 0 else 0.0
        print(f"  {done}/{total} tiles ({100.0 * done / total:.0f}%), {rate:.0f} tiles/s", file=stream, flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m server.pmtiles_export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layer", required=True, help="layer (collection) id from config.yml")
    p.add_argument("--minzoom", type=int, required=True)
    p.add_argument("--maxzoom", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="the .pmtiles file to write (replaced atomically)")
    p.add_argument("--jobs", type=int, default=4, help="tiles rendered concurrently (default 4)")
    p.add_argument("--compression", choices=("gzip", "none"), default="gzip",
                   help="tile compression inside the archive (default gzip)")
    args = p.parse_args(argv)
    if not 0 <= args.minzoom <= args.maxzoom <= TMS.max_zoom:
        p.error(f"need 0 <= --minzoom <= --maxzoom <= {TMS.max_zoom}")
    from server.app import create_app

    app = create_app(dsn=os.environ.get("DATABASE_URL") or None)
    print(f"exporting {args.layer} z{args.minzoom}-{args.maxzoom} to {args.out}", file=sys.stderr, flush=True)
    try:
        res = export(app, args.layer, args.minzoom, args.maxzoom, args.out, jobs=args.jobs,
                     compression=args.compression, progress=_printer(sys.stderr))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        services.of(app).db.close()
    print(f"{res.path}: {res.written} tiles ({res.unique} distinct, {res.empty} empty left out) of {res.requested} "
          f"in the limits at z{res.minzoom}-{res.maxzoom}, {res.bytes:,} bytes, data version {res.data_version}, "
          f"{res.seconds} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
