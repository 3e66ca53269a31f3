"""Result type, error types and shared literals of the siting solvers (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Status = Literal["optimal", "feasible", "time_limit", "infeasible"]
Method = Literal["auto", "exact", "heuristic"]
Progress = Callable[[float, str], None]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class SitingInputError(ValueError):
    """Bad solver input; the message says what to change (the process layer maps it to HTTP 400)."""


class SitingInfeasibleError(SitingInputError):
    """No solution satisfies the constraints (e.g. demand that no candidate can cover within ``T``).

    Attributes
    ----------
    demand : list of int
        Demand indices that cannot be served (empty when the cause is not per-demand, e.g. capacity).
    """

    def __init__(self, message: str, demand: list[int] | None = None) -> None:
        super().__init__(message)
        self.demand: list[int] = list(demand or [])


@dataclass
class SitingResult:
    """Outcome of a siting model.

    Attributes
    ----------
    model : str
        ``lscp``, ``mclp``, ``p_median``, ``p_center``, ``capacitated_p_median`` or ``max_attendance``.
    open_sites : ndarray of int
        Candidate indices open in the solution, existing facilities included, sorted.
    new_sites : ndarray of int
        The subset of ``open_sites`` that are new (not ``existing``), sorted.
    assignment : ndarray of int, shape (n_demand,)
        Candidate index serving each demand point (nearest open site; for the capacitated model the site
        receiving the largest share), ``-1`` where a demand point cannot reach any open site.
    objective : float
        Objective value in the model's own sense (minimised cost, maximised covered weight, site count, ...).
    bound : float
        Proven bound on the optimum (lower for minimisation, upper for maximisation).
    gap : float
        Proven relative gap ``|objective - bound| / max(|objective|, 1e-9)``; 0 when optimal.
    status : {'optimal', 'feasible', 'time_limit', 'infeasible'}
        ``optimal`` only when the gap is proven within tolerance; ``time_limit`` when a limit stopped the search
        with the best solution found; ``feasible`` for a heuristic solution whose gap is above tolerance.
    solver : str
        ``highs-mip``, ``heuristic`` (swap local search with a Lagrangian or LP bound) or ``enumeration``.
    runtime_s : float
        Wall-clock seconds of the solve.
    covered_weight, coverage_share : float
        Demand weight (and its share) within ``T`` of its assigned site; when the model has no ``T``, within
        reach (finite cost).
    mean_cost, max_cost : float
        Weighted mean and maximum assigned cost over demand with positive weight.
    details : dict
        Model-specific extras: ``baseline`` metrics with existing sites only, site loads, flows, iterations, ...
    """

    model: str
    open_sites: IntArray
    new_sites: IntArray
    assignment: IntArray
    objective: float
    bound: float
    gap: float
    status: Status
    solver: str
    runtime_s: float
    covered_weight: float
    coverage_share: float
    mean_cost: float
    max_cost: float
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Scalars and site lists as plain Python values (JSON-ready)."""
        return {
            "model": self.model,
            "open_sites": [int(j) for j in self.open_sites],
            "new_sites": [int(j) for j in self.new_sites],
            "objective": float(self.objective),
            "bound": float(self.bound),
            "gap": float(self.gap),
            "status": self.status,
            "solver": self.solver,
            "runtime_s": float(self.runtime_s),
            "covered_weight": float(self.covered_weight),
            "coverage_share": float(self.coverage_share),
            "mean_cost": float(self.mean_cost),
            "max_cost": float(self.max_cost),
        }


def rel_gap(objective: float, bound: float) -> float:
    """Relative gap between a solution value and a proven bound (HiGHS convention: divided by the objective)."""
    if not (np.isfinite(objective) and np.isfinite(bound)):
        return float("inf")
    diff = abs(objective - bound)
    if diff <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return float(diff / max(abs(objective), 1e-9))


def say(progress: Progress | None, percent: float, message: str) -> None:
    """Report progress; an exception raised by the callback propagates (that is how a job cancels a solve)."""
    if progress is not None:
        progress(float(min(100.0, max(0.0, percent))), message)
