"""Reading the surface COGs with rasterio: subsets as GeoTIFF, grade-coloured PNG, and web map tiles."""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.warp import reproject

from core.air_grades import colourise
from core.errors import InvalidParameterValue

NODATA = -9999.0
GEOTIFF = "image/tiff; application=geotiff"
PNG = "image/png"


@dataclass(frozen=True)
class Raster:
    """A whole surface in memory: values (NaN = nodata), transform and CRS."""

    values: np.ndarray
    transform: Affine
    crs: CRS

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy)."""
        rows, cols = self.values.shape
        left, top = self.transform.c, self.transform.f
        return left, top + rows * self.transform.e, left + cols * self.transform.a, top


class RasterCache:
    """The last few surfaces read, by path (a surface of 100 m cells over a city is well under a megabyte)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[str, Raster] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> Raster:
        """The surface at path (read with rasterio on first use)."""
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
        with rasterio.open(path) as ds:
            band = ds.read(1, masked=True)
            raster = Raster(np.ma.filled(band.astype(np.float32), np.nan), ds.transform, ds.crs)
        with self._lock:
            self._items[path] = raster
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return raster


def subset(raster: Raster, bounds: tuple[float, float, float, float] | None) -> tuple[np.ndarray, Affine]:
    """The cells touching a box in the raster's CRS (clipped to the raster); 400 when the box misses it."""
    if bounds is None:
        return raster.values, raster.transform
    x0, y0, x1, y1 = bounds
    if x0 >= x1 or y0 >= y1:
        raise InvalidParameterValue(f"empty subset {list(bounds)}: the minimum must be below the maximum")
    rows, cols = raster.values.shape
    cell, left, top = raster.transform.a, raster.transform.c, raster.transform.f
    minx, miny, maxx, maxy = raster.bounds
    x0, y0, x1, y1 = max(x0, minx - cell), max(y0, miny - cell), min(x1, maxx + cell), min(y1, maxy + cell)
    c0, c1 = max(0, math.floor((x0 - left) / cell)), min(cols, math.ceil((x1 - left) / cell))
    r0, r1 = max(0, math.floor((top - y1) / cell)), min(rows, math.ceil((top - y0) / cell))
    if c0 >= c1 or r0 >= r1:
        raise InvalidParameterValue(f"subset {list(bounds)} is outside the coverage ({minx:.0f}, {miny:.0f}, "
                                    f"{maxx:.0f}, {maxy:.0f} in EPSG:{raster.crs.to_epsg()})")
    return raster.values[r0:r1, c0:c1], raster.transform @ Affine.translation(c0, r0)


def geotiff(values: np.ndarray, transform: Affine, crs: CRS, tags: dict[str, str]) -> bytes:
    """A float32 GeoTIFF (deflate, nodata -9999) of an array."""
    profile = {"driver": "GTiff", "height": values.shape[0], "width": values.shape[1], "count": 1,
               "dtype": "float32", "crs": crs, "transform": transform, "nodata": NODATA, "compress": "deflate"}
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(np.where(np.isfinite(values), values, NODATA).astype(np.float32), 1)
            ds.update_tags(**tags)
        return bytes(mem.read())


def png(values: np.ndarray, pollutant: str) -> bytes:
    """A PNG of the grade colours (transparent where nodata)."""
    buf = io.BytesIO()
    Image.fromarray(colourise(values, pollutant), "RGBA").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def tile(raster: Raster, bounds: tuple[float, float, float, float], tile_crs: CRS, size: int) -> np.ndarray | None:
    """The surface resampled (nearest cell) onto a tile's pixels; None when the tile misses it."""
    out = np.full((size, size), np.nan, dtype=np.float32)
    reproject(raster.values, out, src_transform=raster.transform, src_crs=raster.crs, src_nodata=np.nan,
              dst_transform=from_bounds(*bounds, size, size), dst_crs=tile_crs, dst_nodata=np.nan,
              resampling=Resampling.nearest)
    return out if np.isfinite(out).any() else None
