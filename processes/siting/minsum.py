"""Min-sum location driver shared by p-median and maximise-attendance: heuristic, bound, exact, auto choice."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from processes.siting.lagrange import lagrangian_bound
from processes.siting.radius import build_levels, model_size, solve_radius, true_cost
from processes.siting.result import (
    FloatArray,
    IntArray,
    Method,
    Progress,
    SitingInfeasibleError,
    SitingInputError,
)
from processes.siting.result import say as _say
from processes.siting.swap import HybridHeuristic

AUTO_EXACT_CELLS = 2_500_000      # n * m above which 'auto' goes heuristic
MAX_EXACT_NONZEROS = 30_000_000   # radius-model nonzeros above which 'exact' is refused
LAGRANGE_FIRST_CELLS = 100_000    # exact runs above this size compute a Lagrangian bound first


@dataclass
class MinSumOutcome:
    """Chosen new columns (global indices), objective, proven lower bound, status, solver and details."""

    new_open: IntArray
    objective: float
    bound: float
    status: str
    solver: str
    details: dict[str, Any] = field(default_factory=dict)


def _vns_rounds(n: int, m: int) -> int:
    cells = n * m
    if cells <= 50_000:
        return 50
    if cells <= 500_000:
        return 60
    return 0


def solve_minsum(
    c: FloatArray,
    w: FloatArray,
    fixed: IntArray,
    cand: IntArray,
    p: int,
    *,
    method: Method,
    time_limit: float,
    mip_gap: float = 1e-6,
    seed: int = 0,
    progress: Progress | None = None,
    max_exact_nonzeros: int = MAX_EXACT_NONZEROS,
    vns_iterations: int | None = None,
) -> MinSumOutcome:
    """Minimise ``sum_i w_i min_{j open} c_ij`` with ``fixed`` open and ``p`` of ``cand`` to choose.

    Rows with zero weight are dropped; ``inf`` costs become a penalty larger than any finite solution, and a
    solution that still uses one raises :class:`SitingInfeasibleError`.
    """
    t0 = time.perf_counter()
    keep = np.flatnonzero(w > 0)
    cw, ww = c[keep], w[keep]
    cols = np.concatenate([fixed, cand])
    finite = np.isfinite(cw[:, cols])
    dead = keep[~finite.any(axis=1)]
    if dead.size:
        raise SitingInfeasibleError(
            f"{dead.size} demand points cannot reach any candidate or existing site (first: {dead[:10].tolist()}); "
            "add candidates near them, use a mode that reaches them, or give them weight 0", dead.tolist())
    penalty = None
    if not finite.all():
        fin = np.where(np.isfinite(cw), cw, 0.0)
        penalty = float(np.ceil((ww @ fin.max(axis=1)) / ww.min() + 1.0))
        cw = np.where(np.isfinite(cw), cw, penalty)
    integral = bool(np.all(ww == np.round(ww)) and np.all(cw == np.round(cw)))
    n, m = cw.shape
    exact = method == "exact" or (method == "auto" and n * m <= AUTO_EXACT_CELLS)
    rounds = _vns_rounds(n, m) if vns_iterations is None else vns_iterations
    e = cw[:, fixed].min(axis=1) if fixed.size else np.full(n, np.inf)
    c_cand = cw[:, cand]
    _say(progress, 2.0, f"heuristic: greedy + swap local search on {n} x {m}")
    hh = HybridHeuristic(cw, ww, fixed, cand, p, seed=seed)
    deadline = t0 + time_limit
    hh.construct(t0 + time_limit * (0.25 if exact else 0.5))
    details: dict[str, Any] = {"greedy_local_search_objective": hh.best_obj}
    if not exact:
        out = _heuristic_with_bound(hh, cw, ww, fixed, cand, p, c_cand, e, integral=integral, rounds=rounds,
                                    deadline=deadline, progress=progress, details=details)
    else:
        hh.vns(min(rounds, 20), t0 + time_limit * 0.25)
        lag_bound = -math.inf
        if n * m > LAGRANGE_FIRST_CELLS:  # large: a Lagrangian bound (and restarts) first, kept if the MIP stops
            _, d = true_cost(c_cand, e, ww, np.searchsorted(cand, hh.best))
            lb = lagrangian_bound(cw, ww, fixed, cand, p, hh.best_obj, lam0=ww * d, time_budget=0.15 * time_limit,
                                  integral=integral, improve=lambda sel: hh.restart_from(sel, deadline),
                                  improve_every=40)
            lag_bound = lb.bound
            details["lagrangian_bound"] = lb.bound
        heur = hh.solution()
        details.update({"heuristic_objective": heur.objective, "heuristic_s": time.perf_counter() - t0})
        _say(progress, 25.0, f"heuristic objective {heur.objective:.6g}; building the radius model")
        _, d = true_cost(c_cand, e, ww, np.searchsorted(cand, heur.new_open))
        lv = build_levels(cw, fixed, cand)
        if method == "exact":
            cap = np.minimum(lv.kmax, lv.level_of(np.arange(n), d) + 1)
            _cols, rows_, nz = model_size(lv, cap)
            if nz > max_exact_nonzeros:
                raise SitingInputError(
                    f"instance too large for the exact solver: the radius model needs about {nz:,} nonzeros "
                    f"({rows_:,} rows) > limit {max_exact_nonzeros:,}; use method='heuristic' (certified gap) "
                    "or 'auto', or aggregate demand / thin the candidates")
        remaining = max(0.05, deadline - time.perf_counter())
        rad = solve_radius(cw, ww, fixed, cand, p, start_pos=np.searchsorted(cand, heur.new_open),
                           time_limit=remaining, integral=integral, mip_rel_gap=mip_gap, progress=progress,
                           levels=lv)
        details.update({"bound_method": "highs-mip (radius formulation)", "radius_rounds": rad.rounds,
                        "mip_columns": rad.columns, "mip_rows": rad.rows, "mip_nonzeros": rad.nonzeros,
                        "mip_nodes": rad.nodes})
        status = "optimal" if rad.status == "optimal" else ("time_limit" if rad.status == "time_limit" else
                                                             "feasible")
        bound = max(rad.bound, min(lag_bound, rad.objective))
        if status != "optimal" and rad.objective <= bound + 1e-9 * max(1.0, abs(bound)):
            status = "optimal"
        out = MinSumOutcome(cand[rad.open_pos], rad.objective, bound, status, "highs-mip", details)
    if penalty is not None:
        _, dd = true_cost(cw[:, cand], cw[:, fixed].min(axis=1) if fixed.size else np.full(n, np.inf), ww,
                          np.searchsorted(cand, out.new_open))
        bad = keep[dd >= penalty]
        if bad.size:
            raise SitingInfeasibleError(
                f"with p = {p} new sites, {bad.size} demand points cannot reach any open site "
                f"(first: {bad[:10].tolist()}); raise p or add reachable candidates", bad.tolist())
        if not math.isfinite(out.bound) or out.bound < 0:
            out.bound = 0.0
    return out


def _heuristic_with_bound(
    hh: HybridHeuristic, cw: FloatArray, ww: FloatArray, fixed: IntArray, cand: IntArray, p: int,
    c_cand: FloatArray, e: FloatArray, *, integral: bool, rounds: int, deadline: float, progress: Progress | None,
    details: dict[str, Any],
) -> MinSumOutcome:
    """Lagrangian bound with Lagrangian-guided restarts, then VNS if a gap remains, then a final bound pass."""
    t0 = time.perf_counter()
    n, m = cw.shape
    every = 10 if n * m <= 200_000 else 40

    def improve(sel: IntArray) -> float:
        return hh.restart_from(sel, deadline)

    _, d = true_cost(c_cand, e, ww, np.searchsorted(cand, hh.best))
    _say(progress, 30.0, f"Lagrangian bound with restarts (incumbent {hh.best_obj:.6g})")
    lb = lagrangian_bound(cw, ww, fixed, cand, p, hh.best_obj, lam0=ww * d,
                          time_budget=max(0.05, 0.5 * (deadline - t0)), integral=integral, improve=improve,
                          improve_every=every)
    bound, iters = lb.bound, lb.iterations

    def closed() -> bool:
        return hh.best_obj <= bound + 1e-9 * max(1.0, abs(bound))

    if not closed() and rounds > 0:
        _say(progress, 60.0, f"VNS: incumbent {hh.best_obj:.6g}, bound {bound:.6g}")
        hh.vns(rounds, t0 + 0.85 * (deadline - t0), target=bound)
        if not closed():
            lb2 = lagrangian_bound(cw, ww, fixed, cand, p, hh.best_obj, lam0=lb.lam,
                                   time_budget=max(0.02, deadline - time.perf_counter()), integral=integral,
                                   stall=15)
            bound, iters = max(bound, lb2.bound), iters + lb2.iterations
    sol = hh.solution()
    details.update({"heuristic_objective": sol.objective, "local_searches": sol.local_searches,
                    "swaps": sol.moves, "bound_method": "lagrangian", "lagrangian_iterations": iters,
                    "heuristic_s": time.perf_counter() - t0})
    return MinSumOutcome(sol.new_open, sol.objective, min(bound, sol.objective), "feasible", "heuristic", details)
