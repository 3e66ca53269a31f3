"""Stuck sensors: runs of one station's identical PM values, flagged `flat` (the value is kept, not interpolated).

A daily mean repeated on 5 or more consecutive days, or an hourly value on 12 or more consecutive hours, is taken
for a sensor stuck on one value (in the Seoul 2018-2022 files, 청계천로 reports PM10 5 for 7 days and PM2.5 3 for
8 days).  Only PM10 and PM2.5 are checked: gases in ppm legitimately repeat at their coarse resolution.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

FLAT = "flat"
MIN_RUN = {"day": 5, "hour": 12}
CHECKED = ("pm10", "pm25")


def flag_flat_runs(rows: Sequence[dict[str, Any]], min_run: dict[str, int] | None = None) -> int:
    """Set `<pollutant>_flag = 'flat'` on every row of a long run (per station and period, in time order) whose
    flag is empty; a missing value or another flag ends a run.  Returns the number of values flagged."""
    limits = min_run or MIN_RUN
    series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        series[(row["station_name"], row["period"])].append(row)
    flagged = 0
    for (_, period), seq in series.items():
        limit = limits.get(period)
        if limit is None:
            continue
        seq.sort(key=lambda r: r["measured_at"])
        for key in CHECKED:
            runs: list[list[dict[str, Any]]] = [[]]
            for row in seq:
                value = None if row.get(f"{key}_flag") else row.get(key)
                if value is None:
                    runs.append([])
                elif runs[-1] and value == runs[-1][-1][key]:
                    runs[-1].append(row)
                else:
                    runs.append([row])
            for run in runs:
                if len(run) >= limit:
                    for r in run:
                        r[f"{key}_flag"] = FLAT
                    flagged += len(run)
    return flagged
