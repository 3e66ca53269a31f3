"""Sejong bus data of the 세종시 공공데이터 zip: stops, route stop sequences, route list, headways, busiest stops.

Positions are packed degree-minutes (정류장x위치값 12715.3348 = 127° 15.3348'), decoded explicitly with
loaders.coords.ddmm_to_degrees and checked against the region of config.yml; a position that cannot be decoded or
falls outside the region is a reject (file, line, column, reason), never a point at a wrong place.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.config import load_config
from loaders import crs
from loaders.coords import ddmm_to_degrees
from loaders.core import RowStats
from loaders.csvload import CsvRecipe, CsvRows
from loaders.errors import LoadError
from loaders.textio import decode_bytes, member_names

ZIP = "sejong/public-data-2023/세종시데이터.zip"
STOPS = "_정류장정보_"
SEQUENCES = "_노선별 정류장현황_"
ROUTES = "_노선정보_"
SERVICES = "버스운행 현황"
BUSIEST = "최다 이용 정류장"
PUBLISHER = "© 세종특별자치시, 공공데이터포털 (KOGL)"
_MINUTES = re.compile(r"(\d+(?:\.\d+)?)")
_RUNS = re.compile(r"(\d+)\s*회")
_STOP_ID = re.compile(r"\((\d+)\)\s*$")


def member_text(path: Path, fragment: str) -> tuple[str, str]:
    """(label, decoded text) of the one CSV member whose (CP949-decoded) name contains `fragment`."""
    hits = [(n, i) for n, i in member_names(path).items() if fragment in n and n.endswith(".csv")]
    if len(hits) != 1:
        raise LoadError(f"{path.name}: expected one CSV member named like {fragment!r}, found {[n for n, _ in hits]}")
    name, info = hits[0]
    label = f"{ZIP}/{name}"
    with zipfile.ZipFile(path) as zf:
        text, _ = decode_bytes(zf.read(info), "auto", label)
    return label, text


def pack_csv_builder(fragment: str, recipe: CsvRecipe) -> Callable[[Path, RowStats], CsvRows]:
    """A builder reading one CSV member of the data pack with a recipe, placed against config.yml's region."""
    def build(data_dir: Path, stats: RowStats) -> CsvRows:
        path = data_dir / ZIP
        label, text = member_text(path, fragment)
        return CsvRows(path, recipe, label=label, stats=stats, text=text, region=load_config().data.region)
    return build


def records(text: str, label: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV text whose header must hold `required` (refused naming the columns otherwise)."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise LoadError(f"{label}: missing required column(s) {', '.join(missing)} (columns: {', '.join(header)})")
    try:
        for raw in reader:
            if not any(v.strip() for v in raw):
                continue
            if len(raw) != len(header):
                raise LoadError(f"{label} line {reader.line_num}: expected {len(header)} fields, found {len(raw)}")
            yield reader.line_num, {h: v.strip() for h, v in zip(header, raw, strict=True)}
    except csv.Error as exc:
        raise LoadError(f"{label} line {reader.line_num}: malformed CSV ({exc})") from exc


def place_ddmm(x_text: str, y_text: str, region: crs.Bbox) -> tuple[float, float]:
    """EPSG:5186 (x, y) of a packed degree-minutes pair; ValueError with the reason when it cannot be decoded or
    falls outside the region."""
    lon, lat = ddmm_to_degrees(x_text), ddmm_to_degrees(y_text)
    x0, y0, x1, y1 = region
    if not (x0 <= lon <= x1 and y0 <= lat <= y1):
        raise ValueError(f"({x_text}, {y_text}) decodes to lon {lon:.5f}, lat {lat:.5f}, outside the region "
                         f"[{x0:g}, {y0:g}, {x1:g}, {y1:g}] (config.yml data.region)")
    return storage_xy(lon, lat)


def storage_xy(lon: float, lat: float) -> tuple[float, float]:
    """Lon/lat in the storage CRS (EPSG:5186)."""
    x, y = crs.transformer(4326, crs.STORAGE_SRID).transform(lon, lat)
    return float(x), float(y)


def parse_headway(text: str) -> tuple[int | None, int | None]:
    """(min, max) minutes of a published 배차간격: '10~15분', '6-12분', '20분', '평일 15분 주말 및 공휴일 20분'."""
    values = [float(v) for v in _MINUTES.findall(text or "")]
    if not values:
        return None, None
    return round(min(values)), round(max(values))


def parse_runs(text: str) -> int | None:
    """Runs per day of a published 운행횟수 ('9회'); None when blank."""
    m = _RUNS.search(text or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Service:
    """One row of 버스운행 현황: a route number's service type, headway and runs per day."""

    route_no: str
    service_type: str
    headway_text: str
    headway_min: int | None
    headway_max: int | None
    runs_per_day: int | None


def services(path: Path) -> dict[str, Service]:
    """버스운행 현황 by route number."""
    label, text = member_text(path, SERVICES)
    out: dict[str, Service] = {}
    for _, r in records(text, label, ("구분", "노선번호", "배차간격", "운행횟수")):
        lo, hi = parse_headway(r["배차간격"])
        out[r["노선번호"]] = Service(r["노선번호"], r["구분"], r["배차간격"], lo, hi, parse_runs(r["운행횟수"]))
    return out


def service_of(route_no: str, known: dict[str, Service]) -> Service | None:
    """The service row of a route: its own number, else the base number of a direction variant (340-1 -> 340)."""
    if route_no in known:
        return known[route_no]
    return known.get(route_no.split("-", 1)[0])


def busiest(path: Path) -> dict[str, tuple[int, int]]:
    """(boardings, alightings) by stop id of the busiest-stops list ('조치원역(6800001)')."""
    label, text = member_text(path, BUSIEST)
    out: dict[str, tuple[int, int]] = {}
    for line, r in records(text, label, ("정류장명", "승차", "하차")):
        m = _STOP_ID.search(r["정류장명"])
        if not m:
            raise LoadError(f"{label} line {line}: no stop id in {r['정류장명']!r} (expected 'name(6800001)')")
        out[m.group(1)] = (int(r["승차"].replace(",", "")), int(r["하차"].replace(",", "")))
    return out


@dataclass(frozen=True)
class SequenceStop:
    """One row of 노선별 정류장현황: a route's stop at a position of its sequence."""

    line: int
    route_no: str
    route_name: str
    mode: str
    stop_id: str
    stop_name: str
    order: int
    x: str
    y: str


def sequences(path: Path) -> tuple[str, dict[str, list[SequenceStop]]]:
    """(label, route number -> its stops ordered by 정류장순서)."""
    label, text = member_text(path, SEQUENCES)
    out: dict[str, list[SequenceStop]] = {}
    for line, r in records(text, label, ("교통수단", "노선번호", "노선명", "정류장ID", "정류장명", "정류장순서",
                                         "X좌표", "Y좌표")):
        try:
            order = int(r["정류장순서"])
        except ValueError:
            raise LoadError(f"{label} line {line}, column 정류장순서: {r['정류장순서']!r} is not a number") from None
        out.setdefault(r["노선번호"], []).append(SequenceStop(line, r["노선번호"], r["노선명"], r["교통수단"],
                                                           r["정류장ID"], r["정류장명"], order, r["X좌표"], r["Y좌표"]))
    for stops in out.values():
        stops.sort(key=lambda s: s.order)
    return label, out


def routes_by_stop(path: Path) -> dict[str, list[str]]:
    """Stop id -> the route numbers that serve it (in file order, without repeats)."""
    out: dict[str, list[str]] = {}
    for route_no, stops in sequences(path)[1].items():
        for s in stops:
            served = out.setdefault(s.stop_id, [])
            if route_no not in served:
                served.append(route_no)
    return out
