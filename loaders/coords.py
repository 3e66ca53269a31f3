"""Coordinate columns of a table chosen by content: every candidate pair (위도/경도, X/Y, GPS_X/GPS_Y, ...) is read
as degrees, projected or packed degree-minutes, and the one placing the rows in the region (else Korea) wins."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from loaders import crs
from loaders.errors import LoadError

LAT_NAMES = ("위도", "lat", "latitude", "y좌표(위도)", "위도(y)", "wgs84위도", "stationlatitude", "dmx")
LON_NAMES = ("경도", "lon", "lng", "long", "longitude", "x좌표(경도)", "경도(x)", "wgs84경도", "stationlongitude",
             "dmy")
X_NAMES = ("x", "x좌표", "좌표x", "좌표(x)", "xcoord", "x_coord", "tm_x", "tmx", "pos_x", "coord_x", "utmk_x")
Y_NAMES = ("y", "y좌표", "좌표y", "좌표(y)", "ycoord", "y_coord", "tm_y", "tmy", "pos_y", "coord_y", "utmk_y")
_LONE_X = re.compile(r"(?<![a-z])x(?![a-z])")  # an x that is not part of a word (정류장x위치값, gps_x; not max)


@dataclass
class Coords:
    """Coordinate columns and how to read them (None: decide by content)."""

    x_col: str | None = None
    y_col: str | None = None
    epsg: int | None = None
    latlon: bool = False
    dm: bool | None = None  # packed degree-minutes (12715.3348 = 127° 15.3348'); None: by content


def norm(name: str) -> str:
    """Header compared without case and spaces."""
    return re.sub(r"\s+", "", name.strip().lower())


def candidate_pairs(header: Sequence[str], given: Coords) -> list[Coords]:
    """Every (x, y) column pair of a header: the flags' pair only, when given."""
    if given.x_col and given.y_col:
        for c in (given.x_col, given.y_col):
            if c not in header:
                raise LoadError(f"missing required column {c!r} (columns: {', '.join(header)})")
        return [given]
    by_norm = {norm(h): h for h in header}
    pairs: list[Coords] = []

    def add(x: str | None, y: str | None, latlon: bool) -> None:
        if x and y and x != y and not any(p.x_col == x and p.y_col == y for p in pairs):
            pairs.append(Coords(x, y, 4326 if latlon else given.epsg, latlon, given.dm))

    add(next((by_norm[n] for n in LON_NAMES if n in by_norm), None),
        next((by_norm[n] for n in LAT_NAMES if n in by_norm), None), True)
    for h in header:  # 경도 ... / 위도 ... pairs with the same decoration
        if "경도" in h:
            add(h, by_norm.get(norm(h.replace("경도", "위도"))), True)
    add(next((by_norm[n] for n in X_NAMES if n in by_norm), None),
        next((by_norm[n] for n in Y_NAMES if n in by_norm), None), False)
    for h in header:  # X ... / Y ... pairs: x좌표/y좌표, 정류장X위치값/정류장Y위치값, GPS_X/GPS_Y
        n = norm(h)
        for m in _LONE_X.finditer(n):
            add(h, by_norm.get(n[:m.start()] + "y" + n[m.end():]), False)
    return pairs


def _packed_dm(v: np.ndarray) -> np.ndarray:
    """12715.3348 -> 127 + 15.3348 / 60 (NaN where the minutes are not below 60)."""
    deg = np.floor(np.abs(v) / 100)
    minutes = np.abs(v) - deg * 100
    out = np.sign(v) * (deg + minutes / 60)
    return np.where(minutes < 60, out, np.nan)


def ddmm_to_degrees(value: float | str) -> float:
    """One packed degree-minutes value (DDDMM.mmmm: 12715.3348 = 127° 15.3348') in decimal degrees.

    Raises ValueError for what cannot be packed degree-minutes: not a finite number, negative, or minutes >= 60.
    Plain degrees are not recognised here: the caller decides that a column is packed (127.25 reads as 1° 27.25')."""
    v = float(str(value).replace(",", "").strip()) if isinstance(value, str) else float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{value!r} is not a packed degree-minutes value (DDDMM.mmmm)")
    deg = float(np.floor(v / 100))
    minutes = v - deg * 100
    if minutes >= 60:
        raise ValueError(f"{value!r}: {minutes:.4f} minutes is not below 60, so not packed degree-minutes")
    return deg + minutes / 60


def looks_packed_dm(xs: np.ndarray, ys: np.ndarray) -> bool:
    """Values read as degrees fall outside Korea, but as packed degree-minutes (DDDMM.mmmm) inside it."""
    if not len(xs):
        return False
    lon, lat = _packed_dm(xs), _packed_dm(ys)
    return bool(np.mean(crs.in_korea(lon, lat)) >= 0.9 and not np.any(crs.in_korea(xs, ys)))


@dataclass
class Reading:
    """A candidate pair read one way, with how well it places the sample rows."""

    coords: Coords
    parsed: int
    korea: float
    region: float
    spread: float
    why_not: str = ""

    @property
    def label(self) -> str:
        """'x좌표/y좌표 (EPSG:5186)'."""
        dm = ", degree-minutes" if self.coords.dm else ""
        return f"{self.coords.x_col}/{self.coords.y_col} (EPSG:{self.coords.epsg}{dm})"


def to_degrees(xs: np.ndarray, ys: np.ndarray, c: Coords) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat of values read as c says (packed degree-minutes decoded)."""
    if c.dm:
        xs, ys = _packed_dm(xs), _packed_dm(ys)
    assert c.epsg is not None
    return crs.transform(xs, ys, c.epsg, 4326)


def floats(values: Sequence[str]) -> np.ndarray:
    """Numbers of a column sample (NaN where blank or not a number)."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        with contextlib.suppress(ValueError):
            out[i] = float(v.replace(",", "").strip())
    return out


def read_pair(c: Coords, xs: np.ndarray, ys: np.ndarray, region: crs.Bbox | None) -> Reading:
    """How a pair places the sample (its CRS and degree-minutes decided by content when not given)."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if not len(xs):
        return Reading(c, 0, 0.0, 0.0, 0.0, "no numbers")
    spread = float(max(np.ptp(xs), np.ptp(ys)))
    if c.dm is None:
        c = replace(c, dm=looks_packed_dm(xs, ys))
    vx, vy = (_packed_dm(xs), _packed_dm(ys)) if c.dm else (xs, ys)
    if c.epsg is None:
        degrees = bool(np.all((np.abs(vx) <= 180) & (np.abs(vy) <= 90)))
        fits = [4326] if degrees else crs.fitting_crs(*crs.sample(vx, vy), region) or \
            crs.fitting_crs(*crs.sample(vx, vy))
        if not fits:
            return Reading(c, len(xs), 0.0, 0.0, spread, "projected coordinates that no Korean CRS places in Korea")
        c = replace(c, epsg=fits[0])
    assert c.epsg is not None
    lon, lat = crs.transform(vx, vy, c.epsg, 4326)
    if c.epsg == 4326:  # a pair named or read the other way round
        swapped = ~crs.in_korea(lon, lat) & crs.in_korea(lat, lon)
        lon, lat = np.where(swapped, lat, lon), np.where(swapped, lon, lat)
    korea = float(np.mean(crs.in_korea(lon, lat)))
    inside = float(np.mean(crs.in_bbox(lon, lat, region))) if region else korea
    why = "constant (every row has the same position)" if len(xs) > 1 and spread == 0 else ""
    return Reading(c, len(xs), korea, inside, spread, why)


def choose(label: str, header: Sequence[str], sample: Sequence[dict[str, str]], given: Coords,
           region: crs.Bbox | None) -> tuple[Coords, list[str]]:
    """The coordinate pair that places the sample rows best (region, then Korea, then spread); notes say which
    columns were used and why others were not. Constant or unplaceable coordinates are refused."""
    pairs = candidate_pairs(header, given)
    if not pairs:
        raise LoadError(f"{label}: no coordinate columns (no 위도/경도 or X/Y pair; columns: {', '.join(header)}); "
                        f"pass --lat-col/--lon-col or --x-col/--y-col")
    readings = []
    for p in pairs:
        xs = floats([r.get(p.x_col or "", "") for r in sample])
        ys = floats([r.get(p.y_col or "", "") for r in sample])
        readings.append(read_pair(p, xs, ys, region))
    usable = [r for r in readings if not r.why_not and r.korea >= 0.5]
    if not usable:
        lines = "; ".join(f"{r.coords.x_col}/{r.coords.y_col}: {r.why_not or _misplaced(r)}" for r in readings)
        raise LoadError(f"{label}: no coordinate columns place the rows: {lines}")
    best = max(usable, key=lambda r: (round(r.region, 2), round(r.korea, 2), r.parsed, not r.coords.dm))
    notes = []
    if len(readings) > 1 or best.coords.dm:
        others = "; ".join(f"{r.coords.x_col}/{r.coords.y_col} not used: {r.why_not or _misplaced(r)}"
                           for r in readings if r is not best)
        notes.append(f"{label}: coordinates from columns {best.label}" + (f"; {others}" if others else ""))
    return best.coords, notes


def _misplaced(r: Reading) -> str:
    if r.korea < 0.5:
        return f"only {r.korea:.0%} of the rows fall in Korea as EPSG:{r.coords.epsg}"
    return f"{r.region:.0%} of the rows in the region (the chosen pair does better)"
