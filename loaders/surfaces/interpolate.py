"""Interpolators of station values: inverse distance weighting, ordinary kriging, nearest station.

Each takes station coordinates and values and returns estimates at query points.  Kriging fits a spherical
variogram to the stations of the time step (pykrige) and falls back to IDW when there are too few stations or no
variogram fits; `Estimate.method` says which method produced the numbers.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

LOGGER = logging.getLogger(__name__)
METHODS = ("idw", "kriging", "nearest")


@dataclass(frozen=True)
class Estimate:
    """Values at the query points and the method that made them (kriging may fall back to idw)."""

    values: np.ndarray
    method: str
    nugget: float | None = None  # kriging only: the fitted nugget (variance units)


def idw(sx: np.ndarray, sy: np.ndarray, sv: np.ndarray, qx: np.ndarray, qy: np.ndarray,
        power: float = 2.0) -> np.ndarray:
    """Inverse distance weighting; a query point on a station gets that station's value exactly."""
    qx, qy = np.asarray(qx, dtype=float).ravel(), np.asarray(qy, dtype=float).ravel()
    out = np.empty(qx.size)
    chunk = 32768
    for start in range(0, qx.size, chunk):
        d2 = np.square(qx[start:start + chunk, None] - sx[None, :])
        d2 += np.square(qy[start:start + chunk, None] - sy[None, :])
        exact = d2 == 0.0
        hit = exact.any(axis=1)
        d2[exact] = 1.0  # replaced below: the station's own value
        w = np.reciprocal(d2) if power == 2.0 else d2 ** (-power / 2.0)
        w[hit] = exact[hit]
        out[start:start + chunk] = (w @ sv) / w.sum(axis=1)
    return out


def nearest(sx: np.ndarray, sy: np.ndarray, sv: np.ndarray, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """The value of the nearest station (the baseline every surface is judged against)."""
    _, idx = cKDTree(np.column_stack([sx, sy])).query(np.column_stack([np.ravel(qx), np.ravel(qy)]))
    return np.asarray(sv)[idx]


def fit_variogram(sx: np.ndarray, sy: np.ndarray, sv: np.ndarray, variogram: str = "spherical") -> list[float] | None:
    """The variogram parameters (psill, range, nugget for the spherical model) fitted to these stations, or None."""
    from pykrige.ok import OrdinaryKriging

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = OrdinaryKriging(sx, sy, sv, variogram_model=variogram, enable_statistics=False)
    except (ValueError, np.linalg.LinAlgError) as exc:
        LOGGER.info("variogram fit failed (%s)", exc)
        return None
    params = [float(v) for v in model.variogram_model_parameters]
    return params if all(np.isfinite(params)) and params[0] > 0 else None


def kriging(sx: np.ndarray, sy: np.ndarray, sv: np.ndarray, qx: np.ndarray, qy: np.ndarray,
            min_stations: int = 8, variogram: str = "spherical", power: float = 2.0,
            parameters: list[float] | None = None) -> Estimate:
    """Ordinary kriging with a variogram fitted to these stations (or the `parameters` given); IDW when there are
    fewer than min_stations, all values are equal, or no variogram fits."""
    if sv.size < min_stations or np.ptp(sv) == 0:
        return Estimate(idw(sx, sy, sv, qx, qy, power), "idw")
    params = parameters if parameters is not None else fit_variogram(sx, sy, sv, variogram)
    if params is None:
        return Estimate(idw(sx, sy, sv, qx, qy, power), "idw")
    from pykrige.ok import OrdinaryKriging

    psill, vrange, nugget = params
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = OrdinaryKriging(sx, sy, sv, variogram_model=variogram, exact_values=True, pseudo_inv=True,
                                    variogram_parameters={"psill": psill, "range": vrange, "nugget": nugget},
                                    enable_statistics=False)
            z, _ = model.execute("points", np.ravel(qx), np.ravel(qy), backend="vectorized")
    except (ValueError, np.linalg.LinAlgError) as exc:
        LOGGER.info("kriging failed (%s); falling back to idw", exc)
        return Estimate(idw(sx, sy, sv, qx, qy, power), "idw")
    values = np.asarray(z, dtype=float)
    if not np.all(np.isfinite(values)):
        return Estimate(idw(sx, sy, sv, qx, qy, power), "idw")
    return Estimate(values, "kriging", nugget)


def estimate(method: str, sx: np.ndarray, sy: np.ndarray, sv: np.ndarray, qx: np.ndarray, qy: np.ndarray,
             power: float = 2.0, min_kriging_stations: int = 8, parameters: list[float] | None = None) -> Estimate:
    """Estimates at query points by the named method (kriging: with `parameters` when given, else fitted)."""
    if method == "idw":
        return Estimate(idw(sx, sy, sv, qx, qy, power), "idw")
    if method == "nearest":
        return Estimate(nearest(sx, sy, sv, qx, qy), "nearest")
    if method == "kriging":
        return kriging(sx, sy, sv, qx, qy, min_kriging_stations, power=power, parameters=parameters)
    raise ValueError(f"unknown interpolation method {method!r}; use one of {', '.join(METHODS)}")


def beyond(sx: np.ndarray, sy: np.ndarray, qx: np.ndarray, qy: np.ndarray, max_distance: float) -> np.ndarray:
    """True where the nearest station is farther than max_distance (those cells are nodata, not guesses)."""
    dist, _ = cKDTree(np.column_stack([sx, sy])).query(np.column_stack([np.ravel(qx), np.ravel(qy)]))
    return np.asarray(dist > max_distance)
