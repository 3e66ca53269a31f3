r"""p-median and maximise-attendance models.

**p-median** (ReVelle & Swain 1970): open ``p`` new sites (existing ones stay open) minimising the total
weighted cost of serving every demand point from its nearest open site,

.. math::

    \min \sum_i w_i \min_{j \in E \cup S} c_{ij} \quad \text{s.t.} \quad S \subseteq N, |S| = p .

Exact: the radius formulation of :mod:`processes.siting.radius` with HiGHS. Heuristic: greedy + fast swap +
VNS (:mod:`processes.siting.swap`) with a Lagrangian lower bound (:mod:`processes.siting.lagrange`).

**Maximise attendance** (as ArcGIS Location-Allocation *MaximizeAttendance*): the share of demand that uses a
facility decays with the cost to its nearest open site, :math:`f(c) \in [0, 1]`, and is 0 beyond the cutoff
``T``. Maximising :math:`\sum_i w_i f(c_{i,\text{nearest}})` equals minimising
:math:`\sum_i w_i (1 - f(c_{ij}))` over the nearest open site (``f`` is non-increasing), a min-sum problem on
the transformed matrix, solved by the same exact and heuristic machinery. Decays:

- ``linear``: :math:`f(c) = 1 - c / T`;
- ``exponential``: :math:`f(c) = e^{-\beta c}` (``beta`` required);
- ``step``: :math:`f(c) = 1` (this is MCLP on the same data).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from processes.siting.metrics import make_result, nearest
from processes.siting.minsum import MAX_EXACT_NONZEROS, solve_minsum
from processes.siting.result import Method, Progress, SitingInputError, SitingResult
from processes.siting.result import say as _say
from processes.siting.validate import check_instance, check_threshold

Decay = Literal["linear", "exponential", "step"]


def p_median(
    c: npt.ArrayLike,
    w: npt.ArrayLike | None = None,
    p: int = 1,
    *,
    existing: Sequence[int] | npt.ArrayLike | None = None,
    T: float | None = None,  # noqa: N803 - the usual symbol of a coverage threshold
    method: Method = "auto",
    time_limit: float = 60.0,
    mip_gap: float = 1e-6,
    seed: int = 0,
    progress: Progress | None = None,
    max_exact_nonzeros: int = MAX_EXACT_NONZEROS,
) -> SitingResult:
    """Choose ``p`` new sites minimising total weighted cost (existing sites kept open and counted).

    Parameters
    ----------
    c : array_like, shape (n, m)
        Cost (minutes, metres) from demand ``i`` to candidate ``j``; ``inf`` = unreachable.
    w : array_like, shape (n,), optional
        Demand weights (default 1). Zero-weight rows are reported but do not affect the objective.
    p : int
        New sites to open.
    existing : sequence of int, optional
        Candidate indices that are already open (forced open, not counted in ``p``).
    T : float, optional
        Threshold for the reported coverage metrics only.
    method : {'auto', 'exact', 'heuristic'}
        ``auto`` runs the exact radius MIP when ``n * m <= 2.5e6``, else the heuristic with a Lagrangian bound.
    time_limit : float
        Seconds for the whole solve; at the limit the best solution is returned with status ``time_limit``.
    mip_gap : float
        Relative gap at which the MIP stops as optimal.
    seed : int
        Seed of the metaheuristic.
    progress : callable, optional
        ``progress(percent, message)``.
    max_exact_nonzeros : int
        Size guard of ``method='exact'``.

    Returns
    -------
    SitingResult
        ``objective`` = total weighted cost, ``bound`` = proven lower bound.

    Examples
    --------
    >>> import numpy as np
    >>> r = p_median(np.array([[0, 5, 9], [4, 0, 3], [9, 4, 0]]), p=1)
    >>> int(r.new_sites[0]), r.objective, r.status
    (1, 9.0, 'optimal')
    """
    t0 = time.perf_counter()
    inst = check_instance(c, w, p=p, existing=existing, time_limit=time_limit, method=method)
    thr = None if T is None else check_threshold(T)
    _say(progress, 1.0, f"p-median: {inst.n} demand x {inst.m} candidates, p = {inst.p}")
    out = solve_minsum(inst.c, inst.w, inst.existing, inst.new, inst.p, method=method, time_limit=time_limit,
                       mip_gap=mip_gap, seed=seed, progress=progress, max_exact_nonzeros=max_exact_nonzeros)
    res = make_result(inst, "p_median", out.new_open, objective=out.objective, bound=out.bound,
                      status=out.status, solver=out.solver, started=t0, threshold=thr, details=out.details,  # type: ignore[arg-type]
                      gap_tol=max(mip_gap, 1e-9))
    _say(progress, 100.0, f"done: {res.status}, objective {res.objective:.6g}, gap {100 * res.gap:.3f} %")
    return res


def attendance_factor(c: npt.ArrayLike, T: float, decay: Decay = "linear",  # noqa: N803
                      beta: float | None = None) -> npt.NDArray[np.float64]:
    """Share of demand that attends a site at cost ``c`` (0 beyond ``T``)."""
    cc = np.asarray(c, dtype=np.float64)
    inside = cc <= T
    if decay == "linear":
        f = 1.0 - cc / T if T > 0 else np.ones_like(cc)
    elif decay == "exponential":
        if beta is None or not np.isfinite(beta) or beta < 0:
            raise SitingInputError("decay='exponential' needs beta >= 0 (per cost unit), e.g. beta=0.1")
        f = np.exp(-beta * np.where(inside, cc, 0.0))
    elif decay == "step":
        f = np.ones_like(cc)
    else:
        raise SitingInputError(f"decay must be 'linear', 'exponential' or 'step', got {decay!r}")
    return np.where(inside, np.clip(f, 0.0, 1.0), 0.0)


def max_attendance(
    c: npt.ArrayLike,
    w: npt.ArrayLike | None = None,
    p: int = 1,
    *,
    T: float,  # noqa: N803
    decay: Decay = "linear",
    beta: float | None = None,
    existing: Sequence[int] | npt.ArrayLike | None = None,
    method: Method = "auto",
    time_limit: float = 60.0,
    mip_gap: float = 1e-6,
    seed: int = 0,
    progress: Progress | None = None,
    max_exact_nonzeros: int = MAX_EXACT_NONZEROS,
) -> SitingResult:
    """Choose ``p`` new sites maximising expected attendance ``sum_i w_i f(c_i,nearest)``.

    Parameters
    ----------
    T : float
        Cutoff: demand farther than ``T`` from every open site does not attend.
    decay : {'linear', 'exponential', 'step'}
        Decay of attendance with cost (see module docstring).
    beta : float, optional
        Rate of the exponential decay.

    Other parameters are those of :func:`p_median`.

    Returns
    -------
    SitingResult
        ``objective`` = expected attendance (maximised), ``bound`` = proven upper bound;
        ``details['attendance_by_site']`` maps each open site to its expected attendance.
    """
    t0 = time.perf_counter()
    inst = check_instance(c, w, p=p, existing=existing, time_limit=time_limit, method=method)
    thr = check_threshold(T)
    if thr == 0 and decay == "linear":
        raise SitingInputError("T must be > 0 for a linear decay")
    fac = attendance_factor(inst.c, thr, decay, beta)
    _say(progress, 1.0, f"max attendance: {inst.n} demand x {inst.m} candidates, p = {inst.p}, {decay} decay")
    out = solve_minsum(1.0 - fac, inst.w, inst.existing, inst.new, inst.p, method=method, time_limit=time_limit,
                       mip_gap=mip_gap, seed=seed, progress=progress, max_exact_nonzeros=max_exact_nonzeros)
    total = float(inst.w.sum())
    open_all = np.unique(np.concatenate([out.new_open, inst.existing]))
    assignment, cost = nearest(inst.c, open_all)
    att = inst.w * attendance_factor(cost, thr, decay, beta)
    ok = assignment >= 0
    by_site = np.bincount(assignment[ok], weights=att[ok], minlength=inst.m)
    details = dict(out.details)
    details["attendance_by_site"] = {int(j): float(by_site[j]) for j in open_all}
    details["decay"] = {"kind": decay, "T": thr, "beta": beta}
    if inst.existing.size:
        details["baseline_attendance"] = float((inst.w * fac[:, inst.existing].max(axis=1)).sum())
    res = make_result(inst, "max_attendance", out.new_open, objective=total - out.objective,
                      bound=total - out.bound, status=out.status, solver=out.solver, started=t0,  # type: ignore[arg-type]
                      threshold=thr, details=details, assignment=assignment, assigned_cost=cost,
                      gap_tol=max(mip_gap, 1e-9))
    _say(progress, 100.0, f"done: {res.status}, attendance {res.objective:.6g}, gap {100 * res.gap:.3f} %")
    return res
