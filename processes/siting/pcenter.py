r"""Vertex p-center: open ``p`` new sites minimising the largest cost from a demand point to its nearest open site.

.. math::

    \min_{S \subseteq N, |S| = p} \; \max_{i: w_i > 0} \; \min_{j \in E \cup S} c_{ij}

The optimum is one of the distinct costs :math:`r_1 < r_2 < \dots`. Radius :math:`r` is achievable iff the
demand not already within :math:`r` of an existing site can be covered by at most ``p`` new sites:

.. math::

    \exists y \in \{0,1\}^N: \sum_{j: c_{ij} \le r} y_j \ge 1 \;\; \forall i, \qquad \sum_j y_j \le p,

a set-cover feasibility problem (Minieka 1970; Daskin 2000). We bisect over the sorted radii between the
trivial lower bound :math:`\max_i \min_j c_{ij}` and a greedy upper bound; each probe is answered by a
greedy cover (feasible), an obviously uncoverable point (infeasible) or a small HiGHS set-cover MIP. A probe
cut short by the time limit ends the search with status ``time_limit``: the best radius found is the objective
and the smallest radius not proven infeasible is the bound.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse

from processes.siting.cover import greedy_cover, group_rows, set_cover_mip
from processes.siting.metrics import make_result
from processes.siting.result import IntArray, Progress, SitingInfeasibleError, SitingInputError, SitingResult, Status
from processes.siting.result import say as _say
from processes.siting.validate import Instance, check_instance


def _probe(inst: Instance, need: IntArray, e: npt.NDArray[np.float64], r: float, p: int,
           time_limit: float) -> tuple[str, IntArray | None, int]:
    """Is radius ``r`` achievable with ``p`` new sites? ('yes'|'no'|'unknown', new columns, MIP nodes)."""
    rows = need[e[need] > r]
    if rows.size == 0:
        return "yes", np.zeros(0, dtype=np.int64), 0
    mask = inst.c[np.ix_(rows, inst.new)] <= r
    if not mask.any(axis=1).all():
        return "no", None, 0
    g = group_rows(mask, np.ones(rows.size))
    a = sparse.csr_matrix(g.a)
    greedy = greedy_cover(a, limit=p)
    if greedy is not None:
        return "yes", inst.new[greedy], 0
    out = set_cover_mip(a, max_sites=p, time_limit=time_limit, mip_rel_gap=1.0, label="p-center probe")
    if out.status == "infeasible":
        return "no", None, out.nodes
    if out.x is not None:
        return "yes", inst.new[np.flatnonzero(out.x > 0.5)], out.nodes
    return "unknown", None, out.nodes


def p_center(
    c: npt.ArrayLike,
    w: npt.ArrayLike | None = None,
    p: int = 1,
    *,
    existing: Sequence[int] | npt.ArrayLike | None = None,
    time_limit: float = 60.0,
    progress: Progress | None = None,
) -> SitingResult:
    """Open ``p`` new sites minimising the worst cost (demand with weight 0 is ignored).

    Parameters
    ----------
    c : array_like, shape (n, m)
        Costs; ``inf`` = unreachable.
    w : array_like, optional
        Weights; only their positivity matters for the objective (they weight the reported metrics).
    p : int
        New sites to open.
    existing : sequence of int, optional
        Open sites, kept and counted.
    time_limit : float
        Seconds.

    Returns
    -------
    SitingResult
        ``objective`` = worst assigned cost, ``bound`` = proven lower bound; ``details['probes']`` lists the
        radii tried and their answers.

    Examples
    --------
    >>> import numpy as np
    >>> r = p_center(np.array([[0, 5, 9], [4, 0, 3], [9, 4, 0]]), p=1)
    >>> int(r.new_sites[0]), r.objective
    (1, 5.0)
    """
    t0 = time.perf_counter()
    inst = check_instance(c, w, p=p, existing=existing, time_limit=time_limit)
    need = np.flatnonzero(inst.w > 0)
    e = inst.c[:, inst.existing].min(axis=1) if inst.existing.size else np.full(inst.n, np.inf)
    best_single = np.minimum(e, inst.c[:, inst.new].min(axis=1) if inst.new.size else np.inf)
    dead = need[~np.isfinite(best_single[need])]
    if dead.size:
        raise SitingInfeasibleError(f"{dead.size} demand points reach no site (first: {dead[:10].tolist()}); "
                                    "add reachable candidates or give them weight 0", dead.tolist())
    lb0 = float(best_single[need].max())
    sub = inst.c[need][:, inst.new]
    vals = np.unique(np.concatenate([sub[np.isfinite(sub)], e[need][np.isfinite(e[need])]]))
    radii = vals[vals >= lb0 - 1e-12]
    if radii.size == 0:
        radii = np.asarray([lb0])
    _say(progress, 5.0, f"p-center: bisection over {radii.size} candidate radii from {lb0:g}")
    deadline = t0 + time_limit
    probes: list[tuple[float, str]] = []
    lo, hi = 0, radii.size - 1
    best_sites: IntArray | None = None
    status, sites, nodes = _probe(inst, need, e, float(radii[hi]), inst.p, max(0.05, deadline - time.perf_counter()))
    probes.append((float(radii[hi]), status))
    if status == "no":
        raise SitingInfeasibleError(f"no choice of p = {inst.p} new sites reaches all demand; raise p or add "
                                    "candidates", [])
    if status == "unknown":
        raise SitingInputError(f"p-center found no feasible radius within time_limit = {time_limit:g} s; "
                               "raise the limit")
    best_sites = sites
    total_nodes = nodes
    timed_out = False
    while lo < hi:
        mid = (lo + hi) // 2
        left = deadline - time.perf_counter()
        if left <= 0.02:
            timed_out = True
            break
        status, sites, nodes = _probe(inst, need, e, float(radii[mid]), inst.p, left)
        total_nodes += nodes
        probes.append((float(radii[mid]), status))
        if status == "yes":
            hi, best_sites = mid, sites
        elif status == "no":
            lo = mid + 1
        else:
            timed_out = True
            break
        _say(progress, 5.0 + 90.0 * (1.0 - (hi - lo) / max(1, radii.size)),
             f"p-center: radius in [{radii[lo]:g}, {radii[hi]:g}]")
    assert best_sites is not None
    new_open = _pad(inst, best_sites)
    res_status: Status = "time_limit" if timed_out else "optimal"
    objective = float(np.minimum(e, inst.c[:, new_open].min(axis=1) if new_open.size else np.inf)[need].max())
    res = make_result(inst, "p_center", new_open, objective=objective, bound=float(radii[lo]), status=res_status,
                      solver="highs-mip", started=t0, threshold=objective,
                      details={"probes": probes, "mip_nodes": total_nodes, "radii": int(radii.size)})
    _say(progress, 100.0, f"done: worst cost {objective:g}, {res.status}")
    return res


def _pad(inst: Instance, sites: IntArray) -> IntArray:
    """Complete a cover of fewer than ``p`` sites with the candidates that most reduce total cost (greedy)."""
    chosen = list(np.unique(sites).tolist())
    if len(chosen) >= inst.p:
        return np.asarray(chosen[: inst.p], dtype=np.int64)
    open_cols = np.concatenate([inst.existing, np.asarray(chosen, dtype=np.int64)])
    d = inst.c[:, open_cols].min(axis=1) if open_cols.size else np.full(inst.n, np.inf)
    d = np.where(np.isfinite(d), d, 1e300)
    avail = np.setdiff1d(inst.new, chosen)
    while len(chosen) < inst.p and avail.size:
        saving = (inst.w[:, None] * np.maximum(0.0, d[:, None] - inst.c[:, avail])).sum(axis=0)
        k = int(np.argmax(saving))
        j = int(avail[k])
        chosen.append(j)
        d = np.minimum(d, inst.c[:, j])
        avail = np.delete(avail, k)
    return np.asarray(sorted(chosen), dtype=np.int64)

