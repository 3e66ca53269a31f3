r"""Coverage models: LSCP (location set covering) and MCLP (maximal covering location).

With :math:`N_i = \{j \in N : c_{ij} \le T\}` the new candidates covering demand :math:`i` and demand already
covered by an existing site removed (it is counted, not modelled):

**LSCP** (Toregas et al. 1971): :math:`\min \sum_j y_j` s.t. :math:`\sum_{j \in N_i} y_j \ge 1` for every
demand point with positive weight, :math:`y \in \{0,1\}`.

**MCLP** (Church & ReVelle 1974): :math:`\max \sum_i w_i z_i` s.t. :math:`z_i \le \sum_{j \in N_i} y_j`,
:math:`\sum_j y_j = p`, :math:`y \in \{0,1\}`, :math:`0 \le z_i \le 1` (``z`` is integral at the optimum of
any integral ``y``, so it stays continuous).

Both only carry ``y`` and ``z`` variables (no assignment variables), and demand rows with identical coverage
sets are merged (weights summed), which shrinks grid demand a lot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from processes.siting.cover import Groups, greedy_cover, greedy_max_cover, group_rows, mclp_mip, set_cover_mip
from processes.siting.metrics import make_result
from processes.siting.result import Method, Progress, SitingInfeasibleError, SitingInputError, SitingResult, Status
from processes.siting.result import say as _say
from processes.siting.swap import HybridHeuristic
from processes.siting.validate import check_instance, check_threshold

AUTO_EXACT_NONZEROS = 10_000_000
MAX_HEURISTIC_CELLS = 60_000_000


def _uncovered_by_existing(c: npt.NDArray[np.float64], existing: npt.NDArray[np.int64],
                           t: float) -> npt.NDArray[np.bool_]:
    if existing.size == 0:
        return np.ones(c.shape[0], dtype=bool)
    return ~(c[:, existing] <= t).any(axis=1)


def lscp(
    c: npt.ArrayLike,
    T: float,  # noqa: N803 - the usual symbol of a coverage threshold
    w: npt.ArrayLike | None = None,
    *,
    existing: Sequence[int] | npt.ArrayLike | None = None,
    time_limit: float = 60.0,
    progress: Progress | None = None,
) -> SitingResult:
    """Fewest new sites so that every demand point with positive weight is within ``T`` of an open site.

    Parameters
    ----------
    c : array_like, shape (n, m)
        Costs; ``inf`` = unreachable.
    T : float
        Coverage threshold in the units of ``c``.
    w : array_like, optional
        Weights; demand with weight 0 need not be covered.
    existing : sequence of int, optional
        Open sites; the demand they cover is not modelled.
    time_limit : float
        Seconds.

    Returns
    -------
    SitingResult
        ``objective`` = number of new sites, ``bound`` = proven lower bound on that number.

    Raises
    ------
    SitingInfeasibleError
        Some demand has no candidate within ``T``; ``.demand`` lists it.
    """
    t0 = time.perf_counter()
    inst = check_instance(c, w, p=None, existing=existing, time_limit=time_limit)
    t = check_threshold(T)
    need = np.flatnonzero((inst.w > 0) & _uncovered_by_existing(inst.c, inst.existing, t))
    mask = inst.c[np.ix_(need, inst.new)] <= t
    dead = need[~mask.any(axis=1)]
    if dead.size:
        raise SitingInfeasibleError(
            f"no feasible cover: {dead.size} demand points have no candidate within T = {t:g} "
            f"(demand indices {dead[:20].tolist()}{' ...' if dead.size > 20 else ''}); raise T, add candidates "
            "near them, or give them weight 0", dead.tolist())
    _say(progress, 5.0, f"LSCP: {need.size} demand points to cover with {inst.new.size} candidates")
    if need.size == 0:
        return make_result(inst, "lscp", np.zeros(0, dtype=np.int64), objective=0.0, bound=0.0, status="optimal",
                           solver="highs-mip", started=t0, threshold=t, details={"groups": 0})
    g = group_rows(mask, inst.w[need])
    start = greedy_cover(g.a)
    out = set_cover_mip(g.a, max_sites=None, time_limit=max(0.05, time_limit - (time.perf_counter() - t0)),
                        start=start, progress=progress, label="LSCP")
    if out.x is None:
        raise SitingInputError(f"LSCP found no solution within time_limit = {time_limit:g} s; raise the limit")
    new_open = inst.new[np.flatnonzero(out.x > 0.5)]
    status: Status = "optimal" if out.status == "optimal" else "time_limit"
    bound = float(np.ceil(out.bound - 1e-6))
    res = make_result(inst, "lscp", new_open, objective=float(new_open.size), bound=bound, status=status,
                      solver="highs-mip", started=t0, threshold=t,
                      details={"groups": int(g.a.shape[0]), "greedy_sites": int(start.size) if start is not None
                               else None, "mip_nodes": out.nodes})
    _say(progress, 100.0, f"done: {res.objective:.0f} new sites, {res.status}")
    return res


def mclp(
    c: npt.ArrayLike,
    w: npt.ArrayLike | None = None,
    p: int = 1,
    *,
    T: float,  # noqa: N803
    existing: Sequence[int] | npt.ArrayLike | None = None,
    method: Method = "auto",
    time_limit: float = 60.0,
    mip_gap: float = 1e-6,
    seed: int = 0,
    progress: Progress | None = None,
) -> SitingResult:
    """Open ``p`` new sites maximising the demand weight within ``T`` (existing coverage counted).

    Parameters
    ----------
    c, w, p, existing, time_limit, mip_gap, seed, progress
        As in :func:`processes.siting.p_median`.
    T : float
        Coverage threshold.
    method : {'auto', 'exact', 'heuristic'}
        ``exact``: HiGHS on the coverage model; ``heuristic``: greedy + swap + VNS with the LP relaxation as
        the bound; ``auto`` = exact unless the coverage matrix has more than 1e7 nonzeros.

    Returns
    -------
    SitingResult
        ``objective`` = covered weight (existing coverage included), ``bound`` = proven upper bound.
    """
    t0 = time.perf_counter()
    inst = check_instance(c, w, p=p, existing=existing, time_limit=time_limit, method=method)
    t = check_threshold(T)
    free = np.flatnonzero((inst.w > 0) & _uncovered_by_existing(inst.c, inst.existing, t))
    base = float(inst.w.sum() - inst.w[free].sum() - inst.w[inst.w <= 0].sum())
    mask = inst.c[np.ix_(free, inst.new)] <= t
    reach = mask.any(axis=1)
    free, mask = free[reach], mask[reach]
    g = group_rows(mask, inst.w[free])
    nnz = int(g.a.nnz)
    _say(progress, 5.0, f"MCLP: {free.size} coverable demand points in {g.a.shape[0]} groups, {nnz} coverage pairs")
    exact = method == "exact" or (method == "auto" and nnz <= AUTO_EXACT_NONZEROS)
    details: dict[str, object] = {"groups": int(g.a.shape[0]), "coverage_nonzeros": nnz,
                                  "covered_by_existing": base}
    if inst.p == 0 or g.a.shape[0] == 0:
        pos = greedy_max_cover(g.a, g.weight, inst.p) if g.a.shape[0] else np.arange(inst.p)
        covered = base + float(g.weight[np.asarray(g.a[:, pos].sum(axis=1)).reshape(-1) > 0].sum())
        return make_result(inst, "mclp", inst.new[pos], objective=covered, bound=covered, status="optimal",
                           solver="enumeration", started=t0, threshold=t, details=details)
    start = greedy_max_cover(g.a, g.weight, inst.p)
    if not exact or g.a.shape[0] * g.a.shape[1] <= 2_000_000:
        start = _swap_improve(g, inst.p, start, seed, t0 + time_limit * (0.2 if exact else 0.6))
    if exact:
        out = mclp_mip(g.a, g.weight, inst.p, time_limit=max(0.05, time_limit - (time.perf_counter() - t0)),
                       mip_rel_gap=mip_gap, start=start, progress=progress)
        pos = np.flatnonzero(out.x[: g.a.shape[1]] > 0.5) if out.x is not None else start
        value = float(g.weight[np.asarray(g.a[:, pos].sum(axis=1)).reshape(-1) > 0].sum())
        status: Status = "optimal" if out.status == "optimal" else ("time_limit" if out.status == "time_limit"
                                                                    else "feasible")
        bound = base + (out.bound if np.isfinite(out.bound) else float(g.weight.sum()))
        details.update({"mip_nodes": out.nodes, "bound_method": "highs-mip"})
        solver = "highs-mip"
    else:
        lp = mclp_mip(g.a, g.weight, inst.p, time_limit=max(0.05, time_limit - (time.perf_counter() - t0)),
                      mip_rel_gap=mip_gap, relax=True)
        pos = start
        value = float(g.weight[np.asarray(g.a[:, pos].sum(axis=1)).reshape(-1) > 0].sum())
        bound = base + (lp.objective if lp.status == "optimal" else float(g.weight.sum()))
        status, solver = "feasible", "heuristic"
        details["bound_method"] = "lp-relaxation"
    res = make_result(inst, "mclp", inst.new[pos], objective=base + value, bound=max(bound, base + value),
                      status=status, solver=solver, started=t0, threshold=t, details=details,
                      gap_tol=max(mip_gap, 1e-9))
    _say(progress, 100.0, f"done: covered {res.coverage_share:.1%}, {res.status}, gap {100 * res.gap:.3f} %")
    return res


def _swap_improve(g: Groups, p: int, start: npt.NDArray[np.int64], seed: int,
                  deadline: float) -> npt.NDArray[np.int64]:
    """Swap local search + short VNS on the 0/1 'uncovered' cost of the grouped coverage matrix."""
    rows, cols = g.a.shape
    if rows * cols > MAX_HEURISTIC_CELLS:
        raise SitingInputError(f"MCLP heuristic needs a dense {rows} x {cols} matrix (> {MAX_HEURISTIC_CELLS:,} "
                               "cells); aggregate demand or thin the candidates")
    if p >= cols:
        return np.arange(cols, dtype=np.int64)
    cost = 1.0 - g.a.toarray().astype(np.float64)
    hh = HybridHeuristic(cost, g.weight, np.zeros(0, dtype=np.int64), np.arange(cols, dtype=np.int64), p, seed=seed)
    hh.construct(deadline, start)
    hh.vns(30 if rows * cols <= 500_000 else 0, deadline)
    return hh.solution().new_open
