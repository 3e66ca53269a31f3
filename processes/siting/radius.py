r"""Exact min-sum location by the radius ("cumulative") formulation, solved with HiGHS.

For demand :math:`i` let :math:`D_i^1 < \dots < D_i^{K_i}` be the distinct costs to new candidates that are below
:math:`e_i`, the cost to its nearest existing (forced-open) site (:math:`e_i = \infty` without one), and
:math:`D_i^{K_i+1} := e_i`. With :math:`z_i^k = 1` meaning "no open site within :math:`D_i^k`"
(Elloumi 2010; García, Labbé & Marín 2011):

.. math::

    \min \sum_i w_i \Big( D_i^1 + \sum_{k=1}^{L_i} (D_i^{k+1} - D_i^k)\, z_i^k \Big)

    z_i^1 + \sum_{j: c_{ij} = D_i^1} y_j \ge 1, \qquad
    z_i^k - z_i^{k-1} + \sum_{j: c_{ij} = D_i^k} y_j \ge 0 \quad (2 \le k \le L_i),

    \sum_{j \in N} y_j = p, \qquad y \in \{0, 1\}, \qquad z \ge 0.

The chained rows carry each :math:`y_j` once per demand point, so the matrix has about
:math:`\sum_i (\text{candidates within the last radius} + 2 L_i)` nonzeros instead of the dense model's
:math:`|I||J|` binaries and :math:`2|I||J|` nonzeros; ties between distances shrink it further.

**Truncation.** :math:`L_i` starts just past the cost at which the heuristic serves :math:`i`; costs beyond
:math:`D_i^{L_i+1}` are then *capped*, so the truncated model is a relaxation and its dual bound is a valid
lower bound. If the truncated optimum serves every demand point within its cap it is optimal for the full
problem; otherwise the radii of the violated points are enlarged and the model re-solved (row and column
generation on radii, as in García et al.). Without existing sites the last level needs no row (some candidate
within :math:`D_i^{K_i}` is always open).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processes.siting.highs import Mip, csr_from_coo, solve_mip
from processes.siting.result import FloatArray, IntArray, Progress


@dataclass
class Levels:
    """Per-demand distinct cost levels of the candidate columns (flattened, row offsets in ``off``)."""

    order: npt.NDArray[np.int64]    # (n, mc) candidate positions sorted by cost
    lvl: npt.NDArray[np.int64]      # (n, mc) level (1-based) of each sorted position; 0 when not relevant
    values: FloatArray              # flat level values D_i^k
    off: npt.NDArray[np.int64]      # (n + 1,) offsets into values
    k: npt.NDArray[np.int64]        # K_i
    kmax: npt.NDArray[np.int64]     # levels that may carry a row (K_i, or K_i - 1 without an existing site)
    e: FloatArray                   # cost to the nearest existing site (inf if none)

    def value(self, i: npt.NDArray[np.int64], k: npt.NDArray[np.int64]) -> FloatArray:
        """D_i^k with D_i^{K_i+1} = e_i (vectorised over pairs)."""
        inside = k <= self.k[i]
        out = np.where(inside, 0.0, self.e[i])
        idx = self.off[i] + np.minimum(k, np.maximum(self.k[i], 1)) - 1
        out[inside] = self.values[idx[inside]]
        return out

    def level_of(self, i: npt.NDArray[np.int64], cost: FloatArray) -> npt.NDArray[np.int64]:
        """Number of levels of ``i`` with value <= cost (vectorised)."""
        res = np.zeros(i.size, dtype=np.int64)
        for t, (ii, cc) in enumerate(zip(i, cost, strict=True)):
            res[t] = np.searchsorted(self.values[self.off[ii]:self.off[ii + 1]], cc + 1e-9, side="right")
        return res


def build_levels(c: FloatArray, fixed: IntArray, cand: IntArray) -> Levels:
    """Sort each row's candidate costs and number their distinct values below the nearest existing site."""
    n = c.shape[0]
    e = c[:, fixed].min(axis=1) if fixed.size else np.full(n, np.inf)
    sub = c[:, cand]
    order = np.argsort(sub, axis=1, kind="stable")
    s = np.take_along_axis(sub, order, axis=1)
    del sub
    rel = s < e[:, None]
    start = np.empty_like(rel)
    start[:, 0] = True
    np.not_equal(s[:, 1:], s[:, :-1], out=start[:, 1:])
    start &= rel
    lvl = np.cumsum(start, axis=1)
    lvl[~rel] = 0
    k = start.sum(axis=1).astype(np.int64)
    values = s[start]
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(k, out=off[1:])
    kmax = np.where(np.isfinite(e), k, np.maximum(k - 1, 0))
    return Levels(order=order, lvl=lvl.astype(np.int64), values=values, off=off, k=k, kmax=kmax, e=e)


def model_size(lv: Levels, cap: npt.NDArray[np.int64]) -> tuple[int, int, int]:
    """(columns, rows, nonzeros) of the radius model truncated at ``cap`` levels per demand point."""
    ny = lv.order.shape[1]
    y_nz = int(((lv.lvl > 0) & (lv.lvl <= cap[:, None])).sum())
    nz = int(cap.sum())
    return ny + nz, nz + 1, y_nz + 2 * nz + ny


def _build(lv: Levels, w: FloatArray, cap: npt.NDArray[np.int64], p: int) -> tuple[Mip, npt.NDArray[np.int64]]:
    n, ny = lv.order.shape
    zoff = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(cap, out=zoff[1:])
    nz = int(zoff[-1])
    # y entries: sorted position (i, t) with 1 <= lvl <= cap_i goes to row zoff_i + lvl - 1
    mask = (lv.lvl > 0) & (lv.lvl <= cap[:, None])
    ii, tt = np.nonzero(mask)
    y_rows = zoff[ii] + lv.lvl[ii, tt] - 1
    y_cols = lv.order[ii, tt]
    # z entries
    zi = np.repeat(np.arange(n), cap)
    zk = np.arange(nz) - zoff[zi] + 1
    zcol = ny + np.arange(nz)
    chain = zk < cap[zi]
    rows = np.concatenate([y_rows, np.arange(nz), np.arange(nz)[chain] + 1, np.full(ny, nz)])
    cols = np.concatenate([y_cols, zcol, zcol[chain], np.arange(ny)])
    vals = np.concatenate([np.ones(y_rows.size), np.ones(nz), -np.ones(int(chain.sum())), np.ones(ny)])
    start, index, value = csr_from_coo(rows, cols, vals, nz + 1)
    row_lower = np.where(zk == 1, 1.0, 0.0)
    cost_z = w[zi] * (lv.value(zi, zk + 1) - lv.value(zi, zk))
    base = lv.e.copy()
    has = lv.k >= 1
    base[has] = lv.values[lv.off[:-1][has]]
    mip = Mip(
        col_cost=np.concatenate([np.zeros(ny), cost_z]),
        col_lower=np.zeros(ny + nz),
        col_upper=np.concatenate([np.ones(ny), np.full(nz, np.inf)]),
        integer=np.concatenate([np.ones(ny, dtype=bool), np.zeros(nz, dtype=bool)]),
        row_lower=np.concatenate([row_lower, [float(p)]]),
        row_upper=np.concatenate([np.full(nz, np.inf), [float(p)]]),
        start=start, index=index, value=value, offset=float(w @ base),
    )
    return mip, zoff


def _start_vector(lv: Levels, c_cand: FloatArray, open_pos: IntArray, cap: npt.NDArray[np.int64],
                  zoff: npt.NDArray[np.int64]) -> FloatArray:
    n, ny = lv.order.shape
    y = np.zeros(ny)
    y[open_pos] = 1.0
    near = c_cand[:, open_pos].min(axis=1) if open_pos.size else np.full(n, np.inf)
    zi = np.repeat(np.arange(n), cap)
    zk = np.arange(int(zoff[-1])) - zoff[zi] + 1
    z = (near[zi] > lv.value(zi, zk) + 1e-12).astype(np.float64)
    return np.concatenate([y, z])


@dataclass
class RadiusOutcome:
    """Best new candidate positions (into ``cand``), value, proven bound and status of the radius model."""

    open_pos: IntArray
    objective: float
    bound: float
    status: str
    rounds: int
    columns: int
    rows: int
    nonzeros: int
    nodes: int


def true_cost(c_cand: FloatArray, e: FloatArray, w: FloatArray, open_pos: IntArray) -> tuple[float, FloatArray]:
    """Objective and per-demand cost of opening ``open_pos`` (positions into the candidate columns)."""
    d = np.minimum(e, c_cand[:, open_pos].min(axis=1)) if open_pos.size else e.copy()
    return float(w @ d), d


def solve_radius(
    c: FloatArray,
    w: FloatArray,
    fixed: IntArray,
    cand: IntArray,
    p: int,
    *,
    start_pos: IntArray,
    time_limit: float,
    integral: bool,
    margin: int = 4,
    lower: float = -math.inf,
    mip_rel_gap: float = 1e-6,
    progress: Progress | None = None,
    span: tuple[float, float] = (30.0, 95.0),
    levels: Levels | None = None,
) -> RadiusOutcome:
    """Solve the radius model with truncation rounds until proven optimal or out of time.

    Parameters
    ----------
    start_pos : ndarray of int
        A feasible solution (positions into ``cand``), typically from the heuristic; it sets the initial radii
        and is the first incumbent.
    integral : bool
        Weighted costs are integers (the bound may be rounded up).
    margin : int
        Extra levels kept beyond the heuristic's cost for each demand point.
    lower : float
        A bound already proven elsewhere (e.g. Lagrangian); the reported bound is never below it.
    """
    t0 = time.perf_counter()
    lv = levels if levels is not None else build_levels(c, fixed, cand)
    c_cand = c[:, cand]
    best_pos = np.sort(np.asarray(start_pos, dtype=np.int64))
    best_obj, d = true_cost(c_cand, lv.e, w, best_pos)
    rows_idx = np.arange(c.shape[0])
    cap = np.minimum(lv.kmax, lv.level_of(rows_idx, d) - 1 + margin)
    cap = np.maximum(cap, np.minimum(lv.kmax, 1))
    bound, status, rounds, nodes = lower, "time_limit", 0, 0
    size = (0, 0, 0)
    cap = _grow_with_lp(lv, w, cap, p, margin, t0 + 0.3 * time_limit)
    while True:
        rounds += 1
        remaining = time_limit - (time.perf_counter() - t0)
        if remaining <= 0.01:
            status = "time_limit"
            break
        mip, zoff = _build(lv, w, cap, p)
        size = (mip.num_col, mip.num_row, mip.num_nz)
        x0 = _start_vector(lv, c_cand, best_pos, cap, zoff)
        out = solve_mip(mip, remaining, mip_rel_gap=mip_rel_gap, start=x0, progress=progress, progress_span=span,
                        label=f"radius model round {rounds}")
        nodes += out.nodes
        if out.x is None:
            status = "time_limit" if out.status == "time_limit" else "error"
            bound = max(bound, out.bound) if math.isfinite(out.bound) else bound
            break
        pos = np.flatnonzero(out.x[: lv.order.shape[1]] > 0.5).astype(np.int64)
        obj, d = true_cost(c_cand, lv.e, w, pos)
        if obj < best_obj - 1e-9 * max(1.0, abs(best_obj)):
            best_obj, best_pos = obj, pos
        rb = out.bound
        if integral and math.isfinite(rb):
            rb = math.ceil(rb - 1e-6)
        bound = max(bound, rb)
        capped = lv.value(rows_idx, cap + 1)
        viol = np.flatnonzero(d > capped + 1e-9)
        if out.status == "optimal" and (viol.size == 0 or best_obj <= bound + 1e-9 * max(1.0, abs(bound))):
            status = "optimal"
            break
        if out.status != "optimal":
            status = "time_limit"
            break
        new_cap = np.minimum(lv.kmax[viol], lv.level_of(viol, d[viol]) - 1 + margin)
        cap[viol] = np.maximum(cap[viol] + 1, new_cap)
        cap = np.minimum(cap, lv.kmax)
    bound = min(bound, best_obj)
    return RadiusOutcome(open_pos=best_pos, objective=best_obj, bound=bound, status=status, rounds=rounds,
                         columns=size[0], rows=size[1], nonzeros=size[2], nodes=nodes)


def _grow_with_lp(lv: Levels, w: FloatArray, cap: npt.NDArray[np.int64], p: int, margin: int,
                  deadline: float, max_rounds: int = 30) -> npt.NDArray[np.int64]:
    """Enlarge radii until the truncated LP relaxation no longer uses any capped cost (cheap LP rounds).

    A demand point whose last variable :math:`z_i^{L_i}` is positive in the LP optimum is partly served beyond
    its cap; its radius grows by ``margin`` levels. At the fixed point the truncated LP equals the full LP.
    """
    for _ in range(max_rounds):
        remaining = deadline - time.perf_counter()
        if remaining <= 0.01:
            break
        mip, zoff = _build(lv, w, cap, p)
        out = solve_mip(mip, remaining, relax=True, label="radius LP")
        if out.x is None or out.status != "optimal":
            break
        ny = lv.order.shape[1]
        has = cap > 0
        last = np.zeros(cap.size)
        last[has] = out.x[ny + zoff[1:][has] - 1]
        viol = np.flatnonzero((last > 1e-7) & (cap < lv.kmax))
        if viol.size == 0:
            break
        cap[viol] = np.minimum(lv.kmax[viol], cap[viol] + margin)
    return cap
