"""The air-quality surfaces the loaders built (meta.surfaces), read through the read pool and kept for a moment.

A rebuild writes new COG files before it swaps the rows, so a catalog read a second ago still names files that
exist, or (after the old files are removed) is re-read once by `SurfaceCatalog.refresh`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.errors import InvalidParameterValue, NotFound

KST = ZoneInfo("Asia/Seoul")
TTL_S = 2.0


@dataclass(frozen=True)
class SurfaceRow:
    """One stored surface (one pollutant and day or hour)."""

    surface_id: int
    collection_id: str
    region: str
    pollutant: str
    valid_at: datetime
    method: str
    readings_version: int
    stations: int
    validation: dict[str, Any]
    path: str
    period: str = "day"

    @property
    def day(self) -> date:
        """The day in Korea (the readings' day)."""
        return self.valid_at.astimezone(KST).date()

    @property
    def label(self) -> str:
        """The time step as served: the day (YYYY-MM-DD) or the hour as a KST instant (2022-03-01T13:00:00+09:00)."""
        return self.day.isoformat() if self.period == "day" else self.valid_at.astimezone(KST).isoformat()


@dataclass
class SurfaceCollection:
    """The surfaces of one collection, oldest first."""

    id: str
    region: str
    pollutant: str
    surfaces: list[SurfaceRow] = field(default_factory=list)

    @property
    def hourly(self) -> bool:
        """True for a collection of hourly surfaces."""
        return bool(self.surfaces) and self.surfaces[0].period == "hour"

    def at(self, when: str | None) -> SurfaceRow:
        """The surface of a day (`YYYY-MM-DD` or an RFC 3339 instant, read in KST); None: the newest.  On an hourly
        collection an instant selects its hour (minutes must be 0) and a day selects that day's latest hour."""
        if not self.surfaces:
            raise NotFound(f"collection {self.id!r} has no surfaces yet (load the readings)")
        if not when:
            return self.surfaces[-1]
        text = when.strip()
        try:
            instant = None if len(text) == 10 else datetime.fromisoformat(text.replace("Z", "+00:00"))
            wanted = date.fromisoformat(text) if instant is None else instant.astimezone(KST).date()
        except ValueError:
            raise InvalidParameterValue(f"datetime must be a day (YYYY-MM-DD) or an instant, got {when!r}") from None
        if self.hourly:
            return self._hour(instant, wanted)
        for row in self.surfaces:
            if row.day == wanted:
                return row
        first, last = self.surfaces[0].day, self.surfaces[-1].day
        raise NotFound(f"no {self.id} surface for {wanted}; surfaces exist for {len(self.surfaces)} days "
                       f"from {first} to {last}")

    def _hour(self, instant: datetime | None, day: date) -> SurfaceRow:
        """The hourly surface of an instant (on the hour, offset required), or the latest hour of a day."""
        if instant is not None:
            if instant.tzinfo is None:
                raise InvalidParameterValue("datetime of an hourly collection needs an offset (Z or +09:00)")
            if (instant.minute, instant.second, instant.microsecond) != (0, 0, 0):
                raise InvalidParameterValue(f"hourly surfaces are on the hour; got {instant.isoformat()}")
            found = [r for r in self.surfaces if r.valid_at == instant]
        else:
            found = [r for r in self.surfaces if r.day == day]
        if found:
            return found[-1]
        raise NotFound(f"no {self.id} surface for {instant.isoformat() if instant else day}; surfaces exist for "
                       f"{len(self.surfaces)} hours from {self.surfaces[0].label} to {self.surfaces[-1].label}")


Query = Callable[[], list[tuple[Any, ...]]]
SQL = ("SELECT surface_id, collection_id, region, pollutant, valid_at, method, readings_version, stations, "
       "validation, path, period FROM meta.surfaces ORDER BY collection_id, valid_at")


class SurfaceCatalog:
    """collection id -> SurfaceCollection, re-read at most every TTL_S seconds."""

    def __init__(self, query: Query) -> None:
        self._query = query
        self._lock = threading.Lock()
        self._read_at = -1e9
        self._collections: dict[str, SurfaceCollection] = {}

    def refresh(self) -> dict[str, SurfaceCollection]:
        """Re-read now."""
        found: dict[str, SurfaceCollection] = {}
        for r in self._query():
            row = SurfaceRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), r[8], r[9], r[10])
            found.setdefault(row.collection_id, SurfaceCollection(row.collection_id, row.region, row.pollutant))
            found[row.collection_id].surfaces.append(row)
        with self._lock:
            self._collections, self._read_at = found, time.monotonic()
        return found

    def collections(self) -> dict[str, SurfaceCollection]:
        """The catalog (from memory when read in the last TTL_S seconds)."""
        with self._lock:
            if time.monotonic() - self._read_at < TTL_S:
                return self._collections
        return self.refresh()

    def get(self, collection_id: str) -> SurfaceCollection | None:
        """One collection, or None."""
        return self.collections().get(collection_id)
