r"""Memory estimate of a `soc-siting` solve, checked against ``processes.max_solve_memory_mb`` before solving.

For ``n`` demand rows (weight > 0) x ``m`` sites (``mc`` of them candidates), ``cells = n m``, the estimate is

.. math::

    \text{bytes} = B + D_\text{path} \cdot \text{cells} + M_\text{path} \cdot \text{model size}

- :math:`B` = :data:`BASE` (128 MB): a margin for HiGHS's workspaces and the interpreter during a solve (the
  child's imports and solver threads are its starting size, outside the budget);
- :math:`D` (:data:`DENSE`): bytes per cell of the dense matrices the solver holds at its peak: its copy of the
  float64 cost matrix, the row/column subsets and the penalty-filled copy (min-sum), the swap search's and the
  Lagrangian's blocks; the exact min-sum path adds the radius levels (sorted order and levels, int64);
  coverage models add a boolean mask and the grouped 0/1 matrix;
- :math:`M` (:data:`MIP`) x model size: HiGHS's memory per model entry, which dominates exact solves:
  the radius formulation of p-median / max-attendance has at most ``3 R`` nonzeros, ``R`` the pairs whose cost
  is below the nearest existing site (and below ``T`` for attendance); MCLP and LSCP one per coverage pair
  (cost <= ``T``); the capacitated model one assignment column (about four nonzeros) per finite pair.

The constants come from the peak address space of the child over its start (:mod:`processes.sandbox`; HiGHS
1.16, p = 2, 30-60 s limits) on real Paju walking-time matrices: at 7,420 x 2,954 the heuristic p-median took
47 B/cell, max-attendance 54, p-center 37, MCLP (exact) 16 and LSCP 16 B/cell all included; the exact radius
model 0.8-2.1 KB per ``3 R`` entry (1,856 x 853: 849 MB; 816 x 492: 497 MB); MCLP 200-370 B per coverage
pair; the capacitated model 6.8 KB per pair (0.3 and 1.3 million pairs: 2.1 and 8.5 GB). HiGHS keeps growing
with its search tree, so a long solve can outgrow its estimate: the child's ``RLIMIT_AS`` is the hard limit,
this estimate the early, explained refusal. p-center's probe MIPs are not estimated (its dense part is). The
server itself holds the cost matrix once more (8 B/cell, at most ``MAX_CELLS`` of :mod:`processes.soc_siting`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from processes.siting.coverage import AUTO_EXACT_NONZEROS
from processes.siting.minsum import AUTO_EXACT_CELLS

MB = 2**20
BASE = 128 * MB
ROWS = 4096  # rows per chunk when counting pairs (bounded temporaries in the server)
DENSE = {"minsum-heuristic": 60, "minsum-exact": 100, "cover-heuristic": 40, "cover-exact": 24,
         "lscp": 24, "p-center": 48, "capacitated": 24}
MIP = {"minsum-exact": 1_600, "cover-exact": 256, "lscp": 256, "capacitated": 7_000, "minsum-heuristic": 0,
       "cover-heuristic": 0, "p-center": 0}
MODEL_PATHS = {"p-median": "minsum", "max-attendance": "minsum", "mclp": "cover", "lscp": "lscp",
               "p-center": "p-center", "capacitated-p-median": "capacitated"}


@dataclass
class Estimate:
    """Estimated peak bytes of one solve, its parts, the solver path it assumed and that path's model size."""

    path: str
    cells: int
    model_size: int

    @property
    def dense(self) -> int:
        """Bytes of the dense matrices."""
        return DENSE[self.path] * self.cells

    @property
    def model(self) -> int:
        """Bytes of the MIP in HiGHS."""
        return MIP[self.path] * self.model_size

    @property
    def total(self) -> int:
        """Estimated peak bytes."""
        return BASE + self.dense + self.model

    def describe(self) -> str:
        """'about 3,200 MB (dense matrices ... + ...)'."""
        what = {"minsum-exact": "radius-model entries", "cover-exact": "coverage pairs", "lscp": "coverage pairs",
                "capacitated": "assignment pairs"}.get(self.path)
        model = f" + {what} {self.model_size:,} x {MIP[self.path]:,} B = {self.model / MB:,.0f} MB" if what else ""
        return (f"about {self.total / MB:,.0f} MB ({self.cells:,} demand-site pairs x {DENSE[self.path]} B = "
                f"{self.dense / MB:,.0f} MB of dense matrices{model} + {BASE // MB} MB solver base)")


def path_of(model: str, method: str, exact_minsum: bool = False) -> str:
    """The estimate's path: model family and, where it matters, exact or heuristic."""
    family = MODEL_PATHS[model]
    if family in ("minsum", "cover"):
        return f"{family}-{'exact' if method == 'exact' or exact_minsum else 'heuristic'}"
    return family


def before_costs(model: str, method: str, n: int, m: int) -> Estimate:
    """A lower bound known from the sizes alone (the dense part of the cheapest path the request allows)."""
    return Estimate(path_of(model, method if method == "exact" else "heuristic"), n * m, 0)


def _count(c: np.ndarray, test: Callable[[np.ndarray, slice], Any]) -> int:
    """Sum of ``test(rows block, its slice)`` over row blocks of ``c``."""
    return sum(int(test(c[s:s + ROWS], slice(s, s + ROWS))) for s in range(0, c.shape[0], ROWS))


def with_costs(model: str, method: str, c: np.ndarray, w: np.ndarray, existing: np.ndarray, minutes: float) -> \
        list[Estimate]:
    """Estimates of the paths ``method`` may take on cost matrix ``c`` (rows solved), cheapest path last.

    ``auto`` gives two for p-median, max-attendance and MCLP (the exact path the solver would choose, then
    the heuristic), so the caller can fall back to the heuristic when only it fits.
    """
    live = w > 0
    cells = int(live.sum()) * c.shape[1]
    cand = np.setdiff1d(np.arange(c.shape[1]), existing)
    family = MODEL_PATHS[model]
    if family == "minsum":
        e = c[:, existing].min(axis=1) if existing.size else np.full(c.shape[0], np.inf)
        if model == "max-attendance":
            e = np.minimum(e, minutes)
        rel = _count(c, lambda blk, sl: ((blk[:, cand] < e[sl, None]) & live[sl, None]).sum())
        exact = Estimate("minsum-exact", cells, 3 * rel + cand.size)
        heur = Estimate("minsum-heuristic", cells, 0)
        if method == "exact":
            return [exact]
        if method == "auto" and cells <= AUTO_EXACT_CELLS:
            return [exact, heur]
        return [heur]
    if family == "cover":
        cov = _coverage(c, live, existing, cand, minutes)
        exact = Estimate("cover-exact", cells, cov)
        heur = Estimate("cover-heuristic", cells, 0)
        if method == "exact":
            return [exact]
        if method == "auto" and cov <= AUTO_EXACT_NONZEROS:
            return [exact, heur]
        return [heur]
    if family == "lscp":
        return [Estimate("lscp", cells, _coverage(c, live, existing, cand, minutes))]
    if family == "capacitated":
        return [Estimate("capacitated", cells, _count(c, lambda blk, sl: (np.isfinite(blk) & live[sl, None]).sum()))]
    return [Estimate(family, cells, 0)]


def _coverage(c: np.ndarray, live: np.ndarray, existing: np.ndarray, cand: np.ndarray, t: float) -> int:
    """Coverage pairs (candidate within t) of demand rows not already covered by an existing site."""
    def test(blk: np.ndarray, sl: slice) -> int:
        free = live[sl] & ~(blk[:, existing] <= t).any(axis=1) if existing.size else live[sl]
        return int((blk[free][:, cand] <= t).sum())
    return _count(c, test)


def hint(model: str, path: str) -> str:
    """How to shrink a request on this path."""
    ways = ["fewer demand points (a larger demand.cell_m or a demand filter)",
            "fewer candidates (a larger grid cell_m or a candidate filter)"]
    if path.endswith("-exact"):
        ways.append("method 'heuristic' (it reports a proven gap)")
    if path in ("cover-exact", "lscp"):
        ways.append("smaller minutes (fewer coverage pairs)")
    if path == "capacitated":
        ways.append("smaller cutoff_minutes (fewer assignment pairs)")
    return "shrink the request: " + ", ".join(ways)
