"""CRS handling: transforms to the storage CRS and the 'coordinates are in Korea' plausibility check."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer

from loaders.errors import LoadError

KOREA_BOUNDS = (124.0, 33.0, 132.0, 39.5)  # lon min, lat min, lon max, lat max
CANDIDATES = (5186, 5181, 5179, 5174, 5185, 5187, 4326, 3857)
REGION_CENTER = (127.289, 36.48)  # Sejong City Hall: used only to rank candidate CRSs in messages
STORAGE_SRID = 5186


@lru_cache(maxsize=64)
def transformer(src: int, dst: int) -> Transformer:
    """Cached always-xy transformer between two EPSG codes."""
    return Transformer.from_crs(CRS.from_epsg(src), CRS.from_epsg(dst), always_xy=True)


def transform(xs: np.ndarray, ys: np.ndarray, src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinate arrays from src to dst (no-op when equal)."""
    if src == dst:
        return xs, ys
    ox, oy = transformer(src, dst).transform(xs, ys)
    return np.asarray(ox, dtype=float), np.asarray(oy, dtype=float)


def in_korea(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Boolean mask of points inside Korea's bounds."""
    x0, y0, x1, y1 = KOREA_BOUNDS
    with np.errstate(invalid="ignore"):
        return (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)


def epsg_of(crs: object) -> int | None:
    """EPSG code of a pyproj-compatible CRS (None when unknown)."""
    if crs is None:
        return None
    try:
        c = CRS.from_user_input(crs)
    except Exception:
        return None
    code = c.to_epsg(min_confidence=70)
    if code is None and c.is_geographic and c.ellipsoid is not None and "WGS" in (c.ellipsoid.name or ""):
        return 4326
    return code


def fitting_crs(xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray) -> list[int]:
    """Candidate EPSG codes placing every sample point in Korea, nearest to Sejong first."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    found: list[tuple[float, int]] = []
    degrees = bool(np.all((np.abs(x) <= 180) & (np.abs(y) <= 90)))
    for code in CANDIDATES:
        if (code == 4326) != degrees:
            continue
        try:
            lon, lat = transform(x, y, code, 4326)
        except Exception:
            continue
        if len(lon) and bool(np.all(in_korea(lon, lat))):
            dist = float(np.hypot(np.mean(lon) - REGION_CENTER[0], np.mean(lat) - REGION_CENTER[1]))
            found.append((dist, code))
    return [code for _, code in sorted(found)]


def sample(xs: np.ndarray, ys: np.ndarray, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """An evenly spread sample of at most n coordinates."""
    if len(xs) <= n:
        return xs, ys
    idx = np.linspace(0, len(xs) - 1, n).astype(int)
    return xs[idx], ys[idx]


def check_in_korea(xs: np.ndarray, ys: np.ndarray, src: int, label: str, how: str) -> np.ndarray:
    """Raise a LoadError naming the likely CRS when coordinates read as EPSG:src fall outside Korea."""
    lon, lat = transform(xs, ys, src, 4326)
    ok = in_korea(lon, lat)
    if bool(np.all(ok)):
        return ok
    bad = ~ok
    sx, sy = sample(xs[bad], ys[bad])
    fits = [c for c in fitting_crs(sx, sy) if c != src]
    first = int(np.argmax(bad))
    where = f"e.g. ({xs[first]:.6g}, {ys[first]:.6g})"
    if fits:
        names = " / ".join(f"EPSG:{c}" for c in fits)
        hint = f"they fit {names} — pass --epsg {fits[0]}"
    else:
        hint = f"no candidate CRS ({', '.join(str(c) for c in CANDIDATES)}) places them in Korea"
    raise LoadError(f"{label}: {int(bad.sum()):,} coordinates are not in Korea when read as EPSG:{src} ({how}), "
                    f"{where}; {hint}")
