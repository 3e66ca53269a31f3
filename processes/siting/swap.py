"""Greedy construction + fast swap (vertex substitution) local search + a light VNS for min-sum location.

The min-sum problem: choose ``p`` columns of ``cand`` (columns in ``fixed`` are always open) minimising
``sum_i w_i min_{j open} C_ij``. p-median, maximise-attendance (on a transformed matrix) and MCLP (on a 0/1
matrix) are all of this form.

The swap evaluation follows Resende & Werneck (2004), "A hybrid heuristic for the p-median problem": with
``d1, d2`` the costs of the nearest and second-nearest open sites of each demand point and ``phi1`` its nearest,

- ``gain[j]  = sum_i w_i max(0, d1_i - C_ij)``                        (saving of opening ``j``),
- ``loss[r]  = sum_{i: phi1_i = r} w_i (d2_i - d1_i)``                (cost of closing ``r``),
- ``extra[j, r] = sum_{i: phi1_i = r} w_i max(0, d2_i - max(C_ij, d1_i))``,

and the saving of swapping ``r`` out and ``j`` in is ``gain[j] - loss[r] + extra[j, r]``. After a swap only the
demand points whose two nearest sites change are re-evaluated (their old contributions are subtracted, the new
ones added), which makes one move ``O(|affected| m)`` instead of ``O(n m)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from processes.siting.result import FloatArray, IntArray

ROW_CHUNK = 4096


@dataclass
class SwapSolution:
    """Best new columns found and their objective."""

    new_open: IntArray
    objective: float
    local_searches: int
    moves: int


class SwapSearch:
    """Incremental swap-neighbourhood state over a dense, finite cost matrix.

    Parameters
    ----------
    c : ndarray, shape (n, m)
        Finite non-negative costs (callers map unreachable pairs to a penalty).
    w : ndarray, shape (n,)
        Positive weights.
    fixed : ndarray of int
        Always-open columns.
    cand : ndarray of int
        Columns that may be opened.
    p : int
        Number of columns of ``cand`` to open.
    """

    def __init__(self, c: FloatArray, w: FloatArray, fixed: IntArray, cand: IntArray, p: int) -> None:
        self.c, self.w, self.fixed, self.cand, self.p = c, w, fixed, cand, p
        self.n, self.m = c.shape
        self.big = 2.0 * float(c.max(initial=0.0)) + 1.0
        self.is_cand = np.zeros(self.m, dtype=bool)
        self.is_cand[cand] = True
        self.moves = 0
        # state (set by reset)
        self.slots = np.zeros(p, dtype=np.int64)
        self.slot_of = np.full(self.m, -1, dtype=np.int64)
        self.d1 = np.zeros(self.n)
        self.d2 = np.zeros(self.n)
        self.phi1 = np.zeros(self.n, dtype=np.int64)
        self.phi2 = np.zeros(self.n, dtype=np.int64)
        self.gain = np.zeros(self.m)
        self.loss = np.zeros(p)
        self.extra = np.zeros((self.m, p))

    # ----- construction -------------------------------------------------------------------------------------
    def greedy(self) -> IntArray:
        """Greedy add: open, one at a time, the candidate with the largest saving (incremental gains)."""
        d1 = np.full(self.n, self.big)
        if self.fixed.size:
            d1 = np.minimum(d1, self.c[:, self.fixed].min(axis=1))
        gain = self._gain_rows(np.arange(self.n), d1)
        opened: list[int] = []
        closed = self.is_cand.copy()
        for _ in range(self.p):
            masked = np.where(closed, gain, -np.inf)
            j = int(np.argmax(masked))
            opened.append(j)
            closed[j] = False
            col = self.c[:, j]
            aff = np.flatnonzero(col < d1)
            if aff.size:
                gain -= self._gain_rows(aff, d1[aff])
                d1[aff] = col[aff]
                gain += self._gain_rows(aff, d1[aff])
        return np.asarray(opened, dtype=np.int64)

    def _gain_rows(self, rows: IntArray, d1: FloatArray) -> FloatArray:
        out = np.zeros(self.m)
        for s in range(0, rows.size, ROW_CHUNK):
            r = rows[s:s + ROW_CHUNK]
            diff = d1[s:s + ROW_CHUNK, None] - self.c[r]
            np.maximum(diff, 0.0, out=diff)
            out += self.w[r] @ diff
        return out

    # ----- state --------------------------------------------------------------------------------------------
    def reset(self, new_open: IntArray) -> None:
        """Set the open new columns and rebuild all incremental arrays from scratch."""
        self.slots = np.asarray(new_open, dtype=np.int64).copy()
        self.slot_of[:] = -1
        self.slot_of[self.slots] = np.arange(self.p)
        self.gain[:] = 0.0
        self.loss[:] = 0.0
        self.extra[:] = 0.0
        rows = np.arange(self.n)
        self._nearest_two(rows)
        self._contrib(rows, 1.0)

    @property
    def open_cols(self) -> IntArray:
        """All open columns: fixed first, then the new slots."""
        return np.concatenate([self.fixed, self.slots])

    def objective(self) -> float:
        """Current total weighted cost."""
        return float(self.w @ self.d1)

    def _nearest_two(self, rows: IntArray) -> None:
        cols = self.open_cols
        for s in range(0, rows.size, ROW_CHUNK):
            r = rows[s:s + ROW_CHUNK]
            sub = self.c[np.ix_(r, cols)]
            if cols.size == 1:
                self.d1[r], self.phi1[r] = sub[:, 0], cols[0]
                self.d2[r], self.phi2[r] = self.big, -1
                continue
            part = np.argpartition(sub, 1, axis=1)[:, :2]
            v = np.take_along_axis(sub, part, axis=1)
            swap = v[:, 1] < v[:, 0]
            part[swap] = part[swap][:, ::-1]
            v[swap] = v[swap][:, ::-1]
            self.d1[r], self.d2[r] = v[:, 0], v[:, 1]
            self.phi1[r], self.phi2[r] = cols[part[:, 0]], cols[part[:, 1]]

    def _contrib(self, rows: IntArray, sign: float) -> None:
        """Add (sign=+1) or remove (sign=-1) the rows' contributions to gain, loss and extra."""
        for s in range(0, rows.size, ROW_CHUNK):
            r = rows[s:s + ROW_CHUNK]
            cr, w, d1, d2 = self.c[r], self.w[r], self.d1[r], self.d2[r]
            diff = d1[:, None] - cr
            np.maximum(diff, 0.0, out=diff)
            self.gain += sign * (w @ diff)
            slot = self.slot_of[self.phi1[r]]
            mine = slot >= 0
            if not mine.any():
                continue
            slot, w, d1, d2, cr = slot[mine], w[mine], d1[mine], d2[mine], cr[mine]
            self.loss += sign * np.bincount(slot, weights=w * (d2 - d1), minlength=self.p)
            v = np.maximum(cr, d1[:, None])
            np.subtract(d2[:, None], v, out=v)
            np.maximum(v, 0.0, out=v)
            v *= w[:, None]
            order = np.argsort(slot, kind="stable")
            ss = slot[order]
            starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
            sums = np.add.reduceat(v[order], starts, axis=0)
            self.extra[:, ss[starts]] += sign * sums.T

    # ----- local search -------------------------------------------------------------------------------------
    def best_swap(self) -> tuple[int, int, float]:
        """Best (column in, slot out, saving) of the whole swap neighbourhood."""
        prof = self.extra + self.gain[:, None]
        prof -= self.loss[None, :]
        prof[~self.is_cand] = -np.inf
        prof[self.slots] = -np.inf
        k = int(np.argmax(prof))
        j, s = divmod(k, self.p)
        return j, s, float(prof[j, s])

    def apply_swap(self, j: int, s: int) -> None:
        """Close slot ``s`` and open column ``j`` in its place, updating only the affected rows."""
        r = int(self.slots[s])
        col = self.c[:, j]
        aff = np.flatnonzero((self.phi1 == r) | (self.phi2 == r) | (col < self.d2))
        self._contrib(aff, -1.0)
        self.slot_of[r] = -1
        self.slots[s] = j
        self.slot_of[j] = s
        self._nearest_two(aff)
        self._contrib(aff, 1.0)
        self.moves += 1

    def local_search(self, deadline: float) -> float:
        """Best-improvement swaps until no saving remains (or the deadline); returns the objective."""
        if self.p == 0 or self.cand.size <= self.p:
            return self.objective()
        obj = self.objective()
        tol = 1e-9 * max(1.0, abs(obj))
        refreshed = False
        while time.perf_counter() < deadline:
            j, s, saving = self.best_swap()
            if saving <= tol:
                if refreshed:
                    break
                self.reset(self.slots)  # guard against drift of the incremental sums
                refreshed = True
                continue
            old = self.slots.copy()
            self.apply_swap(j, s)
            new = self.objective()
            if new < obj - tol:
                obj, refreshed = new, False
            else:  # drifted estimate: undo and rebuild
                self.reset(old)
                if refreshed:
                    break
                refreshed = True
        return obj


class HybridHeuristic:
    """Greedy + swap local search, a Lagrangian-guided restart hook and a short VNS, sharing one best solution.

    Parameters
    ----------
    seed : int
        Random seed of the VNS shakes.
    """

    def __init__(self, c: FloatArray, w: FloatArray, fixed: IntArray, cand: IntArray, p: int, *,
                 seed: int = 0) -> None:
        self.ss = SwapSearch(c, w, fixed, cand, p)
        self.p, self.cand = p, cand
        self.best = np.zeros(0, dtype=np.int64)
        self.best_obj = math.inf
        self.searches = 0
        self.rng = np.random.default_rng(seed)
        self._tried: set[bytes] = set()

    def _consider(self, deadline: float) -> float:
        obj = self.ss.local_search(deadline)
        self.searches += 1
        if obj < self.best_obj - 1e-9 * max(1.0, abs(obj)):
            self.best_obj, self.best = obj, self.ss.slots.copy()
        return obj

    def construct(self, deadline: float, start: IntArray | None = None) -> float:
        """Greedy (or ``start``) followed by local search."""
        if self.p == 0:
            self.ss.reset(np.zeros(0, dtype=np.int64))
            self.best_obj, self.best = self.ss.objective(), np.zeros(0, dtype=np.int64)
            return self.best_obj
        init = self.ss.greedy() if start is None else np.asarray(start, dtype=np.int64)
        self.ss.reset(init)
        return self._consider(deadline)

    def restart_from(self, cols: IntArray, deadline: float) -> float:
        """Local search from ``cols`` (skipped if that start was tried); returns the best objective."""
        key = np.sort(cols).tobytes()
        if self.p == 0 or key in self._tried or time.perf_counter() >= deadline:
            return self.best_obj
        self._tried.add(key)
        self.ss.reset(np.asarray(cols, dtype=np.int64))
        self._consider(deadline)
        return self.best_obj

    def vns(self, rounds: int, deadline: float, target: float = -math.inf) -> None:
        """Shake the best solution by ``k`` random swaps (k = 1, 2, ... cycling), search, keep improvements."""
        closed_pool = self.cand.size - self.p
        if self.p == 0 or closed_pool <= 0:
            return
        kmax = max(1, min(self.p, closed_pool, 10))
        k = 1
        for _ in range(rounds):
            if time.perf_counter() >= deadline or self.best_obj <= target:
                break
            trial = self.best.copy()
            is_open = np.zeros(self.ss.m, dtype=bool)
            is_open[trial] = True
            pool = self.cand[~is_open[self.cand]]
            trial[self.rng.choice(self.p, size=k, replace=False)] = self.rng.choice(pool, size=k, replace=False)
            before = self.best_obj
            self.ss.reset(trial)
            self._consider(deadline)
            k = 1 if self.best_obj < before else (k + 1 if k < kmax else 1)

    def solution(self) -> SwapSolution:
        """Best solution so far."""
        return SwapSolution(np.sort(self.best), self.best_obj, self.searches, self.ss.moves)
