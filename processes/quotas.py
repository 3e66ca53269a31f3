"""Per-identity quotas on one execution's size (core.config.Quota), checked on a process's validated inputs.

The server picks the caller's quota (server/processes_api.py); this module only compares sizes, so every process is
covered without knowing it: demand (inputs.Demand sample points), sites (inputs.Points: candidates, existing,
facilities) and a solver's `time_limit`.
"""

from __future__ import annotations

from typing import Any

from core.config import Quota
from processes.errors import InputError
from processes.inputs import Demand, Points


def check(quota: Quota | None, raw: dict[str, Any], clean: dict[str, Any]) -> None:
    """InputError (400) naming the quota an execution exceeds; a `time_limit` the caller did not give is lowered to
    the quota instead. `raw` are the inputs as sent, `clean` what validate() made of them (changed in place)."""
    if quota is None:
        return
    if quota.max_points is not None:
        for name, value in clean.items():
            if isinstance(value, Demand) and len(value.sample_xy) > quota.max_points:
                raise InputError(f"{name}: {len(value.sample_xy):,} demand points, more than the {quota.max_points:,} "
                                 "of your quota (max_points); use a larger cell_m or a filter")
    if quota.max_facilities is not None:
        sites = {name: len(v.ids) for name, v in clean.items() if isinstance(v, Points)}
        if sum(sites.values()) > quota.max_facilities:
            counts = ", ".join(f"{n:,} {name}" for name, n in sites.items())
            raise InputError(f"{counts}: more than the {quota.max_facilities:,} sites of your quota (max_facilities); "
                             "use a coarser grid or a filter")
    limit = clean.get("time_limit")
    if quota.max_time_limit_s is not None and isinstance(limit, int | float) and limit > quota.max_time_limit_s:
        if "time_limit" in raw:
            raise InputError(f"time_limit: {limit:g} s, more than the {quota.max_time_limit_s:g} s of your quota "
                             "(max_time_limit_s)")
        clean["time_limit"] = quota.max_time_limit_s
