"""Air-quality readings: Seoul daily CSVs (OA-2218) and the AirKorea OpenAPI JSON shape, plus the station JS list."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
_STATION = re.compile(r"\{\s*stationName:\s*'([^']*)'\s*,\s*lat:\s*([-+\d.eE]+)\s*,\s*lon:\s*([-+\d.eE]+)\s*,?\s*\}")


def seoul_daily(path: Path, stats: RowStats, label: str | None = None,
                encoding: str = "auto") -> Iterator[dict[str, Any]]:
    """Rows of a Seoul 일별평균대기오염도 CSV (측정일시 YYYYMMDD, 측정소명, six pollutants; blanks -> NULL; PM values
    stuck on one value for days flagged `flat`, loaders.flat_runs)."""
    label = label or path.name
    text, _ = decode_file(path, encoding, label)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
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
