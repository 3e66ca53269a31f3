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

from loaders import crs
from loaders.core import Column, RowStats
from loaders.errors import LoadError
from loaders.textio import decode_file
from loaders.values import CONVERTERS

LAT_NAMES = ("위도", "lat", "latitude", "y좌표(위도)", "위도(y)", "wgs84위도", "stationlatitude", "dmx")
LON_NAMES = ("경도", "lon", "lng", "long", "longitude", "x좌표(경도)", "경도(x)", "wgs84경도", "stationlongitude",
             "dmy")
X_NAMES = ("x", "x좌표", "좌표x", "좌표(x)", "xcoord", "x_coord", "tm_x", "tmx", "pos_x", "coord_x", "utmk_x")
Y_NAMES = ("y", "y좌표", "좌표y", "좌표(y)", "ycoord", "y_coord", "tm_y", "tmy", "pos_y", "coord_y", "utmk_y")
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
class Coords:
    """Coordinate columns and their CRS (None: detect from the header)."""

    x_col: str | None = None
    y_col: str | None = None
    epsg: int | None = None
    latlon: bool = False


@dataclass
class CsvRecipe:
    """How to turn a CSV into rows: fields, filters, coordinates, extra computed values."""

    fields: list[Field]
    where: dict[str, set[str]] = field(default_factory=dict)
    row_filter: Callable[[dict[str, str]], bool] | None = None
    coords: Coords = field(default_factory=Coords)
    extra: Callable[[dict[str, str]], dict[str, Any]] | None = None
    id_column: str | None = "id"


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


def find_coords(header: list[str], coords: Coords) -> Coords:
    """Resolve coordinate columns by flags or by Korean/English names."""
    norm = {_norm(h): h for h in header}
    if coords.x_col and coords.y_col:
        for c in (coords.x_col, coords.y_col):
            if c not in header:
                raise LoadError(f"missing required column {c!r} (columns: {', '.join(header)})")
        return coords
    lat = next((norm[n] for n in LAT_NAMES if n in norm), None)
    lon = next((norm[n] for n in LON_NAMES if n in norm), None)
    if lat and lon:
        return Coords(lon, lat, coords.epsg or 4326, latlon=True)
    x = next((norm[n] for n in X_NAMES if n in norm), None)
    y = next((norm[n] for n in Y_NAMES if n in norm), None)
    if x and y:
        return Coords(x, y, coords.epsg, latlon=False)
    missing = "위도" if not lat else "경도"
    raise LoadError(f"missing required column {missing!r} (no latitude/longitude or X/Y columns found; "
                    f"columns: {', '.join(header)}); pass --lat-col/--lon-col or --x-col/--y-col")


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


def generic_recipe(header: list[str]) -> tuple[CsvRecipe, list[Column]]:
    """A recipe keeping every column as text (original header as comment)."""
    names = sanitize_names(header)
    fields = [Field(n, h) for n, h in zip(names, header, strict=True)]
    cols = [Column("id", "integer"), *(Column(n, "text", h) for n, h in zip(names, header, strict=True))]
    return CsvRecipe(fields=fields), cols


def read_header(path: Path, encoding: str = "auto", label: str | None = None) -> list[str]:
    """The CSV header row (decoded)."""
    text, _ = decode_file(path, encoding, label)
    first = next(csv.reader(io.StringIO(text)), [])
    return [h.strip().lstrip("\ufeff") for h in first]


class CsvRows:
    """Iterates typed rows of a CSV file (geometry as EWKT in EPSG:5186)."""

    def __init__(self, path: Path, recipe: CsvRecipe, *, encoding: str = "auto", label: str | None = None,
                 stats: RowStats | None = None) -> None:
        self.path = path
        self.recipe = recipe
        self.label = label or path.name
        self.stats = stats or RowStats()
        self.text, self.encoding = decode_file(path, encoding, self.label)
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
        try:
            coords = find_coords(header, self.recipe.coords)
        except LoadError as exc:
            raise LoadError(f"{self.label}: {exc}") from None
        mapping = self._resolve(header)
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
                xy = self._xy(rec, coords, line)
                if xy is None:
                    self.stats.skipped += 1
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
                 converters: dict[str, tuple[Callable[[Any], Any], str]], line: int) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for col, src in mapping.items():
            if src is None:
                row[col] = None
                continue
            fn, _ = converters[col]
            try:
                row[col] = fn(rec[src])
            except ValueError as exc:
                raise LoadError(f"{self.label} line {line}, column {src}: {exc}") from None
        if self.recipe.extra:
            row.update(self.recipe.extra(rec))
        return row

    def _xy(self, rec: dict[str, str], coords: Coords, line: int) -> tuple[float, float] | None:
        assert coords.x_col and coords.y_col
        sx, sy = rec[coords.x_col].strip(), rec[coords.y_col].strip()
        if not sx or not sy:
            return None
        out = []
        for col, s in ((coords.x_col, sx), (coords.y_col, sy)):
            try:
                out.append(float(s.replace(",", "")))
            except ValueError:
                raise LoadError(f"{self.label} line {line}, column {col}: {s!r} is not a number") from None
        return out[0], out[1]

    def _flush(self, chunk: list[tuple[int, dict[str, Any], float, float]], coords: Coords) -> Iterator[dict[str, Any]]:
        if not chunk:
            return
        xs = np.array([c[2] for c in chunk])
        ys = np.array([c[3] for c in chunk])
        src = coords.epsg
        if src is None:
            src = 4326 if bool(np.all((np.abs(xs) <= 180) & (np.abs(ys) <= 90))) else 0
            if not src:
                fits = crs.fitting_crs(*crs.sample(xs, ys))
                hint = f"; they fit {' / '.join(f'EPSG:{c}' for c in fits)} — pass --epsg {fits[0]}" if fits else ""
                raise LoadError(f"{self.label}: columns {coords.x_col}/{coords.y_col} are projected coordinates "
                                f"with no CRS given{hint}")
            coords.epsg = src
        if src == 4326:
            ok = crs.in_korea(xs, ys)
            swap = ~ok & crs.in_korea(ys, xs)
            if bool(swap.any()):
                xs[swap], ys[swap] = ys[swap], xs[swap].copy()
                self.swapped += int(swap.sum())
        lon, lat = crs.transform(xs, ys, src, 4326)
        ok = crs.in_korea(lon, lat)
        if not bool(ok.all()):
            i = int(np.argmax(~ok))
            line = chunk[i][0]
            fits = [c for c in crs.fitting_crs([chunk[i][2]], [chunk[i][3]]) if c != src]
            hint = f"; it fits {' / '.join(f'EPSG:{c}' for c in fits)} — pass --epsg {fits[0]}" if fits else ""
            raise LoadError(f"{self.label} line {line}, column {coords.y_col}/{coords.x_col}: "
                            f"({chunk[i][3]}, {chunk[i][2]}) is not in Korea as EPSG:{src}{hint}")
        gx, gy = crs.transform(xs, ys, src, crs.STORAGE_SRID)
        for (_, row, _, _), x, y in zip(chunk, gx, gy, strict=True):
            row["geom"] = f"SRID={crs.STORAGE_SRID};POINT({x:.3f} {y:.3f})"
            yield row
