"""Vector files (GeoJSON/TopoJSON, zipped Shapefile, GeoPackage) read with pyogrio, checked and moved to EPSG:5186."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from loaders import crs
from loaders.errors import LoadError

GEOJSON_SUFFIXES = (".geojson", ".json", ".topojson")


@dataclass
class VectorData:
    """A read vector file: attributes + geometry already in the storage CRS."""

    frame: gpd.GeoDataFrame
    source_epsg: int
    label: str
    skipped: int = 0


def _dbf_encoding(path: Path, encoding: str | None) -> str | None:
    """Encoding to pass to GDAL: explicit one; else for Shapefiles CP949 unless a .cpg is present."""
    if encoding and encoding != "auto":
        return encoding
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            names = [n.lower() for n in zf.namelist()]
        if not any(n.endswith(".shp") for n in names):
            return None
        return None if any(n.endswith(".cpg") for n in names) else "cp949"
    if suffix == ".shp":
        return None if path.with_suffix(".cpg").exists() or path.with_suffix(".CPG").exists() else "cp949"
    return None


def _prj_present(path: Path) -> bool:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".prj") for n in zf.namelist())
    return path.with_suffix(".prj").exists()


def read_vector(path: Path, *, epsg: int | None = None, layer: str | None = None, encoding: str | None = None,
                label: str | None = None, multi: bool = True) -> VectorData:
    """Read any OGR vector file, resolve its CRS (flag > .prj > GeoJSON default), check Korea, go to 5186."""
    label = label or path.name
    if not path.exists():
        raise LoadError(f"{label}: file not found")
    if path.stat().st_size == 0:
        raise LoadError(f"{label}: the file is empty")
    kwargs: dict[str, Any] = {}
    enc = _dbf_encoding(path, encoding)
    if enc:
        kwargs["encoding"] = enc
    if layer:
        kwargs["layer"] = layer
    try:
        frame = pyogrio.read_dataframe(path, **kwargs)
    except Exception as exc:
        raise LoadError(f"{label}: cannot read as a vector file ({str(exc).strip().splitlines()[0]})") from exc
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise LoadError(f"{label}: no geometry column")
    if len(frame) == 0:
        raise LoadError(f"{label}: zero features")
    how = "--epsg"
    src = epsg
    if src is None:
        src = crs.epsg_of(frame.crs)
        how = ".prj" if _prj_present(path) else "file CRS"
        if src is None and frame.crs is not None:
            raise LoadError(f"{label}: CRS of the file is not an EPSG CRS we know ({frame.crs}); pass --epsg N")
        if src is None:
            if path.suffix.lower() in GEOJSON_SUFFIXES:
                src, how = 4326, "GeoJSON default WGS84"
            else:
                raise LoadError(f"{label}: no CRS (.prj missing); pass --epsg N (e.g. 5186, 5174, 5179, 4326)")
    geoms = frame.geometry.values
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    skipped = int(missing.sum())
    frame = frame.loc[~missing].copy()
    if len(frame) == 0:
        raise LoadError(f"{label}: every feature has an empty geometry")
    geoms = shapely.force_2d(frame.geometry.values)
    coords = shapely.get_coordinates(geoms)
    xs, ys = crs.sample(coords[:, 0], coords[:, 1], 5000)
    if not bool(np.all(np.isfinite(xs) & np.isfinite(ys))):
        raise LoadError(f"{label}: non-finite coordinates")
    crs.check_in_korea(xs, ys, src, label, how)
    tr = crs.transformer(src, crs.STORAGE_SRID)
    out = shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    if multi:
        out = promote_multi(out)
    frame = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=out, crs=crs.STORAGE_SRID)
    return VectorData(frame.reset_index(drop=True), src, label, skipped)


def promote_multi(geoms: np.ndarray) -> np.ndarray:
    """Polygon -> MultiPolygon, LineString -> MultiLineString (others unchanged)."""
    out = np.array(geoms, dtype=object)
    types = shapely.get_type_id(out)
    for single, multi in ((3, shapely.MultiPolygon), (1, shapely.MultiLineString), (0, shapely.MultiPoint)):
        idx = np.nonzero(types == single)[0]
        for i in idx:
            out[i] = multi([out[i]])
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
