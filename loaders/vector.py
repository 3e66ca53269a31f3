"""Vector files (GeoJSON/TopoJSON, zipped Shapefile, GeoPackage) read with pyogrio, checked and moved to EPSG:5186."""

from __future__ import annotations

import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from loaders import crs
from loaders.errors import LoadError
from loaders.textio import decode_bytes, detect_encoding, member_names

GEOJSON_SUFFIXES = (".geojson", ".json", ".topojson")


@dataclass
class VectorData:
    """A read vector file: attributes + geometry already in the storage CRS."""

    frame: gpd.GeoDataFrame
    source_epsg: int
    label: str
    skipped: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)  # features set aside: file, line (feature), reason
    encoding: str | None = None
    outside_region: int = 0


def dbf_text(data: bytes, limit: int = 20_000) -> bytes:
    """The bytes of the character fields of a DBF (its first `limit` records), one value a line."""
    if len(data) < 32:
        return b""
    nrec, header, reclen = struct.unpack("<IHH", data[4:12])
    fields: list[tuple[int, int]] = []
    pos, offset = 32, 1  # each record starts with its deletion flag
    while pos + 32 <= header and data[pos] != 0x0D:
        if chr(data[pos + 11]) in "CM":
            fields.append((offset, data[pos + 16]))
        offset += data[pos + 16]
        pos += 32
    out: list[bytes] = []
    for r in range(min(nrec, limit)):
        rec = data[header + r * reclen: header + (r + 1) * reclen]
        out.extend(rec[o:o + n].strip(b" \x00") for o, n in fields)
    return b"\n".join(v for v in out if v)


def _text_encoding(path: Path, encoding: str | None, label: str) -> str | None:
    """Encoding of a Shapefile's DBF: the flag; else the .cpg; else by content (UTF-8 or CP949)."""
    if encoding and encoding != "auto":
        return encoding
    if path.is_dir() or path.suffix.lower() not in (".shp", ".dbf"):
        return None
    if any(path.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        return None
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    text = dbf_text(dbf.read_bytes())
    enc = detect_encoding(text, f"{label} (DBF without .cpg)") if text else "utf-8"
    return "cp949" if enc == "euc-kr" else enc


@contextmanager
def _readable(path: Path, label: str) -> Iterator[Path]:
    """A path GDAL reads right: zips extracted with their real (CP949 or UTF-8) member names; non-UTF-8
    GeoJSON re-encoded as UTF-8 (GDAL reads JSON as UTF-8 only)."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with tempfile.TemporaryDirectory(prefix="sejong-zip-") as tmp, zipfile.ZipFile(path) as zf:
            members = member_names(path)
            for name, info in members.items():
                target = Path(tmp) / name
                if ".." in Path(name).parts or Path(name).is_absolute():
                    raise LoadError(f"{label}: unsafe member name {name!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            found = sorted(Path(tmp) / n for n in members if Path(n).suffix.lower() in (".shp", ".gpkg", ".geojson",
                                                                                           ".json", ".topojson"))
            if not found:
                raise LoadError(f"{label}: no .shp, .gpkg or GeoJSON in the zip (members: "
                                f"{', '.join(list(members)[:8])})")
            with _readable(found[0], label) as inner:
                yield inner
        return
    if suffix in GEOJSON_SUFFIXES:
        data = path.read_bytes()
        text, enc = decode_bytes(data, "auto", label)
        if enc not in ("utf-8", "utf-8-sig"):
            with tempfile.TemporaryDirectory(prefix="sejong-json-") as tmp:
                out = Path(tmp) / path.name
                out.write_text(text, encoding="utf-8")
                yield out
            return
    yield path


def _prj_present(path: Path) -> bool:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".prj") for n in zf.namelist())
    return path.with_suffix(".prj").exists()


def _bad_features(geoms: np.ndarray, src: int) -> list[tuple[int, str]]:
    """(index, reason) of features that cannot be placed: no geometry, non-finite or outside Korea."""
    bad: list[tuple[int, str]] = []
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.nonzero(missing)[0]:
        bad.append((int(i), "no geometry (missing, empty or unreadable coordinates)"))
    idx = np.nonzero(~missing)[0]
    if not len(idx):
        return bad
    b = shapely.bounds(geoms[idx])
    finite = np.isfinite(b).all(axis=1)
    for i in idx[~finite]:
        bad.append((int(i), "non-finite coordinates"))
    idx, b = idx[finite], b[finite]
    with np.errstate(invalid="ignore"):
        lon0, lat0 = crs.transform(b[:, 0], b[:, 1], src, 4326)
        lon1, lat1 = crs.transform(b[:, 2], b[:, 3], src, 4326)
    ok = crs.in_korea(lon0, lat0) & crs.in_korea(lon1, lat1)
    for k in np.nonzero(~ok)[0]:
        bad.append((int(idx[k]), f"coordinates ({b[k, 0]:.6g}, {b[k, 1]:.6g}) are not in Korea as EPSG:{src}"))
    return sorted(bad)


def read_vector(path: Path, *, epsg: int | None = None, layer: str | None = None, encoding: str | None = None,
                label: str | None = None, multi: bool = True, region: crs.Bbox | None = None,
                keep_bad: bool = False) -> VectorData:
    """Read any OGR vector file, resolve its CRS (flag > .prj > GeoJSON default), check Korea and the region,
    go to 5186. Features that cannot be placed refuse the file, or with keep_bad are returned as rejects."""
    label = label or path.name
    if not path.exists():
        raise LoadError(f"{label}: file not found")
    if path.stat().st_size == 0:
        raise LoadError(f"{label}: the file is empty")
    with _readable(path, label) as readable:
        kwargs: dict[str, Any] = {}
        enc = _text_encoding(readable, encoding, label)
        if enc:
            kwargs["encoding"] = enc
        if layer:
            kwargs["layer"] = layer
        try:
            frame = pyogrio.read_dataframe(readable, **kwargs)
        except Exception as exc:
            raise LoadError(f"{label}: cannot read as a vector file ({str(exc).strip().splitlines()[0]})") from exc
        prj = _prj_present(path) or readable.with_suffix(".prj").exists()
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise LoadError(f"{label}: no geometry column")
    if len(frame) == 0:
        raise LoadError(f"{label}: zero features")
    how = "--epsg"
    src = epsg
    if src is None:
        src = crs.epsg_of(frame.crs)
        how = ".prj" if prj else "file CRS"
        if src is None and frame.crs is not None:
            raise LoadError(f"{label}: CRS of the file is not an EPSG CRS we know ({frame.crs}); pass --epsg N")
        if src is None:
            if path.suffix.lower() in GEOJSON_SUFFIXES:
                src, how = 4326, "GeoJSON default WGS84"
            else:
                raise LoadError(f"{label}: no CRS (.prj missing); pass --epsg N (e.g. 5186, 5174, 5179, 4326)")
    geoms = shapely.force_2d(frame.geometry.values)
    bad = _bad_features(np.asarray(geoms), src)
    if len(bad) * 2 > len(frame):  # most features misplaced: a CRS problem rather than bad rows
        every = shapely.get_coordinates(np.asarray(geoms))
        every = every[np.isfinite(every).all(axis=1)]
        if len(every):
            crs.check_in_korea(*crs.sample(every[:, 0], every[:, 1], 5000), src, label, how)
    if len(bad) == len(frame):
        raise LoadError(f"{label}: no feature can be placed (feature 1: {bad[0][1]})")
    good = np.ones(len(frame), dtype=bool)
    good[[i for i, _ in bad]] = False
    coords = shapely.get_coordinates(np.asarray(geoms)[good])
    xs, ys = crs.sample(coords[:, 0], coords[:, 1], 5000)
    outside = crs.check_region(xs, ys, src, region, label, how)
    rejects: list[dict[str, Any]] = [
        {"file": label, "line": i + 1, "column": "geometry", "reason": f"feature {i + 1}: {why}"} for i, why in bad]
    if bad and not keep_bad:
        first = "; ".join(str(r["reason"]) for r in rejects[:5])
        raise LoadError(f"{label}: {len(bad):,} feature(s) cannot be placed ({first}); fix the file, or set them "
                        f"aside with --max-bad-rows N (or N%)")
    frame = frame.loc[good].copy()
    tr = crs.transformer(src, crs.STORAGE_SRID)
    out = shapely.transform(np.asarray(geoms)[good], lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    if multi:
        out = promote_multi(out)
    frame = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=out, crs=crs.STORAGE_SRID)
    return VectorData(frame.reset_index(drop=True), src, label, len(bad), rejects, enc, outside)


def promote_multi(geoms: np.ndarray) -> np.ndarray:
    """Polygon -> MultiPolygon, LineString -> MultiLineString, Point -> MultiPoint (others unchanged), vectorized."""
    out = np.array(geoms, dtype=object)
    types = shapely.get_type_id(out)
    for single, make in ((3, shapely.multipolygons), (1, shapely.multilinestrings), (0, shapely.multipoints)):
        idx = np.nonzero(types == single)[0]
        if len(idx):
            out[idx] = make(out[idx], indices=np.arange(len(idx)))
    return out


def geometry_kind(geoms: np.ndarray) -> str:
    """PostGIS geometry type name shared by all geometries (Geometry when mixed)."""
    names = set(shapely.get_type_id(geoms).tolist())
    table = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon"}
    kinds = {table.get(n, "Geometry") for n in names}
    return kinds.pop() if len(kinds) == 1 else "Geometry"


def ewkb(geoms: np.ndarray) -> list[str]:
    """Hex EWKB strings with SRID 5186, for COPY."""
    return list(shapely.to_wkb(shapely.set_srid(geoms, crs.STORAGE_SRID), hex=True, include_srid=True))


def list_layers(path: Path) -> list[str]:
    """Layer names of a multi-layer file."""
    return [str(r[0]) for r in pyogrio.list_layers(path)]
