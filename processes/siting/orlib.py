"""Readers for the OR-Library p-median test set (Beasley 1985): instances and published optima.

Pure parsing plus a shortest-path computation; the caller opens nothing but the given path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from processes.siting.result import FloatArray


def load_pmed(path: str | Path) -> tuple[int, int, FloatArray]:
    """Read ``pmedN.txt`` and return ``(n, p, cost)`` with cost = all-pairs shortest-path distances.

    The file starts with ``n_vertices n_edges p`` followed by ``i j cost`` lines of an undirected graph
    (1-based vertices). When an edge is listed twice the **last** occurrence counts, as the published optima
    assume (pmed1 lists {19, 20} with 22 and then 30).
    """
    tokens = Path(path).read_text().split()
    n, n_edges, p = int(tokens[0]), int(tokens[1]), int(tokens[2])
    data = np.asarray(tokens[3:3 + 3 * n_edges], dtype=np.float64).reshape(-1, 3)
    if data.shape[0] != n_edges:
        raise ValueError(f"{path}: header announces {n_edges} edges, found {data.shape[0]}")
    i = data[:, 0].astype(np.int64) - 1
    j = data[:, 1].astype(np.int64) - 1
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * n + hi
    # keep the last occurrence of each undirected edge
    _, last_rev = np.unique(key[::-1], return_index=True)
    last = key.size - 1 - last_rev
    lo, hi, w = lo[last], hi[last], data[last, 2]
    graph = coo_matrix((np.r_[w, w], (np.r_[lo, hi], np.r_[hi, lo])), shape=(n, n)).tocsr()
    cost = shortest_path(graph, method="D", directed=False)
    return n, p, np.asarray(cost, dtype=np.float64)


def load_pmedopt(path: str | Path) -> dict[str, float]:
    """Read ``pmedopt.txt`` (or ``pcenter-opt.txt``): ``{"pmed1": 5819.0, ...}``; header lines are ignored."""
    out: dict[str, float] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lower().startswith("pmed"):
            try:
                out[parts[0].lower()] = float(parts[1])
            except ValueError:
                continue
    return out
