"""Coverage building blocks: coverage matrices, row aggregation, greedy cover, set-cover / MCLP models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from processes.siting.highs import Mip, MipOutcome, solve_mip
from processes.siting.result import FloatArray, IntArray, Progress

BoolArray = npt.NDArray[np.bool_]


@dataclass
class Groups:
    """Demand rows with identical coverage sets merged: ``a`` (groups x candidates, CSR), summed weights."""

    a: sparse.csr_matrix
    weight: FloatArray
    inverse: IntArray   # group of each input row


def group_rows(mask: BoolArray, w: FloatArray) -> Groups:
    """Merge rows of a boolean coverage mask that cover exactly the same candidates."""
    if mask.shape[0] == 0:
        return Groups(sparse.csr_matrix(mask.astype(np.int8)), np.zeros(0), np.zeros(0, dtype=np.int64))
    packed = np.packbits(mask, axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    weight = np.bincount(inverse, weights=w, minlength=first.size)
    a = sparse.csr_matrix(mask[first].astype(np.int8))
    return Groups(a=a, weight=weight, inverse=inverse)


def greedy_cover(a: sparse.csr_matrix, limit: int | None = None) -> IntArray | None:
    """Greedy set cover of all rows of ``a`` (columns = sets); ``None`` if more than ``limit`` columns needed."""
    n_rows, n_cols = a.shape
    csc = a.tocsc()
    uncovered = np.ones(n_rows, dtype=bool)
    counts = np.asarray(a.sum(axis=0)).reshape(-1).astype(np.int64)
    chosen: list[int] = []
    left = n_rows
    while left > 0:
        if limit is not None and len(chosen) >= limit:
            return None
        j = int(np.argmax(counts))
        if counts[j] <= 0:
            return None
        chosen.append(j)
        rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
        rows = rows[uncovered[rows]]
        uncovered[rows] = False
        left -= rows.size
        sub = a[rows]
        counts -= np.bincount(sub.indices, minlength=n_cols)
    return np.asarray(chosen, dtype=np.int64)


def greedy_max_cover(a: sparse.csr_matrix, weight: FloatArray, p: int) -> IntArray:
    """Greedy MCLP: ``p`` columns, each adding the most uncovered weight."""
    n_rows, n_cols = a.shape
    csc = a.tocsc()
    uncovered = np.ones(n_rows, dtype=bool)
    gain = np.asarray(a.T @ weight).reshape(-1)
    chosen: list[int] = []
    avail = np.ones(n_cols, dtype=bool)
    for _ in range(min(p, n_cols)):
        j = int(np.argmax(np.where(avail, gain, -np.inf)))
        chosen.append(j)
        avail[j] = False
        rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
        rows = rows[uncovered[rows]]
        uncovered[rows] = False
        if rows.size:
            sub = a[rows]
            gain -= np.bincount(sub.indices, weights=np.repeat(weight[rows], np.diff(sub.indptr)), minlength=n_cols)
    return np.asarray(chosen, dtype=np.int64)


def set_cover_mip(a: sparse.csr_matrix, *, max_sites: int | None, time_limit: float, mip_rel_gap: float = 0.0,
                  start: IntArray | None = None, progress: Progress | None = None,
                  span: tuple[float, float] = (10.0, 95.0), label: str = "set cover") -> MipOutcome:
    r"""Minimum set cover :math:`\min \sum_j y_j` s.t. :math:`A y \ge 1` (and :math:`\sum_j y_j \le` max_sites)."""
    n_rows, n_cols = a.shape
    a = a.tocsr()
    start_ = a.indptr.astype(np.int32)
    index = a.indices.astype(np.int32)
    value = np.ones(index.size)
    row_lower = np.ones(n_rows)
    row_upper = np.full(n_rows, np.inf)
    if max_sites is not None:
        start_ = np.r_[start_, start_[-1] + n_cols].astype(np.int32)
        index = np.r_[index, np.arange(n_cols, dtype=np.int32)]
        value = np.r_[value, np.ones(n_cols)]
        row_lower = np.r_[row_lower, 0.0]
        row_upper = np.r_[row_upper, float(max_sites)]
    mip = Mip(col_cost=np.ones(n_cols), col_lower=np.zeros(n_cols), col_upper=np.ones(n_cols),
              integer=np.ones(n_cols, dtype=bool), row_lower=row_lower, row_upper=row_upper,
              start=start_, index=index, value=value)
    x0 = None
    if start is not None:
        x0 = np.zeros(n_cols)
        x0[start] = 1.0
    return solve_mip(mip, time_limit, mip_rel_gap=mip_rel_gap, start=x0, progress=progress, progress_span=span,
                     label=label)


def mclp_mip(a: sparse.csr_matrix, weight: FloatArray, p: int, *, time_limit: float, mip_rel_gap: float,
             start: IntArray | None = None, relax: bool = False, progress: Progress | None = None,
             span: tuple[float, float] = (10.0, 95.0)) -> MipOutcome:
    r"""Maximal covering: :math:`\max \sum_g W_g z_g` s.t. :math:`z_g \le \sum_{j \in N_g} y_j`,
    :math:`\sum_j y_j = p`, :math:`y \in \{0,1\}`, :math:`0 \le z \le 1` (columns: y then z)."""
    n_rows, n_cols = a.shape
    a = a.tocsr()
    counts = np.diff(a.indptr)
    rows = np.concatenate([np.repeat(np.arange(n_rows), counts), np.arange(n_rows), np.full(n_cols, n_rows)])
    cols = np.concatenate([a.indices.astype(np.int64), n_cols + np.arange(n_rows), np.arange(n_cols)])
    vals = np.concatenate([-np.ones(a.indices.size), np.ones(n_rows), np.ones(n_cols)])
    coo = sparse.csr_matrix((vals, (rows, cols)), shape=(n_rows + 1, n_cols + n_rows))
    mip = Mip(col_cost=np.r_[np.zeros(n_cols), weight], col_lower=np.zeros(n_cols + n_rows),
              col_upper=np.ones(n_cols + n_rows),
              integer=np.r_[np.ones(n_cols, dtype=bool), np.zeros(n_rows, dtype=bool)],
              row_lower=np.r_[np.full(n_rows, -np.inf), float(p)], row_upper=np.r_[np.zeros(n_rows), float(p)],
              start=coo.indptr.astype(np.int32), index=coo.indices.astype(np.int32), value=coo.data.astype(np.float64),
              maximize=True)
    x0 = None
    if start is not None:
        y = np.zeros(n_cols)
        y[start] = 1.0
        z = np.minimum(1.0, np.asarray(a @ y).reshape(-1))
        x0 = np.r_[y, z]
    return solve_mip(mip, time_limit, mip_rel_gap=mip_rel_gap, start=x0, relax=relax, progress=progress,
                     progress_span=span, label="MCLP")
