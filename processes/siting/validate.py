"""Input checks shared by every model; each error message says what to change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processes.siting.result import FloatArray, IntArray, Method, SitingInputError

MIN_TIME_LIMIT = 0.05
MAX_TIME_LIMIT = 86_400.0
METHODS = ("auto", "exact", "heuristic")


@dataclass(frozen=True)
class Instance:
    """A validated instance: costs, weights, existing (forced-open) and new candidate columns.

    Attributes
    ----------
    c : ndarray, shape (n, m)
        Non-negative float costs; ``inf`` marks an unreachable pair.
    w : ndarray, shape (n,)
        Non-negative demand weights.
    existing : ndarray of int
        Sorted candidate indices that are open whatever the solution (counted in every metric).
    new : ndarray of int
        The other candidate indices, in increasing order; new sites are chosen among them.
    p : int
        Number of new sites to open (0 for models without ``p``).
    time_limit : float
        Seconds.
    """

    c: FloatArray
    w: FloatArray
    existing: IntArray
    new: IntArray
    p: int
    time_limit: float

    @property
    def n(self) -> int:
        """Number of demand points."""
        return int(self.c.shape[0])

    @property
    def m(self) -> int:
        """Number of candidate sites (existing included)."""
        return int(self.c.shape[1])


def check_instance(
    c: npt.ArrayLike,
    w: npt.ArrayLike | None,
    *,
    p: int | None,
    existing: Sequence[int] | npt.ArrayLike | None,
    time_limit: float,
    method: Method = "auto",
) -> Instance:
    """Validate and normalise the common inputs.

    Parameters
    ----------
    c : array_like, shape (n, m)
        Cost from demand ``i`` to candidate ``j``; ``inf`` = unreachable, NaN and negatives are rejected.
    w : array_like, shape (n,), optional
        Demand weights (default 1).
    p : int or None
        New sites to open; ``None`` for models that choose the count (LSCP).
    existing : sequence of int, optional
        Candidate indices already open.
    time_limit : float
        Seconds, in ``[0.05, 86400]``.
    method : {'auto', 'exact', 'heuristic'}
        Checked for spelling only.
    """
    try:
        cost = np.asarray(c, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SitingInputError(f"cost matrix must be numeric: {exc}") from exc
    if cost.ndim != 2:
        raise SitingInputError(f"cost matrix must be 2-D (demand x candidates), got shape {cost.shape}")
    n, m = cost.shape
    if n == 0:
        raise SitingInputError("no demand: the cost matrix has 0 rows; give at least one demand point")
    if m == 0:
        raise SitingInputError("no candidates: the cost matrix has 0 columns; give at least one candidate site")
    if np.isnan(cost).any():
        bad = np.argwhere(np.isnan(cost))[:5].tolist()
        raise SitingInputError(f"cost matrix has NaN values (first [demand, candidate] pairs: {bad}); "
                               "use inf for unreachable pairs")
    if (cost < 0).any():
        bad = np.argwhere(cost < 0)[:5].tolist()
        raise SitingInputError(f"cost matrix has negative values (first pairs: {bad}); costs must be >= 0")
    if w is None:
        weight = np.ones(n, dtype=np.float64)
    else:
        try:
            weight = np.asarray(w, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise SitingInputError(f"demand weights must be numeric: {exc}") from exc
        if weight.shape[0] != n:
            raise SitingInputError(f"shape mismatch: {weight.shape[0]} demand weights for {n} cost-matrix rows; "
                                   "give one weight per row")
        if not np.isfinite(weight).all():
            raise SitingInputError("demand weights must be finite (no NaN or inf)")
        if (weight < 0).any():
            raise SitingInputError(f"demand weights must be >= 0; rows {np.flatnonzero(weight < 0)[:5].tolist()}"
                                   " are negative")
    if weight.sum() <= 0:
        raise SitingInputError("empty demand: all demand weights are 0")
    ex = _check_existing(existing, m)
    new = np.setdiff1d(np.arange(m, dtype=np.int64), ex)
    if p is not None:
        if isinstance(p, bool) or int(p) != p:
            raise SitingInputError(f"p must be an integer, got {p!r}")
        p = int(p)
        if p < 0:
            raise SitingInputError(f"p must be >= 0, got {p}")
        if p == 0 and ex.size == 0:
            raise SitingInputError("p = 0 with no existing facilities: open at least one site (p >= 1)")
        if p > new.size:
            raise SitingInputError(f"p = {p} is larger than the {new.size} candidate sites that are not already open; "
                                   f"lower p to at most {new.size} or add candidates")
    check_time_limit(time_limit)
    if method not in METHODS:
        raise SitingInputError(f"method must be one of {METHODS}, got {method!r}")
    return Instance(c=cost, w=weight, existing=ex, new=new, p=int(p or 0), time_limit=float(time_limit))


def _check_existing(existing: Sequence[int] | npt.ArrayLike | None, m: int) -> IntArray:
    if existing is None:
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(existing)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool:
        if arr.shape != (m,):
            raise SitingInputError(f"existing as a boolean mask needs {m} entries, got {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise SitingInputError("existing must be candidate indices (integers) or a boolean mask")
    ex = np.unique(arr.astype(np.int64).reshape(-1))
    if ex[0] < 0 or ex[-1] >= m:
        raise SitingInputError(f"existing indices must be in [0, {m - 1}] (candidate columns), got {ex.tolist()[:5]}")
    return ex


def check_time_limit(time_limit: float) -> None:
    """Reject absurd time limits."""
    try:
        t = float(time_limit)
    except (TypeError, ValueError) as exc:
        raise SitingInputError(f"time_limit must be a number of seconds, got {time_limit!r}") from exc
    if not (MIN_TIME_LIMIT <= t <= MAX_TIME_LIMIT):
        raise SitingInputError(f"time_limit = {time_limit!r} s is outside [{MIN_TIME_LIMIT}, {MAX_TIME_LIMIT:.0f}] s; "
                               "give a limit between 0.05 s and 24 h")


def check_threshold(T: float, name: str = "T") -> float:  # noqa: N803
    """A coverage threshold must be finite and >= 0."""
    try:
        t = float(T)
    except (TypeError, ValueError) as exc:
        raise SitingInputError(f"{name} must be a number (a cost such as minutes or metres), got {T!r}") from exc
    if not np.isfinite(t) or t < 0:
        raise SitingInputError(f"{name} must be finite and >= 0, got {T!r}")
    return t


def check_capacity(cap: npt.ArrayLike, m: int) -> FloatArray:
    """Capacities: one per candidate, > 0, ``inf`` allowed (uncapacitated)."""
    try:
        arr = np.asarray(cap, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise SitingInputError(f"capacities must be numeric: {exc}") from exc
    if arr.shape[0] != m:
        raise SitingInputError(f"shape mismatch: {arr.shape[0]} capacities for {m} candidate columns")
    if np.isnan(arr).any() or (arr < 0).any():
        raise SitingInputError("capacities must be >= 0 (inf for unlimited), without NaN")
    return arr
