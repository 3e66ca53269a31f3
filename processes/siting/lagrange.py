r"""Lagrangian lower bound for min-sum location (p-median family), by subgradient optimisation.

Relaxing the assignment constraints :math:`\sum_j x_{ij} = 1` of the classic model with multipliers
:math:`\lambda_i` gives

.. math::

    L(\lambda) = \sum_i \lambda_i + \sum_{j \in F} \rho_j + \min_{S \subseteq N, |S| = p} \sum_{j \in S} \rho_j,
    \qquad \rho_j = \sum_i \min(0, w_i c_{ij} - \lambda_i),

where :math:`F` are the forced-open (existing) columns and :math:`N` the candidates. Every :math:`L(\lambda)`
is a lower bound on the optimum; the subgradient :math:`g_i = 1 - |\{j \text{ open}: w_i c_{ij} < \lambda_i\}|`
drives :math:`\lambda` with Polyak steps :math:`\theta (UB - L) / \|g\|^2` (Beasley 1993).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from processes.siting.result import FloatArray, IntArray

ROW_CHUNK = 2048


@dataclass
class LagrangeBound:
    """Best bound found, its multipliers and the columns the relaxation opened there."""

    bound: float
    lam: FloatArray
    open_new: IntArray
    iterations: int
    upper: float


def _rho(c: FloatArray, w: FloatArray, lam: FloatArray) -> FloatArray:
    m = c.shape[1]
    rho = np.zeros(m)
    for s in range(0, c.shape[0], ROW_CHUNK):
        block = c[s:s + ROW_CHUNK] * w[s:s + ROW_CHUNK, None]
        block -= lam[s:s + ROW_CHUNK, None]
        np.minimum(block, 0.0, out=block)
        rho += block.sum(axis=0)
    return rho


def lagrangian_bound(
    c: FloatArray,
    w: FloatArray,
    fixed: IntArray,
    cand: IntArray,
    p: int,
    upper: float,
    *,
    lam0: FloatArray,
    time_budget: float,
    max_iter: int = 3000,
    integral: bool = False,
    stall: int = 20,
    min_theta: float = 1e-4,
    improve: Callable[[IntArray], float] | None = None,
    improve_every: int = 10,
) -> LagrangeBound:
    """Maximise :math:`L(\\lambda)` by subgradient steps within ``time_budget`` seconds.

    Parameters
    ----------
    upper : float
        Objective of a known solution (the Polyak target; also the early stop: bound reaches it).
    lam0 : ndarray
        Starting multipliers (e.g. ``w_i * d_i`` of the heuristic solution).
    integral : bool
        All weighted costs are integers, so the bound may be rounded up.
    stall : int
        Iterations without improvement before the step factor is halved.
    improve : callable, optional
        Lagrangian heuristic: called every ``improve_every`` iterations with the columns the relaxation opens,
        returns the objective of a solution built from them (e.g. after local search); lowers ``upper``.
    """
    deadline = time.perf_counter() + time_budget
    lam = lam0.astype(np.float64).copy()
    best, best_lam, best_open = -math.inf, lam.copy(), cand[:p].copy()
    theta, since = 2.0, 0
    it = 0
    for it in range(1, max_iter + 1):
        rho = _rho(c, w, lam)
        if p > 0:
            sel = cand[np.argpartition(rho[cand], p - 1)[:p]] if p < cand.size else cand.copy()
        else:
            sel = np.zeros(0, dtype=np.int64)
        val = float(lam.sum() + rho[fixed].sum() + rho[sel].sum())
        if val > best + 1e-12 * max(1.0, abs(val)):
            best, best_lam, best_open, since = val, lam.copy(), sel, 0
        else:
            since += 1
            if since >= stall:
                theta, since = theta / 2.0, 0
        if improve is not None and it % improve_every == 0:
            upper = min(upper, improve(sel))
        rounded = math.ceil(best - 1e-7) if integral else best
        if rounded >= upper - 1e-9 * max(1.0, abs(upper)) or theta < min_theta or time.perf_counter() > deadline:
            break
        cols = np.concatenate([fixed, sel])
        count = np.zeros(c.shape[0])
        for s in range(0, c.shape[0], ROW_CHUNK):
            sub = c[s:s + ROW_CHUNK][:, cols] * w[s:s + ROW_CHUNK, None]
            count[s:s + ROW_CHUNK] = (sub < lam[s:s + ROW_CHUNK, None]).sum(axis=1)
        g = 1.0 - count
        norm = float(g @ g)
        if norm == 0.0:  # the relaxed solution is feasible, hence optimal
            best = max(best, val)
            break
        step = theta * max(upper - val, 1e-9 * max(1.0, abs(upper))) / norm
        lam += step * g
        np.maximum(lam, 0.0, out=lam)
    if integral and math.isfinite(best):
        best = float(math.ceil(best - 1e-7))
    return LagrangeBound(bound=min(best, upper), lam=best_lam, open_new=np.sort(best_open), iterations=it,
                         upper=upper)
