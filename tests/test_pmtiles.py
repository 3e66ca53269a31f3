"""PMTiles export: the archive holds exactly the server's tiles, with the right header and metadata."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType

from server import services
from server.pmtiles_export import ExportError, export, main, plan, tile_path


def _canonical(data: bytes) -> dict[str, Any]:
    """A decoded tile with its features in id order."""
    tile = mapbox_vector_tile.decode(data)
    for layer in tile.values():
        layer["features"] = sorted(layer["features"], key=lambda f: (f.get("id") or 0, repr(f)))
    return tile

LAYER = "bike_stations"  # tiles z8-18 in config.yml


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[tuple[int, int, int], bytes]]:
    """Header, metadata and every tile of an archive, through the pmtiles reader."""
    with path.open("rb") as fh:
        source = MmapSource(fh)
        reader = Reader(source)
        header, meta = reader.header(), reader.metadata()
        tiles = {(int(z), int(x), int(y)): bytes(data) for (z, x, y), data in all_tiles(source)}
    return dict(header), meta, tiles


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_archive_holds_the_server_tiles(app, tmp_path: Path, compression: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"{LAYER}.pmtiles"
    res = export(app, LAYER, 10, 13, out, jobs=3, compression=compression)
    layer = services.of(app).registry.get(LAYER)
    _, _, wanted = plan(layer, 10, 13)
    header, meta, archived = _read(out)

    assert header["tile_type"] == TileType.MVT
    assert header["tile_compression"] == (Compression.GZIP if compression == "gzip" else Compression.NONE)
    assert (header["min_zoom"], header["max_zoom"]) == (10, 13) == (res.minzoom, res.maxzoom)
    west, south, east, north = layer.extent
    assert (header["min_lon_e7"], header["min_lat_e7"], header["max_lon_e7"], header["max_lat_e7"]) == (
        round(west * 1e7), round(south * 1e7), round(east * 1e7), round(north * 1e7))
    assert 127.1 < header["center_lon_e7"] / 1e7 < 127.4 and 36.4 < header["center_lat_e7"] / 1e7 < 36.8
    assert meta["vector_layers"][0]["id"] == LAYER and meta["minzoom"] == 10 and meta["maxzoom"] == 13
    assert "tiles" not in meta  # no server URL baked into a static archive

    client = app.test_client()
    non_empty = 0
    for z, x, y in wanted:
        server = client.get(tile_path(LAYER, z, x, y))
        assert server.status_code == 200
        stored = archived.get((z, x, y))
        if not server.data:
            assert stored is None, f"empty tile {z}/{x}/{y} should be left out"
            continue
        non_empty += 1
        assert stored is not None, f"tile {z}/{x}/{y} is missing"
        raw = gzip.decompress(stored) if compression == "gzip" else stored
        # the same features, properties and geometry (PostgreSQL may scan rows in another order between renders,
        # which reorders the MVT's value table, so compare decoded tiles, not bytes)
        assert _canonical(raw) == _canonical(server.data), f"tile {z}/{x}/{y} differs from the server's"
    assert non_empty == len(archived) == res.written > 0
    assert set(archived) <= set(wanted)  # nothing outside the tileMatrixSetLimits
    z, x, y = max(archived)
    decoded = mapbox_vector_tile.decode(gzip.decompress(archived[(z, x, y)]) if compression == "gzip"
                                        else archived[(z, x, y)])
    assert decoded[LAYER]["features"]


def test_zoom_range_is_clipped_to_the_layer(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "clipped.pmtiles"
    res = export(app, "street_lights", 10, 12, out)  # street_lights tiles start at z12
    assert (res.minzoom, res.maxzoom) == (12, 12)
    header, _, _ = _read(out)
    assert (header["min_zoom"], header["max_zoom"]) == (12, 12)
    with pytest.raises(ExportError):
        export(app, "street_lights", 5, 8, tmp_path / "none.pmtiles")
    assert not (tmp_path / "none.pmtiles").exists()


def test_command_line(loaded, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cli.pmtiles"
    assert main(["--layer", LAYER, "--minzoom", "8", "--maxzoom", "9", "--out", str(out)]) == 0
    assert "tiles" in capsys.readouterr().err  # progress
    header, _, tiles = _read(out)
    assert header["min_zoom"] == 8 and tiles
    assert main(["--layer", "no_such_layer", "--minzoom", "8", "--maxzoom", "9", "--out", str(out)]) == 1
