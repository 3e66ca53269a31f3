"""Optimal siting of living-SOC facilities: location-allocation solvers on cost matrices (no I/O).

Models: :func:`lscp`, :func:`mclp`, :func:`p_median`, :func:`p_center`, :func:`capacitated_p_median`,
:func:`max_attendance`. Inputs are numpy arrays (cost ``c[i, j]`` demand x candidate, weights ``w[i]``),
existing sites are forced open and counted; every call returns a :class:`SitingResult` with the proven bound
and gap. Bad input raises :class:`SitingInputError` (a ``ValueError``) whose message says what to change.
"""

from processes.siting.capacitated import capacitated_p_median
from processes.siting.coverage import lscp, mclp
from processes.siting.orlib import load_pmed, load_pmedopt
from processes.siting.pcenter import p_center
from processes.siting.pmedian import attendance_factor, max_attendance, p_median
from processes.siting.result import (
    Method,
    Progress,
    SitingInfeasibleError,
    SitingInputError,
    SitingResult,
    Status,
)

__all__ = [
    "Method",
    "Progress",
    "SitingInfeasibleError",
    "SitingInputError",
    "SitingResult",
    "Status",
    "attendance_factor",
    "capacitated_p_median",
    "load_pmed",
    "load_pmedopt",
    "lscp",
    "max_attendance",
    "mclp",
    "p_center",
    "p_median",
]
