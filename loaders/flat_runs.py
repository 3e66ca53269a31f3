"""Stuck sensors: runs of one station's identical PM values, flagged `flat` (the value is kept, not interpolated).

A daily mean repeated on 5 or more consecutive days, or an hourly value on 12 or more consecutive hours, is taken
for a sensor stuck on one value (in the Seoul 2018-2022 files, 청계천로 reports PM10 5 for 7 days and PM2.5 3 for
8 days).  Only PM10 and PM2.5 are checked: gases in ppm legitimately repeat at their coarse resolution.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from psycopg2 import sql

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


def flag_stored_flat_runs(cur: Any, table: str, stations: Sequence[str], period: str = "hour",
                          min_run: int | None = None) -> int:
    """Re-judge the flat runs of the stored `period` series of `stations` in `table` (schema.name), in the caller's
    transaction: values in a run of >= min_run identical values on consecutive steps get flag 'flat', 'flat' values
    no longer in such a run lose it (other flags and NULL values end a run and are never touched).  Judging the
    stored series catches a run that spans two ingests or files.  Returns the number of flags changed."""
    limit = min_run or MIN_RUN[period]
    step = "1 hour" if period == "hour" else "1 day"
    tbl = sql.Identifier(*table.split("."))
    changed = 0
    for key in CHECKED:
        val, flag = sql.Identifier(key), sql.Identifier(f"{key}_flag")
        cur.execute(sql.SQL("""
            WITH s AS (
              SELECT id, station_name, measured_at, {val} AS v,
                     {val} IS NOT NULL AND ({flag} IS NULL OR {flag} = %(flat)s) AS usable
              FROM {tbl} WHERE period = %(period)s AND station_name = ANY(%(stations)s)
            ), b AS (
              SELECT *, CASE WHEN usable AND lag(usable) OVER w AND lag(v) OVER w = v
                              AND measured_at - lag(measured_at) OVER w = %(step)s::interval THEN 0 ELSE 1 END AS brk
              FROM s WINDOW w AS (PARTITION BY station_name ORDER BY measured_at)
            ), g AS (
              SELECT *, sum(brk) OVER (PARTITION BY station_name ORDER BY measured_at, id) AS grp FROM b
            ), r AS (
              SELECT id, usable, count(*) OVER (PARTITION BY station_name, grp) AS n FROM g
            )
            UPDATE {tbl} t SET {flag} = CASE WHEN r.n >= %(limit)s THEN %(flat)s END
            FROM r WHERE t.id = r.id AND r.usable
              AND t.{flag} IS DISTINCT FROM (CASE WHEN r.n >= %(limit)s THEN %(flat)s END)
            """).format(val=val, flag=flag, tbl=tbl),
            {"flat": FLAT, "period": period, "stations": list(stations), "step": step, "limit": limit})
        changed += cur.rowcount
    return changed
