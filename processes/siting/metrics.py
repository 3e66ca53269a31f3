"""Allocation and service metrics of a set of open sites (shared by all models)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from processes.siting.result import FloatArray, IntArray, SitingResult, Status, rel_gap
from processes.siting.validate import Instance


def nearest(c: FloatArray, open_sites: IntArray) -> tuple[IntArray, FloatArray]:
    """Nearest open site of each demand point and its cost (``-1`` / ``inf`` when none is reachable)."""
    n = c.shape[0]
    if open_sites.size == 0:
        return np.full(n, -1, dtype=np.int64), np.full(n, np.inf)
    sub = c[:, open_sites]
    k = np.argmin(sub, axis=1)
    cost = sub[np.arange(n), k]
    assign = open_sites[k].astype(np.int64)
    assign[~np.isfinite(cost)] = -1
    return assign, cost


def service_metrics(w: FloatArray, cost: FloatArray, threshold: float | None) -> dict[str, float]:
    """Covered weight and share (within ``threshold``, or reachable), weighted mean and max cost."""
    pos = w > 0
    total = float(w.sum())
    reach = np.isfinite(cost)
    covered = reach if threshold is None else cost <= threshold + 1e-9
    cw = float(w[covered].sum())
    served = pos & reach
    mean = float((w[served] * cost[served]).sum() / w[served].sum()) if served.any() else float("nan")
    worst = float(cost[pos].max()) if pos.any() else float("nan")
    return {"covered_weight": cw, "coverage_share": cw / total if total > 0 else 0.0,
            "mean_cost": mean, "max_cost": worst}


def make_result(
    inst: Instance,
    model: str,
    open_sites: IntArray,
    *,
    objective: float,
    bound: float,
    status: Status,
    solver: str,
    started: float,
    threshold: float | None,
    details: dict[str, Any] | None = None,
    assignment: IntArray | None = None,
    assigned_cost: FloatArray | None = None,
    gap_tol: float = 1e-6,
) -> SitingResult:
    """Assemble a :class:`SitingResult`, computing assignment, metrics and the baseline (existing sites only)."""
    open_sites = np.unique(np.concatenate([open_sites.astype(np.int64), inst.existing]))
    if assignment is None or assigned_cost is None:
        assignment, assigned_cost = nearest(inst.c, open_sites)
    met = service_metrics(inst.w, assigned_cost, threshold)
    det: dict[str, Any] = dict(details or {})
    if inst.existing.size:
        _, base_cost = nearest(inst.c, inst.existing)
        det.setdefault("baseline", service_metrics(inst.w, base_cost, threshold))
    loads = np.bincount(assignment[assignment >= 0], weights=inst.w[assignment >= 0], minlength=inst.m)
    det.setdefault("site_load", {int(j): float(loads[j]) for j in open_sites})
    gap = rel_gap(objective, bound)
    if status == "feasible" and gap <= gap_tol:
        status = "optimal"
    new_sites = np.setdiff1d(open_sites, inst.existing)
    return SitingResult(
        model=model, open_sites=open_sites, new_sites=new_sites, assignment=assignment,
        objective=float(objective), bound=float(bound), gap=gap, status=status, solver=solver,
        runtime_s=time.perf_counter() - started, details=det, **met,
    )
