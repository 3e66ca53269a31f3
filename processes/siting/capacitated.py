r"""Capacitated p-median: open ``p`` new sites; each site serves at most its capacity of demand weight.

With :math:`x_{ij}` the share of demand :math:`i` served by site :math:`j` (pairs with finite cost only):

.. math::

    \min \sum_{i,j} w_i c_{ij} x_{ij} \quad \text{s.t.} \quad \sum_j x_{ij} = 1 \;\forall i, \qquad
    \sum_i w_i x_{ij} \le Q_j y_j \;\forall j, \qquad x_{ij} \le y_j \;\forall i, j \in N,

    \sum_{j \in N} y_j = p, \qquad y_j = 1 \;(j \in E), \qquad y \in \{0,1\}.

**Assignment rule (documented choice).** By default demand may be *split* across sites
(:math:`0 \le x \le 1`): a demand point is usually an aggregate (a grid cell, a district) whose people can use
different facilities, and the split model is much easier to prove optimal. ``single_source=True`` makes
:math:`x` binary (each demand point served by one site), which is harder; use it on small instances.
The strong linking rows :math:`x_{ij} \le y_j` tighten the LP bound. This model needs :math:`|I||J|`
assignment variables, so a size guard applies (``max_pairs``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse

from processes.siting.highs import Mip, solve_mip
from processes.siting.metrics import make_result, service_metrics
from processes.siting.result import Progress, SitingInfeasibleError, SitingInputError, SitingResult, Status
from processes.siting.result import say as _say
from processes.siting.validate import check_capacity, check_instance, check_threshold

MAX_PAIRS = 2_000_000


def capacitated_p_median(
    c: npt.ArrayLike,
    w: npt.ArrayLike | None = None,
    p: int = 1,
    *,
    cap: npt.ArrayLike,
    existing: Sequence[int] | npt.ArrayLike | None = None,
    single_source: bool = False,
    T: float | None = None,  # noqa: N803
    time_limit: float = 60.0,
    mip_gap: float = 1e-6,
    progress: Progress | None = None,
    max_pairs: int = MAX_PAIRS,
) -> SitingResult:
    """Open ``p`` new sites minimising weighted cost subject to site capacities (same units as ``w``).

    Parameters
    ----------
    cap : array_like, shape (m,)
        Capacity of every candidate (existing ones included); ``inf`` = unlimited.
    single_source : bool
        Each demand point served by exactly one site (binary assignment) instead of split shares.
    T : float, optional
        Threshold for the reported coverage metrics.
    max_pairs : int
        Size guard on the number of (demand, site) assignment variables.

    Other parameters are those of :func:`processes.siting.p_median` (exact only: HiGHS).

    Returns
    -------
    SitingResult
        ``assignment`` = site with the largest share of each demand point; ``details['flows']`` lists
        ``(demand, site, share)``; ``details['site_load']`` the served weight per open site.
    """
    t0 = time.perf_counter()
    inst = check_instance(c, w, p=p, existing=existing, time_limit=time_limit)
    q = check_capacity(cap, inst.m)
    thr = None if T is None else check_threshold(T)
    dem = np.flatnonzero(inst.w > 0)
    total = float(inst.w[dem].sum())
    best_caps = float(q[inst.existing].sum() + np.sort(q[inst.new])[::-1][: inst.p].sum())
    if best_caps < total - 1e-9:
        raise SitingInfeasibleError(f"capacity too small: existing sites plus the {inst.p} largest candidates hold "
                                    f"{best_caps:g} < total demand {total:g}; raise p or capacities", [])
    sites = np.concatenate([inst.new, inst.existing])
    sub = inst.c[np.ix_(dem, sites)]
    ii, jj = np.nonzero(np.isfinite(sub))
    if ii.size > max_pairs:
        raise SitingInputError(f"instance too large for the capacitated model: {ii.size:,} assignment pairs > "
                               f"{max_pairs:,}; aggregate demand, thin the candidates or mask far pairs with inf")
    reach = np.bincount(ii, minlength=dem.size)
    if (reach == 0).any():
        bad = dem[reach == 0]
        raise SitingInfeasibleError(f"demand {bad[:10].tolist()} reaches no site", bad.tolist())
    ny, nx, nd = inst.new.size, ii.size, dem.size
    is_new = jj < ny
    xcol = ny + np.arange(nx)
    wi = inst.w[dem][ii]
    # rows: [assignment nd] [capacity per site with finite cap] [linking per new pair] [cardinality]
    finite_cap = np.isfinite(q[sites])
    cap_row = np.full(sites.size, -1, dtype=np.int64)
    cap_row[finite_cap] = nd + np.arange(int(finite_cap.sum()))
    n_cap = int(finite_cap.sum())
    link_base = nd + n_cap
    n_link = int(is_new.sum())
    card = link_base + n_link
    with_cap = cap_row[jj] >= 0
    new_cap_sites = np.flatnonzero(finite_cap[:ny])
    rows = np.concatenate([ii, cap_row[jj][with_cap], cap_row[new_cap_sites],
                           link_base + np.arange(n_link), link_base + np.arange(n_link), np.full(ny, card)])
    cols = np.concatenate([xcol, xcol[with_cap], new_cap_sites, xcol[is_new], jj[is_new], np.arange(ny)])
    vals = np.concatenate([np.ones(nx), wi[with_cap], -q[sites][new_cap_sites], np.ones(n_link), -np.ones(n_link),
                           np.ones(ny)])
    a = sparse.csr_matrix((vals, (rows, cols)), shape=(card + 1, ny + nx))
    cap_upper = np.where(np.arange(sites.size) < ny, 0.0, q[sites])[finite_cap]
    mip = Mip(
        col_cost=np.r_[np.zeros(ny), wi * sub[ii, jj]],
        col_lower=np.zeros(ny + nx), col_upper=np.ones(ny + nx),
        integer=np.r_[np.ones(ny, dtype=bool), np.full(nx, single_source)],
        row_lower=np.r_[np.ones(nd), np.full(n_cap, -np.inf), np.full(n_link, -np.inf), float(inst.p)],
        row_upper=np.r_[np.ones(nd), cap_upper, np.zeros(n_link), float(inst.p)],
        start=a.indptr.astype(np.int32), index=a.indices.astype(np.int32), value=a.data.astype(np.float64),
    )
    _say(progress, 5.0, f"capacitated p-median: {mip.num_col} columns, {mip.num_row} rows, {mip.num_nz} nonzeros")
    out = solve_mip(mip, max(0.05, time_limit - (time.perf_counter() - t0)), mip_rel_gap=mip_gap, progress=progress,
                    progress_span=(5.0, 95.0), label="capacitated p-median")
    if out.x is None:
        if out.status == "infeasible":
            raise SitingInfeasibleError("no assignment respects the capacities with p new sites "
                                        "(single-source packing or reachability); raise p or capacities", [])
        raise SitingInputError(f"no feasible solution found within time_limit = {time_limit:g} s; raise it")
    new_open = inst.new[np.flatnonzero(out.x[:ny] > 0.5)]
    share = out.x[ny:]
    keep = share > 1e-9
    flows = [(int(dem[i]), int(sites[j]), float(s)) for i, j, s in zip(ii[keep], jj[keep], share[keep], strict=True)]
    assignment = np.full(inst.n, -1, dtype=np.int64)
    cost = np.full(inst.n, np.inf)
    best_share = np.zeros(inst.n)
    for i, j, s in flows:
        if s > best_share[i]:
            best_share[i], assignment[i], cost[i] = s, j, inst.c[i, j]
    zero = inst.w <= 0
    if zero.any():  # weight-0 demand: nearest open site, for display
        open_all = np.r_[new_open, inst.existing]
        k = np.argmin(inst.c[np.ix_(np.flatnonzero(zero), open_all)], axis=1)
        assignment[zero], cost[zero] = open_all[k], inst.c[np.flatnonzero(zero), open_all[k]]
    load = np.zeros(inst.m)
    for i, j, s in flows:
        load[j] += inst.w[i] * s
    mean_split = float(sum(inst.w[i] * s * inst.c[i, j] for i, j, s in flows) / total)
    status: Status = "optimal" if out.status == "optimal" else ("time_limit" if out.status == "time_limit"
                                                                else "feasible")
    open_all = np.unique(np.r_[new_open, inst.existing])
    details = {"flows": flows, "site_load": {int(j): float(load[j]) for j in open_all},
               "capacity": {int(j): float(q[j]) for j in open_all}, "single_source": single_source,
               "mean_cost_split": mean_split, "mip_nodes": out.nodes,
               "mip_size": {"columns": mip.num_col, "rows": mip.num_row, "nonzeros": mip.num_nz}}
    res = make_result(inst, "capacitated_p_median", new_open, objective=out.objective, bound=out.bound,
                      status=status, solver="highs-mip", started=t0, threshold=thr, details=details,
                      assignment=assignment, assigned_cost=cost, gap_tol=max(mip_gap, 1e-9))
    res.mean_cost = mean_split
    res.details.setdefault("metrics_main_site", service_metrics(inst.w, cost, thr))
    _say(progress, 100.0, f"done: {res.status}, objective {res.objective:.6g}")
    return res
