"""One surface: station readings of one time step -> a grid of estimates (NaN beyond reach) + its validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loaders.surfaces.grid import Grid
from loaders.surfaces.interpolate import beyond, estimate
from loaders.surfaces.validation import Score, loo_errors, score


@dataclass(frozen=True)
class Params:
    """How surfaces are made (from config.yml `surfaces:`)."""

    max_distance: float = 6000.0
    power: float = 2.0
    min_kriging_stations: int = 8


@dataclass(frozen=True)
class Stations:
    """Station positions (projected metres) and their values at one time step (no missing values)."""

    x: np.ndarray
    y: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, x: Sequence[float], y: Sequence[float], values: Sequence[float | None]) -> Stations:
        """Stations with a finite value only."""
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        vs = np.asarray([np.nan if v is None else float(v) for v in values])
        ok = np.isfinite(vs)
        return cls(xs[ok], ys[ok], vs[ok])


@dataclass(frozen=True)
class Surface:
    """A grid of estimates (float32, NaN = nodata), the method that made it, and the cross-validated errors."""

    values: np.ndarray
    method: str
    validation: dict[str, Score]
    stations: int


def validate(stations: Stations, methods: Sequence[str], params: Params) -> dict[str, Score]:
    """Leave-one-station-out RMSE/MAE of each method."""
    return {m: score(m, loo_errors(m, stations.x, stations.y, stations.values, params.power,
                                   params.min_kriging_stations)) for m in methods}


def interpolate(stations: Stations, grid: Grid, method: str, params: Params) -> tuple[np.ndarray, str]:
    """The grid of estimates by one method (NaN where the nearest station is beyond max_distance)."""
    cx, cy = grid.centres()
    qx, qy = np.meshgrid(cx, cy)
    out = np.full(qx.size, np.nan, dtype=np.float32)
    reach = ~beyond(stations.x, stations.y, qx, qy, params.max_distance)
    est = estimate(method, stations.x, stations.y, stations.values, qx.ravel()[reach], qy.ravel()[reach],
                   params.power, params.min_kriging_stations)
    out[reach] = est.values
    return out.reshape(grid.rows, grid.cols), est.method


def build(stations: Stations, grid: Grid, method: str, methods: Sequence[str], params: Params) -> Surface:
    """Validate every method, then interpolate with `method`."""
    validation = validate(stations, methods, params)
    values, used = interpolate(stations, grid, method, params)
    return Surface(values, used, validation, int(stations.values.size))
