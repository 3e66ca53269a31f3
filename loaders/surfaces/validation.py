"""Leave-one-station-out cross-validation: each station estimated from all the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loaders.surfaces.interpolate import estimate, fit_variogram


@dataclass(frozen=True)
class Score:
    """Cross-validated errors of one method on one time step (or pooled over several)."""

    method: str
    rmse: float
    mae: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        """JSON form (rounded to 0.001)."""
        return {"rmse": round(self.rmse, 3), "mae": round(self.mae, 3), "n": self.n}


def loo_errors(method: str, sx: np.ndarray, sy: np.ndarray, sv: np.ndarray, power: float = 2.0,
               min_kriging_stations: int = 8) -> np.ndarray:
    """Estimate minus observation at every station, each left out in turn.

    Kriging keeps the time step's variogram (fitted once on all its stations) and re-solves the kriging system
    without the left-out station, as gstat's krige.cv does; a station set too small for kriging is scored as IDW.
    """
    params = fit_variogram(sx, sy, sv) if method == "kriging" and sv.size > min_kriging_stations else None
    errors = np.empty(sv.size)
    keep = np.ones(sv.size, dtype=bool)
    for i in range(sv.size):
        keep[i] = False
        est = estimate(method, sx[keep], sy[keep], sv[keep], sx[i:i + 1], sy[i:i + 1], power, min_kriging_stations,
                       params)
        errors[i] = est.values[0] - sv[i]
        keep[i] = True
    return errors


def score(method: str, errors: np.ndarray) -> Score:
    """RMSE and MAE of a set of errors."""
    if errors.size == 0:
        return Score(method, float("nan"), float("nan"), 0)
    return Score(method, float(np.sqrt(np.mean(errors ** 2))), float(np.mean(np.abs(errors))), int(errors.size))


def best(scores: dict[str, Score]) -> str:
    """The method with the lowest RMSE (ties: the order given)."""
    finite = {m: s for m, s in scores.items() if np.isfinite(s.rmse)}
    if not finite:
        return next(iter(scores))
    return min(finite, key=lambda m: finite[m].rmse)
