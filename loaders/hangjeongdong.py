"""Monthly 행정동 population sheets (세종시 인구현황 xlsx) and 행정동 polygons dissolved from 법정동 boundaries.

Each sheet is one month: a stacked heading ('구 분' / '전체인구' / '내국인 계' / '남' ...), a 계 (total) row, one row
per 행정동 whose name may carry a footnote marker ('한솔동1)'), and a footnote line saying which 법정동 the marked units
include ('1) 가람동 포함  2) 산울동 포함  3) 집현동,합강동 포함'). Headings and rows are found by their text, never by
row number, so a sheet with another layout is read the same way or refused naming what is missing.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import openpyxl
import shapely

from loaders.errors import LoadError

_SPACE = re.compile(r"\s+")
_MONTH = re.compile(r"(\d{4}|\d{2})\s*년\s*(\d{1,2})\s*월")
_MARKED = re.compile(r"^(.*?)(\d+)\)$")
_NOTE_SPLIT = re.compile(r"(?:^|(?<=\s))(\d+)\)")
_INCLUDES = re.compile(r"((?:[가-힣]+\s*,\s*)*[가-힣]+)\s*포함")
_TOTAL_NAMES = ("계", "합계", "총계")
# column key -> heading text (whitespace removed) of the deepest heading cell of that column
HEADINGS: dict[str, tuple[str, ...]] = {
    "population": ("전체인구(내국인+외국인)", "전체인구"),
    "korean": ("내국인계",),
    "male_korean": ("남",),
    "female_korean": ("여",),
    "foreigners": ("외국인계",),
    "male_foreign": ("외국인남",),
    "female_foreign": ("외국인여",),
    "households": ("세대수(외국인제외)", "세대수"),
}


@dataclass
class UnitRow:
    """One row of a month's sheet: a 행정동 (or the 계 total) with its counts."""

    name: str
    marker: int | None
    counts: dict[str, int]
    line: int

    @property
    def population(self) -> int:
        """내국인 + 외국인."""
        return self.counts["population"]


@dataclass
class MonthSheet:
    """One month: its units in sheet order, the sheet's own total row and the footnotes (marker -> 법정동)."""

    sheet: str
    month: date
    units: list[UnitRow]
    total: UnitRow
    footnotes: dict[int, list[str]] = field(default_factory=dict)

    def grouping(self) -> dict[str, list[str]]:
        """행정동 -> the 법정동 it covers: itself, plus what its footnote says it includes."""
        out: dict[str, list[str]] = {}
        for u in self.units:
            extra = self.footnotes.get(u.marker, []) if u.marker is not None else []
            out[u.name] = list(dict.fromkeys([u.name, *extra]))
        return out


def _text(v: Any) -> str:
    return _SPACE.sub("", str(v)) if v is not None else ""


def sheet_month(name: str, title: str = "") -> date:
    """'23년 8월' (or a title '2023년 8월 …') -> 2023-08-01."""
    m = _MONTH.search(name) or _MONTH.search(title)
    if not m:
        raise LoadError(f"sheet {name!r}: no month in its name or title (expected like '23년 8월')")
    year, month = int(m.group(1)), int(m.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise LoadError(f"sheet {name!r}: month {month} is not 1-12")
    return date(year, month, 1)


def parse_footnotes(text: str) -> dict[int, list[str]]:
    """'1) 가람동 포함  2) 집현동,합강동 포함' -> {1: ['가람동'], 2: ['집현동', '합강동']} (other remarks ignored)."""
    parts = _NOTE_SPLIT.split(text)
    out: dict[int, list[str]] = {}
    for num, seg in zip(parts[1::2], parts[2::2], strict=True):
        m = _INCLUDES.search(seg)
        if m:
            out[int(num)] = re.findall(r"[가-힣]+", m.group(1))
    return out


def _number(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return round(v)
    text = str(v).replace(",", "").strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def _columns(rows: list[tuple[Any, ...]], head: int, first_data: int, label: str) -> dict[str, int]:
    """Column index of each HEADINGS key, from the deepest heading text of every column."""
    deepest: dict[int, str] = {}
    for r in rows[head:first_data]:
        for j, v in enumerate(r):
            if _text(v):
                deepest[j] = _text(v)
    found: dict[str, int] = {}
    for key, names in HEADINGS.items():
        for want in names:
            hit = next((j for j, t in sorted(deepest.items()) if t == want), None)
            if hit is not None:
                found[key] = hit
                break
    missing = [HEADINGS[k][0] for k in HEADINGS if k not in found]
    if missing:
        raise LoadError(f"{label}: heading(s) not found: {', '.join(missing)} (headings: "
                        f"{', '.join(dict.fromkeys(deepest.values()))})")
    return found


def parse_sheet(ws: Any, label: str) -> MonthSheet:
    """One month's sheet: heading by its '구분' cell, rows by a name and numbers, footnotes by '포함'."""
    rows = [tuple(r) for r in ws.iter_rows(values_only=True)]
    head = name_col = None
    for i, r in enumerate(rows):
        j = next((j for j, v in enumerate(r) if _text(v) == "구분"), None)
        if j is not None:
            head, name_col = i, j
            break
    if head is None or name_col is None:
        raise LoadError(f"{label}: no heading cell '구 분' found")
    first_data = next((i for i in range(head + 1, len(rows)) if _text(rows[i][name_col]) in _TOTAL_NAMES
                       or (_text(rows[i][name_col]) and any(_number(v) is not None for v in rows[i][name_col + 1:]))),
                      None)
    if first_data is None:
        raise LoadError(f"{label}: no data rows below the heading")
    cols = _columns(rows, head, first_data, label)
    units: list[UnitRow] = []
    total = None
    notes: dict[int, list[str]] = {}
    for i in range(first_data, len(rows)):
        r = rows[i]
        raw = _text(r[name_col]) if name_col < len(r) else ""
        counts = {k: _number(r[j]) if j < len(r) else None for k, j in cols.items()}
        if raw and counts["population"] is not None:
            missing = [k for k, v in counts.items() if v is None]
            if missing:
                raise LoadError(f"{label} row {i + 1} ({raw}): no number under {', '.join(missing)}")
            m = _MARKED.match(raw)
            name, marker = (m.group(1), int(m.group(2))) if m else (raw, None)
            row = UnitRow(name, marker, {k: int(v) for k, v in counts.items() if v is not None}, i + 1)
            if name in _TOTAL_NAMES:
                total = row
            else:
                units.append(row)
        else:
            for v in r:
                if isinstance(v, str) and "포함" in v:
                    notes.update(parse_footnotes(v))
    if total is None:
        raise LoadError(f"{label}: no total row (계)")
    if not units:
        raise LoadError(f"{label}: no 행정동 rows")
    title = next((str(v) for r in rows[:head] for v in r if isinstance(v, str) and "년" in v), "")
    return MonthSheet(ws.title, sheet_month(ws.title, title), units, total, notes)


def parse_workbook(data: bytes, label: str) -> list[MonthSheet]:
    """Every month of the workbook, oldest first (two sheets for one month are refused)."""
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise LoadError(f"{label}: not a readable .xlsx ({exc})") from None
    try:
        months = [parse_sheet(ws, f"{label} sheet {ws.title!r}") for ws in wb.worksheets]
    finally:
        wb.close()
    seen: dict[date, str] = {}
    for m in months:
        if m.month in seen:
            raise LoadError(f"{label}: sheets {seen[m.month]!r} and {m.sheet!r} are both {m.month:%Y-%m}")
        seen[m.month] = m.sheet
    return sorted(months, key=lambda m: m.month)


@dataclass
class UnitShape:
    """A 행정동 of one month as a polygon: dissolved from its 법정동, or None with the names that matched nothing."""

    geom: shapely.Geometry | None
    unmatched: list[str]


class Dissolver:
    """행정동 polygons from the 법정동 polygons (EPSG:5186), one union per distinct grouping."""

    def __init__(self, legal: Mapping[str, shapely.Geometry]) -> None:
        self.legal = dict(legal)
        self._cache: dict[tuple[str, ...], shapely.Geometry] = {}

    def unit(self, members: Iterable[str]) -> UnitShape:
        """The union of the named 법정동 (None when any name has no polygon: never a partial unit)."""
        names = tuple(members)
        unmatched = [n for n in names if n not in self.legal]
        if unmatched:
            return UnitShape(None, unmatched)
        key = tuple(sorted(names))
        if key not in self._cache:
            merged = shapely.union_all([self.legal[n] for n in key])
            polys = [g for g in getattr(merged, "geoms", [merged]) if g.geom_type == "Polygon"]
            self._cache[key] = shapely.MultiPolygon(polys)
        return UnitShape(self._cache[key], [])
