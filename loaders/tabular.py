"""Tables that are not CSV files — a JSON array of objects, JSON Lines, an .xlsx sheet — read as CSV text, so they
load like a CSV (coordinates chosen by content, columns typed by content); and tables loaded without geometry."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from loaders.core import BadRows, LoadResult, Meta, RowStats, SourceFile, TableSpec, load_table
from loaders.csvload import CsvRows, parse_where, read_header, typed_recipe
from loaders.errors import LoadError
from loaders.textio import decode_file

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
SUFFIXES = (*JSON_SUFFIXES, ".xlsx")
_HANGUL_GAP = re.compile(r"(?<=[가-힣])\s+(?=[가-힣])")  # '인  구  수' -> '인구수' (spaced-out table headings)


def as_csv_text(path: Path, encoding: str = "auto", sheet: str | None = None, header_row: str | None = None,
                label: str | None = None) -> str | None:
    """The table of a JSON, JSON Lines or .xlsx file as CSV text (header first); None for a CSV file."""
    label = label or path.name
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        header, rows = xlsx_table(path, sheet, header_row, label)
    elif suffix in JSON_SUFFIXES:
        if sheet or header_row:
            raise LoadError(f"{label}: --sheet and --header-row are for .xlsx files")
        header, rows = records_table(json_records(path, encoding, label))
    else:
        if sheet or header_row:
            raise LoadError(f"{label}: --sheet and --header-row are for .xlsx files")
        return None
    if not header:
        raise LoadError(f"{label}: no table found (no objects, or an empty sheet)")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def _cell(v: Any) -> str:
    """One value as CSV text: numbers exact, whole floats as integers, dates ISO, objects as JSON."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) and v.tzinfo is None else v.isoformat(sep=" ")
    if isinstance(v, (date, time)):
        return v.isoformat()
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v).strip()


def json_records(path: Path, encoding: str, label: str) -> list[dict[str, Any]]:
    """The objects of a JSON array (also nested, e.g. response.body.items.item of data.go.kr) or of JSON Lines."""
    text, _ = decode_file(path, encoding, label)
    text = text.lstrip("\ufeff")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _json_lines(text, label)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{") and "\n{" in text:
            return _json_lines(text, label)
        raise LoadError(f"{label} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(doc, dict) and doc.get("type") in ("FeatureCollection", "Feature", "Topology"):
        raise LoadError(f"{label}: this is GeoJSON/TopoJSON; load it with `python -m loaders file {path.name}`")
    found = _find_records(doc, 0)
    if found is None:
        raise LoadError(f"{label}: no array of objects found (expected [{{...}}, ...] or JSON Lines)")
    return found


def _json_lines(text: str, label: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoadError(f"{label} line {n}: not a JSON object ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise LoadError(f"{label} line {n}: expected one JSON object per line, found {type(obj).__name__}")
        out.append(obj)
    return out


def _find_records(doc: Any, depth: int) -> list[dict[str, Any]] | None:
    """The longest array of objects within four levels."""
    if isinstance(doc, list):
        return doc if doc and all(isinstance(o, dict) for o in doc) else None
    if not isinstance(doc, dict) or depth > 4:
        return None
    best: list[dict[str, Any]] | None = None
    for v in doc.values():
        found = _find_records(v, depth + 1)
        if found and (best is None or len(found) > len(best)):
            best = found
    return best


def records_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header (every key, in first-seen order; nested objects flattened one level) and rows of text."""
    flat = [_flatten(r) for r in records]
    header: dict[str, None] = {}
    for r in flat:
        for k in r:
            header.setdefault(k, None)
    cols = list(header)
    return cols, [[_cell(r.get(c)) for c in cols] for r in flat]


def _flatten(rec: dict[str, Any]) -> dict[str, Any]:
    """{'location': {'lat': ..}} -> {'lat': ..} (or 'location_lat' when the key exists at the top)."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, dict) and v and not any(isinstance(x, (dict, list)) for x in v.values()):
            for ck, cv in v.items():
                out[f"{k}_{ck}" if ck in rec or ck in out else str(ck)] = cv
        else:
            out[str(k)] = v
    return out


def _header_rows(spec: str | None) -> tuple[int, int] | None:
    """'5' -> (5, 5); '5-7' -> (5, 7) (1-based sheet rows)."""
    if spec is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[-:]\s*(\d+))?\s*", str(spec))
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < int(m.group(1))):
        raise LoadError(f"--header-row {spec!r}: give a sheet row (e.g. 5) or a range of heading rows (e.g. 5-7)")
    return int(m.group(1)), int(m.group(2) or m.group(1))


def xlsx_table(path: Path, sheet: str | None, header_row: str | None,
               label: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one sheet: the header from --header-row (a range joins stacked headings, merged cells
    filled), else the first row with two values; the rows below it up to the first blank row."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException
        raise LoadError(f"{label}: not a readable .xlsx workbook ({exc})") from None
    names = wb.sheetnames
    if sheet is None:
        ws = wb[names[0]]
    elif sheet in names:
        ws = wb[sheet]
    elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
        ws = wb[names[int(sheet) - 1]]
    else:
        raise LoadError(f"{label}: no sheet {sheet!r}; --sheet takes a name or a number (1 = first): "
                        f"{', '.join(names)}")
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    rows_range = _header_rows(header_row)
    if rows_range is None:
        first = next((i for i, r in enumerate(grid) if sum(v is not None and str(v).strip() != "" for v in r) >= 2),
                     None)
        if first is None:
            return [], []
        rows_range = (first + 1, first + 1)
    h0, h1 = rows_range
    if h1 > len(grid):
        raise LoadError(f"{label}: sheet {ws.title!r} has {len(grid)} rows; --header-row {header_row} is beyond them")
    for rng in ws.merged_cells.ranges:  # a heading spanning columns or rows names each of them
        if rng.max_row < h0 or rng.min_row > h1:
            continue
        top = grid[rng.min_row - 1][rng.min_col - 1]
        for r in range(max(rng.min_row, h0), min(rng.max_row, h1) + 1):
            for c in range(rng.min_col, rng.max_col + 1):
                grid[r - 1][c - 1] = top
    width = max((len(r) for r in grid), default=0)
    heads: list[str] = []
    for c in range(width):
        parts: list[str] = []
        for r in range(h0 - 1, h1):
            v = grid[r][c] if c < len(grid[r]) else None
            text = _HANGUL_GAP.sub("", " ".join(_cell(v).split())) if v is not None else ""
            if text and text not in parts:
                parts.append(text)
        heads.append(" ".join(parts))
    body: list[list[str]] = []
    for line in grid[h1:]:
        cells = [_cell(line[c]) if c < len(line) else "" for c in range(width)]
        if not any(cells):
            if body:
                break  # the table ends at its first blank row (footnotes follow)
            continue
        body.append(cells)
    keep = [c for c in range(width) if heads[c] or any(row[c] for row in body)]
    header = [heads[c] or f"col_{c + 1}" for c in keep]
    return header, [[row[c] for c in keep] for row in body]


def load_attributes(dsn: str, path: Path, table: str, source: SourceFile, *, encoding: str = "auto",
                    where: list[str] | None = None, types: list[str] | None = None, meta: Meta | None = None,
                    max_rows: int | None = None, bad_rows: BadRows | None = None, replace: bool = False,
                    max_shrink: float | None = None, text: str | None = None) -> LoadResult:
    """Load a table without coordinates (e.g. population per 행정동, joined by name): typed columns, no geometry."""
    label = path.name
    if text is None:
        text, _ = decode_file(path, encoding, label)
    header = read_header(path, encoding, label, text=text)
    if not any(header):
        raise LoadError(f"{label}: the file is empty (no header row)")
    recipe, cols = typed_recipe(header, text, types)
    recipe.where = parse_where(where)
    spec = TableSpec(table, cols, None)
    stats = RowStats()
    reader = CsvRows(path, recipe, label=label, stats=stats, text=text)
    return load_table(dsn, spec, _attribute_rows(reader, header), label=label, sources=[source],
                      meta=meta or Meta(path.stem), stats=stats, max_rows=max_rows, total=reader.total,
                      bad_rows=bad_rows, replace=replace, max_shrink=max_shrink)


def _attribute_rows(reader: CsvRows, header: list[str]) -> Iterator[dict[str, Any]]:
    """Typed rows of a table without geometry (ids numbered from 1)."""
    from loaders.values import CONVERTERS

    mapping = {f.column: (f.source if isinstance(f.source, str) else f.source[0]) for f in reader.recipe.fields}
    converters = {f.column: (CONVERTERS[f.kind], f.kind) for f in reader.recipe.fields}
    for col in reader.recipe.where:
        if col not in header:
            raise LoadError(f"{reader.label}: --where column {col!r} not in the file (columns: {', '.join(header)})")
    rows = csv.reader(io.StringIO(reader.text))
    next(rows, None)
    width, next_id = len(header), 1
    try:
        for raw in rows:
            if not raw or not any(v.strip() for v in raw):
                continue
            if len(raw) != width:
                if len(raw) > width and not any(v.strip() for v in raw[width:]):
                    raw = raw[:width]
                else:
                    raise LoadError(f"{reader.label} line {rows.line_num}: expected {width} fields, found {len(raw)}")
            rec = dict(zip(header, raw, strict=True))
            if not reader._keep(rec):
                continue
            row = reader._convert(rec, dict(mapping), converters, rows.line_num)
            if row is None:
                continue
            row["id"] = next_id
            next_id += 1
            yield row
    except csv.Error as exc:
        raise LoadError(f"{reader.label} line {rows.line_num}: malformed CSV ({exc})") from exc
