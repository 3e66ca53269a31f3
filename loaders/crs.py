"""CRS handling: transforms to the storage CRS; plausibility checks against Korea and the deployment's region."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer

from loaders.errors import LoadError

KOREA_BOUNDS = (124.0, 33.0, 132.0, 39.5)  # lon min, lat min, lon max, lat max
CANDIDATES = (4326, 5174, 5181, 5185, 5186, 5187, 5188, 2097, 5179, 3857)  # the Korean family
PREFERENCE = (5186, 5181, 5179, 4326, 5174, 5185, 5187, 5188, 2097, 3857)
Bbox = tuple[float, float, float, float]  # lon min, lat min, lon max, lat max
REGION_SHARE = 0.5  # a load whose sampled coordinates fall in the region less often than this is refused
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


def in_bbox(lon: np.ndarray, lat: np.ndarray, bbox: Bbox) -> np.ndarray:
    """Boolean mask of points inside a lon/lat box."""
    x0, y0, x1, y1 = bbox
    with np.errstate(invalid="ignore"):
        return (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)


def fitting_crs(xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray,
                region: Bbox | None = None) -> list[int]:
    """Candidate EPSG codes placing every sample point in Korea (with a region: most of them in it),
    nearest to the region (default Sejong) first."""
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
        fits = bool(np.all(in_korea(lon, lat))) if region is None else \
            float(np.mean(in_bbox(lon, lat, region))) >= REGION_SHARE
        if len(lon) and fits:
            cx, cy = REGION_CENTER if region is None else ((region[0] + region[2]) / 2, (region[1] + region[3]) / 2)
            dist = float(np.hypot(np.nanmean(lon) - cx, np.nanmean(lat) - cy))
            found.append((dist, code))
    if not found:
        return []
    best = min(d for d, _ in found)  # within ~5 km of the nearest reading, the more common CRS first
    return [c for _, c in sorted(found, key=lambda f: (f[0] > best + 0.05, PREFERENCE.index(f[1]), f[0]))]


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


def check_region(xs: np.ndarray, ys: np.ndarray, src: int, region: Bbox | None, label: str, how: str) -> int:
    """Refuse coordinates (EPSG:src) that mostly fall outside the deployment's region, naming the CRS that would
    put them inside; returns how many sampled coordinates lie outside (0 without a region)."""
    if region is None or not len(xs):
        return 0
    sx, sy = sample(xs, ys, 2000)
    lon, lat = transform(sx, sy, src, 4326)
    inside = in_bbox(lon, lat, region)
    if float(np.mean(inside)) >= REGION_SHARE:
        return int((~inside).sum())
    fits = [c for c in fitting_crs(sx, sy, region) if c != src]
    if fits:
        hint = f"they fit {' / '.join(f'EPSG:{c}' for c in fits)} — pass --epsg {fits[0]}"
    else:
        hint = "no Korean CRS places them there"
    box = ", ".join(f"{v:g}" for v in region)
    raise LoadError(f"{label}: {int((~inside).sum()):,} of {len(sx):,} sampled coordinates fall outside the region "
                    f"[{box}] (config.yml data.region) when read as EPSG:{src} ({how}); extent lon "
                    f"{np.nanmin(lon):.4f}..{np.nanmax(lon):.4f}, lat {np.nanmin(lat):.4f}..{np.nanmax(lat):.4f}; "
                    f"{hint}; for a layer beyond the region pass --national")
