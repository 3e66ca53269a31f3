"""CSV sources: header mapping, region filters, coordinate columns, typed rows with line-exact errors."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loaders import coords as coordcols
from loaders import crs
from loaders.coords import Coords
from loaders.core import Column, RowStats
from loaders.errors import LoadError
from loaders.textio import decode_file
from loaders.values import CONVERTERS, PG_TYPES, infer_types, type_name

CHUNK = 5000


@dataclass
class Field:
    """Target column <- first present source header, converted by kind (text/int/number/numeric/date/...)."""

    column: str
    source: str | tuple[str, ...]
    kind: str = "text"
    required: bool = False

    @property
    def sources(self) -> tuple[str, ...]:
        """Candidate source headers."""
        return (self.source,) if isinstance(self.source, str) else self.source


@dataclass
class CsvRecipe:
    """How to turn a CSV into rows: fields, filters, coordinates, extra computed values."""

    fields: list[Field]
    where: dict[str, set[str]] = field(default_factory=dict)
    row_filter: Callable[[dict[str, str]], bool] | None = None
    coords: Coords = field(default_factory=Coords)
    extra: Callable[[dict[str, str]], dict[str, Any]] | None = None
    id_column: str | None = "id"
    set_aside_bad_values: bool = False  # a value its column's type cannot read: set the row aside (else refuse)


def _norm(name: str) -> str:
    return re.sub(r"\s+", "", name.strip().lower())


def parse_where(items: list[str] | None) -> dict[str, set[str]]:
    """['제공기관명=세종특별자치시', ...] -> {column: {values}} (same column: OR; different columns: AND)."""
    out: dict[str, set[str]] = {}
    for item in items or []:
        if "=" not in item:
            raise LoadError(f"--where {item!r}: expected COLUMN=VALUE")
        k, v = item.split("=", 1)
        out.setdefault(k.strip(), set()).add(v.strip())
    return out


def sanitize_names(header: list[str]) -> list[str]:
    """Safe snake_case column names for a generic table (Korean letters kept)."""
    out: list[str] = []
    for i, h in enumerate(header):
        n = re.sub(r"\W+", "_", h.strip().lower()).strip("_") or f"col_{i + 1}"
        if n[0].isdigit():
            n = f"c_{n}"
        if n in ("id", "geom"):
            n = f"{n}_src"
        base, k = n[:55], 2
        while n in out:
            n = f"{base}_{k}"
            k += 1
        out.append(n)
    return out


def generic_recipe(header: list[str], kinds: list[str] | None = None) -> tuple[CsvRecipe, list[Column]]:
    """A recipe for a table without a bundled recipe: each column of its kind (default text; see typed_recipe),
    the original header as its comment."""
    names = sanitize_names(header)
    kinds = kinds or ["text"] * len(header)
    fields = [Field(n, h, k) for n, h, k in zip(names, header, kinds, strict=True)]
    cols = [Column("id", "integer"),
            *(Column(n, PG_TYPES[k], h) for n, h, k in zip(names, header, kinds, strict=True))]
    return CsvRecipe(fields=fields, set_aside_bad_values=True), cols


def parse_types(items: list[str] | None, header: list[str]) -> dict[str, str]:
    """['인구=integer', ...] -> {source header: type}; a header that is not in the file is refused."""
    out: dict[str, str] = {}
    by_name = {**dict(zip(sanitize_names(header), header, strict=True)), **{h: h for h in header}}
    for item in items or []:
        col, sep, kind = item.rpartition("=")
        if not sep or not col.strip():
            raise LoadError(f"--types {item!r}: expected COLUMN=TYPE, e.g. 인구수=integer")
        if col.strip() not in by_name:
            raise LoadError(f"--types {item!r}: no column {col.strip()!r} (columns: {', '.join(header)})")
        try:
            out[by_name[col.strip()]] = type_name(kind)
        except ValueError as exc:
            raise LoadError(f"--types {item!r}: {exc}") from None
    return out


def typed_recipe(header: list[str], text: str, types: list[str] | None = None,
                 skip: int = 1) -> tuple[CsvRecipe, list[Column]]:
    """A generic recipe whose columns are typed by content (integer, numeric, date, timestamp, boolean, text) over
    every row of the CSV text (skipping `skip` header lines); `types` (COL=TYPE) overrides."""
    reader = csv.reader(io.StringIO(text))
    for _ in range(skip):
        next(reader, None)
    try:
        kinds = infer_types(header, reader)
    except csv.Error:
        kinds = ["text"] * len(header)  # the row pass reports the malformed line
    for col, kind in parse_types(types, header).items():
        kinds[header.index(col)] = kind
    return generic_recipe(header, kinds)


def read_header(path: Path, encoding: str = "auto", label: str | None = None, text: str | None = None) -> list[str]:
    """The CSV header row (decoded; `text`: the file already decoded)."""
    if text is None:
        text, _ = decode_file(path, encoding, label)
    first = next(csv.reader(io.StringIO(text)), [])
    return [h.strip().lstrip("\ufeff") for h in first]


class CsvRows:
    """Iterates typed rows of a CSV file (geometry as EWKT in EPSG:5186)."""

    def __init__(self, path: Path, recipe: CsvRecipe, *, encoding: str = "auto", label: str | None = None,
                 stats: RowStats | None = None, region: crs.Bbox | None = None, text: str | None = None) -> None:
        self.path = path
        self.recipe = recipe
        self.label = label or path.name
        self.stats = stats or RowStats()
        self.region = region
        # text: the table already decoded (a CSV read once to type its columns, or JSON/xlsx records as CSV)
        self.text, self.encoding = (text, "utf-8") if text is not None else decode_file(path, encoding, self.label)
        self.total = max(self.text.count("\n") - 1, 1)
        self.swapped = 0

    def _resolve(self, header: list[str]) -> dict[str, str | None]:
        present = set(header)
        out: dict[str, str | None] = {}
        for f in self.recipe.fields:
            src = next((s for s in f.sources if s in present), None)
            if src is None and f.required:
                raise LoadError(f"{self.label}: missing required column {f.sources[0]!r} "
                                f"(columns: {', '.join(header)})")
            out[f.column] = src
        for col in self.recipe.where:
            if col not in present:
                raise LoadError(f"{self.label}: --where column {col!r} not in the file (columns: {', '.join(header)})")
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        reader = csv.reader(io.StringIO(self.text))
        header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
        if not any(header):
            raise LoadError(f"{self.label}: the file is empty (no header row)")
        mapping = self._resolve(header)
        coords = self._choose_coords(header)
        converters = {f.column: (CONVERTERS[f.kind], f.kind) for f in self.recipe.fields}
        width = len(header)
        chunk: list[tuple[int, dict[str, Any], float, float]] = []
        next_id = 1
        try:
            for raw in reader:
                line = reader.line_num
                if not raw:
                    continue
                if len(raw) != width:
                    if len(raw) > width and not any(v.strip() for v in raw[width:]):
                        raw = raw[:width]
                    else:
                        raise LoadError(f"{self.label} line {line}: expected {width} fields, found {len(raw)} "
                                        f"(truncated or malformed line)")
                rec = dict(zip(header, raw, strict=True))
                if not self._keep(rec):
                    continue
                row = self._convert(rec, mapping, converters, line)
                if row is None:
                    continue
                xy = self._xy(rec, coords, line)
                if xy is None:
                    continue
                if self.recipe.id_column:
                    row[self.recipe.id_column] = next_id
                    next_id += 1
                chunk.append((line, row, xy[0], xy[1]))
                if len(chunk) >= CHUNK:
                    yield from self._flush(chunk, coords)
                    chunk = []
        except csv.Error as exc:
            raise LoadError(f"{self.label} line {reader.line_num}: malformed CSV ({exc})") from exc
        yield from self._flush(chunk, coords)
        if self.swapped:
            self.stats.notes.append(f"{self.label}: {self.swapped} rows had latitude/longitude swapped (fixed)")

    def _keep(self, rec: dict[str, str]) -> bool:
        for col, values in self.recipe.where.items():
            if rec.get(col, "").strip() not in values:
                return False
        return self.recipe.row_filter is None or self.recipe.row_filter(rec)

    def _convert(self, rec: dict[str, str], mapping: dict[str, str | None],
                 converters: dict[str, tuple[Callable[[Any], Any], str]], line: int) -> dict[str, Any] | None:
        """The typed row; None when a value does not read as its column's type and the row was set aside."""
        row: dict[str, Any] = {}
        for col, src in mapping.items():
            if src is None:
                row[col] = None
                continue
            fn, kind = converters[col]
            try:
                row[col] = fn(rec[src])
            except ValueError as exc:
                if not self.recipe.set_aside_bad_values:
                    raise LoadError(f"{self.label} line {line}, column {src}: {exc}") from None
                self.stats.type_failure(self.label, line, src, f"{exc} (column typed {kind}; "
                                        f"override with --types {src}=text)")
                return None
        if self.recipe.extra:
            row.update(self.recipe.extra(rec))
        return row

    def _choose_coords(self, header: list[str]) -> Coords:
        """The coordinate pair placing the kept rows best (first 5,000), checked against the region."""
        sample: list[dict[str, str]] = []
        reader = csv.reader(io.StringIO(self.text))
        next(reader, None)
        try:
            for raw in reader:
                if len(raw) >= len(header):
                    rec = dict(zip(header, raw[:len(header)], strict=True))
                    if self._keep(rec):
                        sample.append(rec)
                        if len(sample) >= 5000:
                            break
        except csv.Error:
            pass  # the main pass reports the line
        if not sample:  # nothing to load: the main pass says so
            pairs = coordcols.candidate_pairs(header, self.recipe.coords)
            if pairs:
                return pairs[0]
        try:
            chosen, notes = coordcols.choose(self.label, header, sample, self.recipe.coords, self.region)
        except LoadError as exc:
            raise LoadError(str(exc) if str(exc).startswith(self.label) else f"{self.label}: {exc}") from None
        self.stats.notes.extend(notes)
        if self.region and chosen.epsg is not None and sample:
            xs = coordcols.floats([r[chosen.x_col or ""] for r in sample])
            ys = coordcols.floats([r[chosen.y_col or ""] for r in sample])
            ok = np.isfinite(xs) & np.isfinite(ys)
            vx, vy = xs[ok], ys[ok]
            if chosen.dm:
                vx, vy = coordcols.to_degrees(vx, vy, Coords(epsg=4326, dm=True))
            crs.check_region(vx, vy, chosen.epsg, self.region, self.label, f"columns {chosen.x_col}/{chosen.y_col}")
        return chosen

    def _xy(self, rec: dict[str, str], coords: Coords, line: int) -> tuple[float, float] | None:
        """The row's two numbers; a row without them is set aside (stats.rejects) and None returned."""
        assert coords.x_col and coords.y_col
        out = []
        for col, s in ((coords.x_col, rec[coords.x_col].strip()), (coords.y_col, rec[coords.y_col].strip())):
            if not s:
                self.stats.reject(self.label, line, col, "no coordinate (empty)")
                return None
            try:
                out.append(float(s.replace(",", "")))
            except ValueError:
                self.stats.reject(self.label, line, col, f"{s!r} is not a number")
                return None
        return out[0], out[1]

    def _flush(self, chunk: list[tuple[int, dict[str, Any], float, float]], coords: Coords) -> Iterator[dict[str, Any]]:
        if not chunk:
            return
        xs = np.array([c[2] for c in chunk])
        ys = np.array([c[3] for c in chunk])
        src = coords.epsg
        assert src is not None
        if coords.dm:
            xs, ys = coordcols.to_degrees(xs, ys, Coords(epsg=4326, dm=True))
        if src == 4326:
            ok = crs.in_korea(xs, ys)
            swap = ~ok & crs.in_korea(ys, xs)
            if bool(swap.any()):
                xs[swap], ys[swap] = ys[swap], xs[swap].copy()
                self.swapped += int(swap.sum())
        lon, lat = crs.transform(xs, ys, src, 4326)
        ok = crs.in_korea(lon, lat)
        gx, gy = crs.transform(xs, ys, src, crs.STORAGE_SRID)
        for (line, row, x0, y0), good, x, y in zip(chunk, ok, gx, gy, strict=True):
            if not good:
                self.stats.reject(self.label, line, f"{coords.x_col}/{coords.y_col}",
                                  f"({x0:g}, {y0:g}) is not in Korea as EPSG:{src}")
                continue
            row["geom"] = f"SRID={crs.STORAGE_SRID};POINT({x:.3f} {y:.3f})"
            yield row
