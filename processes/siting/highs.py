"""A thin, array-based front end to HiGHS (``highspy``): pass a row-wise sparse MIP, read status, bound and gap.

Models are handed over as CSR arrays in a single ``passModel`` call, which is much faster than building
expressions variable by variable (PuLP or the highspy modelling layer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
import numpy.typing as npt

from processes.siting.result import FloatArray, Progress

MipStatus = Literal["optimal", "time_limit", "infeasible", "feasible", "error"]


@dataclass
class Mip:
    """``min/max cost @ x + offset`` s.t. ``row_lower <= A x <= row_upper``, bounds, integrality; A in CSR."""

    col_cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    integer: npt.NDArray[np.bool_]
    row_lower: FloatArray
    row_upper: FloatArray
    start: npt.NDArray[np.int32]
    index: npt.NDArray[np.int32]
    value: FloatArray
    maximize: bool = False
    offset: float = 0.0

    @property
    def num_col(self) -> int:
        """Number of variables."""
        return int(self.col_cost.shape[0])

    @property
    def num_row(self) -> int:
        """Number of constraints."""
        return int(self.row_lower.shape[0])

    @property
    def num_nz(self) -> int:
        """Number of constraint-matrix nonzeros."""
        return int(self.index.shape[0])


@dataclass
class MipOutcome:
    """What HiGHS proved: best solution (or ``None``), its value, the dual bound and the status."""

    x: FloatArray | None
    objective: float
    bound: float
    status: MipStatus
    runtime_s: float
    nodes: int
    model_status: str


def csr_from_coo(rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64], vals: FloatArray,
                 num_row: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], FloatArray]:
    """Row-wise (start, index, value) arrays from coordinate triplets (duplicates are not merged)."""
    order = np.lexsort((cols, rows))
    counts = np.bincount(rows, minlength=num_row)
    start = np.zeros(num_row + 1, dtype=np.int32)
    np.cumsum(counts, out=start[1:])
    return start, cols[order].astype(np.int32), vals[order].astype(np.float64)


def solve_mip(
    mip: Mip,
    time_limit: float,
    *,
    mip_rel_gap: float = 1e-6,
    start: FloatArray | None = None,
    progress: Progress | None = None,
    progress_span: tuple[float, float] = (0.0, 100.0),
    relax: bool = False,
    label: str = "MIP",
) -> MipOutcome:
    """Solve with HiGHS under a wall-clock limit; never reports a time-limited incumbent as optimal.

    Parameters
    ----------
    mip : Mip
        The model.
    time_limit : float
        Seconds.
    mip_rel_gap : float
        Relative gap at which HiGHS stops and reports optimality.
    start : ndarray, optional
        A full feasible column vector used as the initial incumbent.
    progress : callable, optional
        ``progress(percent, message)``; called at most twice a second, percent inside ``progress_span``.
    relax : bool
        Solve the LP relaxation (integrality dropped).
    label : str
        Prefix of progress messages.
    """
    t0 = time.perf_counter()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-7)
    integrality = np.zeros(mip.num_col, dtype=np.int32)
    if not relax:
        integrality[mip.integer] = 1
    status = h.passModel(
        mip.num_col, mip.num_row, mip.num_nz, 2, -1 if mip.maximize else 1, float(mip.offset),
        mip.col_cost, mip.col_lower, mip.col_upper, mip.row_lower, mip.row_upper,
        mip.start, mip.index, mip.value, integrality,
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError(f"HiGHS rejected the {label} model")
    if start is not None and not relax:
        sol = highspy.HighsSolution()
        sol.col_value = list(np.asarray(start, dtype=np.float64))
        sol.value_valid = True
        h.setSolution(sol)
    failure: list[BaseException] = []
    if progress is not None and not relax:
        _attach_progress(h, progress, progress_span, time_limit, label, failure)
    h.run()
    if failure:
        h.clear()
        raise failure[0]
    ms = h.getModelStatus()
    info = h.getInfo()
    has_sol = info.primal_solution_status == 2
    x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_sol else None
    obj = float(info.objective_function_value) if has_sol else float("nan")
    lp_bound = obj if ms == highspy.HighsModelStatus.kOptimal else float("nan")
    bound = lp_bound if relax else float(info.mip_dual_bound)
    if ms == highspy.HighsModelStatus.kOptimal:
        st: MipStatus = "optimal"
    elif ms == highspy.HighsModelStatus.kInfeasible:
        st = "infeasible"
    elif ms in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt,
                highspy.HighsModelStatus.kSolutionLimit, highspy.HighsModelStatus.kIterationLimit):
        st = "time_limit"
    else:
        st = "feasible" if has_sol else "error"
    nodes = int(info.mip_node_count) if not relax else 0
    h.clear()
    return MipOutcome(x=x, objective=obj, bound=bound, status=st, runtime_s=time.perf_counter() - t0,
                      nodes=nodes, model_status=str(ms))


def _attach_progress(h: highspy.Highs, progress: Progress, span: tuple[float, float], time_limit: float,
                     label: str, failure: list[BaseException]) -> None:
    """Report MIP progress at most twice a second; an exception from ``progress`` interrupts HiGHS and is
    re-raised by :func:`solve_mip` after the solver returned (the way to cancel a job)."""
    last = [0.0]
    lo, hi = span

    def on_event(e: highspy.HighsCallbackEvent) -> None:
        if failure:
            e.interrupt()
            return
        now = time.perf_counter()
        if now - last[0] < 0.5:
            return
        last[0] = now
        out = e.data_out
        t = float(out.running_time)
        primal, dual = float(out.mip_primal_bound), float(out.mip_dual_bound)
        frac = min(1.0, t / max(time_limit, 1e-9))
        msg = f"{label}: {t:.1f} s"
        if np.isfinite(primal) and abs(primal) < 1e300:
            gap = abs(primal - dual) / max(abs(primal), 1e-9)
            msg += f", incumbent {primal:.6g}, bound {dual:.6g}, gap {100 * gap:.3f} %"
            frac = max(frac, 1.0 - min(1.0, gap))
        try:
            progress(lo + (hi - lo) * frac, msg)
        except BaseException as exc:  # kept and re-raised by solve_mip, outside the C++ callback
            failure.append(exc)
            e.interrupt()

    h.cbMipInterrupt.subscribe(on_event)
