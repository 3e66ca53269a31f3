"""Air-quality readings: Seoul daily CSVs (OA-2218), the AirKorea OpenAPI JSON shape and AirKorea's 최종확정 hourly
CSV/xlsx layout, plus the station JS list."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl

from loaders import values
from loaders.core import RowStats
from loaders.errors import LoadError
from loaders.flat_runs import flag_flat_runs
from loaders.textio import decode_file

POLLUTANTS = ("pm10", "pm25", "o3", "no2", "co", "so2")
SEOUL_COLUMNS = {
    "no2": "이산화질소농도(ppm)", "o3": "오존농도(ppm)", "co": "일산화탄소농도(ppm)", "so2": "아황산가스농도(ppm)",
    "pm10": "미세먼지농도(㎍/㎥)", "pm25": "초미세먼지농도(㎍/㎥)",
}
MISSING = {"", "-", "--", "null", "none"}
KST = ZoneInfo("Asia/Seoul")
_STATION = re.compile(r"\{\s*stationName:\s*'([^']*)'\s*,\s*lat:\s*([-+\d.eE]+)\s*,\s*lon:\s*([-+\d.eE]+)\s*,?\s*\}")


def seoul_daily(path: Path, stats: RowStats, label: str | None = None,
                encoding: str = "auto") -> Iterator[dict[str, Any]]:
    """Rows of a Seoul 일별평균대기오염도 CSV (측정일시 YYYYMMDD, 측정소명, six pollutants; blanks -> NULL; PM values
    stuck on one value for days flagged `flat`, loaders.flat_runs).  An .xlsx or a CSV with a 측정소코드 column is
    AirKorea's 최종확정 hourly layout and is read by airkorea_final (so `./run load readings FILE` takes both)."""
    label = label or path.name
    if path.suffix.lower() == ".xlsx":
        yield from airkorea_final(path, stats, label, encoding)
        return
    text, _ = decode_file(path, encoding, label)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    if "측정소코드" in header:
        yield from airkorea_final(path, stats, label, encoding)
        return
    required = ["측정일시", "측정소명", *SEOUL_COLUMNS.values()]
    for col in required:
        if col not in header:
            raise LoadError(f"{label}: missing required column {col!r} (columns: {', '.join(header)})")
    idx = {c: header.index(c) for c in required}
    source = f"seoul-daily:{path.name}"
    rows: list[dict[str, Any]] = []
    for raw in reader:
        line = reader.line_num
        if not raw:
            continue
        if len(raw) != len(header):
            raise LoadError(f"{label} line {line}: expected {len(header)} fields, found {len(raw)} "
                            f"(truncated or malformed line)")
        try:
            when = values.timestamp(raw[idx["측정일시"]])
        except ValueError as exc:
            raise LoadError(f"{label} line {line}, column 측정일시: {exc}") from None
        row: dict[str, Any] = {"station_name": raw[idx["측정소명"]].strip(), "measured_at": when, "period": "day",
                               "source": source}
        for key, col in SEOUL_COLUMNS.items():
            try:
                row[key] = values.decimal(raw[idx[col]])
            except ValueError as exc:
                raise LoadError(f"{label} line {line}, column {col}: {exc}") from None
            row[f"{key}_flag"] = None
        rows.append(row)
    flag_flat_runs(rows)
    stats.per_source[label] = len(rows)
    yield from rows


def airkorea_json(path: Path, stats: RowStats, label: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows of an AirKorea getCtprvnRltmMesureDnsty-style JSON: '-' values become NULL, *Flag kept."""
    label = label or path.name
    text, _ = decode_file(path, "auto", label)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{label} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    items: Any = doc
    if isinstance(doc, dict):
        items = (doc.get("response", doc).get("body", {}) or {}).get("items", doc.get("items"))
        if isinstance(items, dict) and "item" in items:
            items = items["item"]
    if not isinstance(items, list):
        raise LoadError(f"{label}: no response.body.items list found")
    yield from airkorea_rows(items, stats, label, f"airkorea:{path.name}")


def airkorea_rows(items: list[Any], stats: RowStats, label: str, source: str) -> Iterator[dict[str, Any]]:
    """Rows of AirKorea real-time items: "-" or empty values are NULL, a value with a *Flag (통신장애, 점검및교정,
    자료이상 ...) is not a valid reading (NULL, flag kept)."""
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "stationName" not in item or "dataTime" not in item:
            raise LoadError(f"{label} item {i}: missing required field stationName/dataTime")
        try:
            when = values.timestamp(item["dataTime"])
        except ValueError as exc:
            raise LoadError(f"{label} item {i}, field dataTime: {exc}") from None
        if when is None:
            raise LoadError(f"{label} item {i}: empty dataTime")
        row: dict[str, Any] = {"station_name": str(item["stationName"]).strip(), "measured_at": when,
                               "period": "hour", "source": source}
        for key in POLLUTANTS:
            raw = item.get(f"{key}Value")
            flag = values.text(item.get(f"{key}Flag"))
            s = "" if raw is None else str(raw).strip()
            if s.lower() in MISSING or flag:
                row[key] = None
            else:
                try:
                    row[key] = values.decimal(s)
                except ValueError:
                    row[key] = None
                    flag = flag or s
            row[f"{key}_flag"] = flag
        yield row
    stats.per_source[label] = len(items)


def parse_stations_js(path: Path, label: str | None = None) -> list[tuple[str, float, float]]:
    """(stationName, lat, lon) from the AIR_KOREA_STATIONS JavaScript array; unparsable blocks name their line."""
    label = label or path.name
    text, _ = decode_file(path, "auto", label)
    found = [(m.group(1).strip(), float(m.group(2)), float(m.group(3)), m.start()) for m in _STATION.finditer(text)]
    starts = [m.start() for m in re.finditer(r"stationName\s*:", text)]
    parsed = {pos for *_, pos in found}
    for pos in starts:
        block_start = text.rfind("{", 0, pos)
        if block_start not in parsed:
            line = text.count("\n", 0, pos) + 1
            raise LoadError(f"{label} line {line}: cannot parse station entry (expected stationName, lat, lon)")
    if not found:
        raise LoadError(f"{label}: no stations found (expected an array of {{stationName, lat, lon}})")
    return [(n, la, lo) for n, la, lo, _ in found]


FINAL_POLLUTANTS = {"so2": "SO2", "co": "CO", "o3": "O3", "no2": "NO2", "pm10": "PM10", "pm25": "PM25"}
FINAL_OPTIONAL = {"PM25"}  # absent before AirKorea published PM2.5: stored NULL
FINAL_REQUIRED = ("측정소코드", "측정소명", "측정일시",
                  *(c for c in FINAL_POLLUTANTS.values() if c not in FINAL_OPTIONAL))
BLANK_FLAG = "blank"  # flag of a blank cell in a 최종확정 file; a negative or non-numeric marker is its own flag


def airkorea_final(path: Path, stats: RowStats, label: str | None = None,
                   encoding: str = "auto") -> Iterator[dict[str, Any]]:
    """Rows of AirKorea's 최종확정 hourly file (CSV in CP949 or UTF-8, or .xlsx): 지역, 망 (optional), 측정소코드,
    측정소명, 측정일시 (YYYYMMDDHH KST, hour 24 = 00 of the next day), SO2, CO, O3, NO2, PM10, PM25 (optional), 주소.
    Blank, negative (-999) and non-numeric values are stored NULL with a flag naming the marker; PM values stuck on
    one value for 12+ hours are flagged `flat`.  A missing column, a short row or a bad 측정일시 is a LoadError."""
    label = label or path.name
    header, records = _final_records(path, encoding, label)
    for col in FINAL_REQUIRED:
        if col not in header:
            raise LoadError(f"{label}: missing required column {col!r} (columns: {', '.join(header)})")
    idx = {c: header.index(c) for c in (*FINAL_REQUIRED, *FINAL_OPTIONAL) if c in header}
    source = f"airkorea-final:{path.name}"
    rows: list[dict[str, Any]] = []
    for line, raw in records:
        if len(raw) != len(header):
            raise LoadError(f"{label} line {line}: expected {len(header)} fields, found {len(raw)} "
                            f"(truncated or malformed line)")
        try:
            when = final_hour(raw[idx["측정일시"]])
        except ValueError as exc:
            raise LoadError(f"{label} line {line}, column 측정일시: {exc}") from None
        row: dict[str, Any] = {"station_name": raw[idx["측정소명"]].strip(), "measured_at": when, "period": "hour",
                               "source": source}
        for key, col in FINAL_POLLUTANTS.items():
            row[key], row[f"{key}_flag"] = final_value(raw[idx[col]]) if col in idx else (None, None)
        rows.append(row)
    flag_flat_runs(rows)
    stats.per_source[label] = len(rows)
    yield from rows


def final_hour(text: str) -> datetime:
    """측정일시 YYYYMMDDHH (hours 01..24, 24 = 00 of the next day) as a KST timestamp."""
    s = text.strip()
    if not re.fullmatch(r"\d{10}", s):
        raise ValueError(f"{s!r} is not YYYYMMDDHH")
    hour = int(s[8:])
    if not 1 <= hour <= 24:
        raise ValueError(f"{s!r}: hour {hour} is not 01..24")
    try:
        day = datetime.strptime(s[:8], "%Y%m%d").replace(tzinfo=KST)
    except ValueError:
        raise ValueError(f"{s!r} is not a date") from None
    return day + timedelta(hours=hour)


def final_value(text: str) -> tuple[Decimal | None, str | None]:
    """(value, flag) of one 최종확정 cell: blank, negative or non-numeric is no reading."""
    s = text.strip()
    if not s:
        return None, BLANK_FLAG
    try:
        value = Decimal(s.replace(",", ""))
    except InvalidOperation:
        return None, s
    if not value.is_finite() or value < 0:
        return None, s
    return value, None


def _final_records(path: Path, encoding: str, label: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(header, (line, cells) of each non-empty row) of a CSV or the first sheet of an .xlsx, cells as text."""
    if path.suffix.lower() == ".xlsx":
        return _xlsx_records(path, label)
    text, _ = decode_file(path, encoding, label)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    return header, ((reader.line_num, raw) for raw in reader if raw)


def _xlsx_records(path: Path, label: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise LoadError(f"{label}: not a readable .xlsx workbook ({exc})") from None
    sheet = wb.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [_cell_text(c) for c in next(rows, ())]
    while header and not header[-1]:
        header.pop()

    def records() -> Iterator[tuple[int, list[str]]]:
        try:
            for line, cells in enumerate(rows, start=2):
                texts = [_cell_text(c) for c in cells][:len(header)]
                if any(texts):
                    yield line, texts + [""] * (len(header) - len(texts))
        finally:
            wb.close()
    return header, records()


def _cell_text(cell: Any) -> str:
    """A spreadsheet cell as the text a CSV would hold (integral floats without '.0')."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()
