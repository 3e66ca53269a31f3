"""Official Korean layouts (GIS건물통합정보 AL_D010, F_FAC_BUILDING, OSM buildings, 연속지적도 LSMD/AL_D002)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd

from loaders import values
from loaders.core import ColumnBatch
from loaders.errors import LoadError
from loaders.textio import decode_file
from loaders.vector import ewkb

AL_D010 = [f"A{i}" for i in range(29)]
F_FAC_BUILDING = ["UFID", "BLD_NM", "GRND_FLR", "UGRND_FLR", "PNU", "HEIGHT", "USABILITY"]
LSMD = ["PNU", "JIBUN"]
AL_D002 = ["A1", "A5"]
PNU_RE = re.compile(r"^\d{19}$")


def detect(columns: list[str]) -> str | None:
    """Layout name from field names: al_d010, f_fac_building, osm, lsmd, al_d002 or None."""
    up = {c.upper() for c in columns}
    if set(AL_D010) <= up:
        return "al_d010"
    if set(F_FAC_BUILDING) <= up:
        return "f_fac_building"
    if set(LSMD) <= up:
        return "lsmd"
    if set(AL_D002) <= up and "A28" not in up:
        return "al_d002"
    if "building" in {c.lower() for c in columns}:
        return "osm"
    return None


class _Rec:
    """Case-insensitive access to one feature's attributes with feature-indexed conversion errors."""

    def __init__(self, rec: Mapping[str, Any], label: str, index: int) -> None:
        self.rec = {str(k).upper(): v for k, v in rec.items()}
        self.label = label
        self.index = index

    def get(self, col: str, fn: Callable[[Any], Any] = values.text) -> Any:
        v = self.rec.get(col.upper())
        try:
            return fn(v)
        except ValueError as exc:
            raise LoadError(f"{self.label} feature {self.index}, column {col}: {exc}") from None


def _join(*parts: str | None) -> str | None:
    s = " ".join(p for p in parts if p)
    return s or None


def building_rows(frame: gpd.GeoDataFrame, layout: str, label: str) -> Iterator[dict[str, Any]]:
    """Rows for public.buildings from a frame in one of the building layouts."""
    geoms = ewkb(frame.geometry.values)
    for i, (raw, g) in enumerate(zip(frame.drop(columns=frame.geometry.name).to_dict("records"), geoms,
                                     strict=True), start=1):
        r = _Rec(raw, label, i)
        if layout == "al_d010":
            row = {"name": _join(r.get("A24"), r.get("A25")), "use": r.get("A9"),
                   "floors_above": r.get("A26", values.integer), "floors_below": r.get("A27", values.integer),
                   "height": r.get("A16", values.number), "pnu": r.get("A2"), "source_id": r.get("A1"),
                   "updated": r.get("A28", values.timestamp)}
        elif layout == "f_fac_building":
            pnu = r.get("PNU") or (r.get("BD_MGT_SN") or "")[:19] or None
            row = {"name": _join(r.get("BLD_NM"), r.get("DONG_NM")), "use": r.get("USABILITY"),
                   "floors_above": r.get("GRND_FLR", values.integer),
                   "floors_below": r.get("UGRND_FLR", values.integer), "height": r.get("HEIGHT", values.number),
                   "pnu": pnu, "source_id": r.get("UFID"), "updated": None}
        else:
            row = {"name": r.get("NAME"), "use": r.get("BUILDING"),
                   "floors_above": r.get("BUILDING:LEVELS", values.integer),
                   "floors_below": r.get("BUILDING:LEVELS:UNDERGROUND", values.integer),
                   "height": r.get("HEIGHT", values.number), "pnu": None,
                   "source_id": r.get("OSMID") or r.get("ID"), "updated": r.get("UPDATEDAT", values.timestamp)}
        row.update({"id": i, "source": layout if layout != "osm" else "osm", "geom": g})
        yield row


def split_jibun(label: str | None) -> tuple[str | None, str | None]:
    """'22-25 대' -> ('22-25', '대'); '산 12-3 임' -> ('산12-3', '임'); '22-25' -> ('22-25', None)."""
    if not label:
        return None, None
    parts = label.split()
    if len(parts) >= 2 and not any(map(str.isdigit, parts[-1])):
        return "".join(parts[:-1]), parts[-1]
    return "".join(parts), None


def read_prices(path: Path, encoding: str = "auto") -> dict[str, tuple[int, int | None]]:
    """PNU -> (price won/m², year) from a 개별공시지가 CSV (latest 기준연도 per PNU)."""
    label = path.name
    text, _ = decode_file(path, encoding, label)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    pnu_col = next((h for h in ("고유번호", "PNU", "pnu") if h in header), None)
    price_col = next((h for h in ("공시지가", "개별공시지가", "jiga", "JIGA") if h in header), None)
    year_col = next((h for h in ("기준연도", "gosi_year", "STDR_YEAR") if h in header), None)
    if not pnu_col or not price_col:
        raise LoadError(f"{label}: missing required column {'고유번호' if not pnu_col else '공시지가'!r} "
                        f"(columns: {', '.join(header)})")
    out: dict[str, tuple[int, int | None]] = {}
    for rec in reader:
        line = reader.line_num
        try:
            price = values.integer(rec[price_col])
            year = values.integer(rec[year_col]) if year_col else None
        except ValueError as exc:
            raise LoadError(f"{label} line {line}, column {price_col}: {exc}") from None
        pnu = (rec[pnu_col] or "").strip()
        if price is None or not pnu:
            continue
        old = out.get(pnu)
        if old is None or (year or 0) >= (old[1] or 0):
            out[pnu] = (price, year)
    return out


def _column(frame: gpd.GeoDataFrame, name: str, fn: Callable[[Any], Any], label: str) -> list[Any]:
    """One attribute (case-insensitive; absent: all None) converted by fn; a bad value names its feature."""
    by_upper = {str(c).upper(): c for c in frame.columns if c != frame.geometry.name}
    if name.upper() not in by_upper:
        return [fn(None)] * len(frame)
    raw = frame[by_upper[name.upper()]].tolist()
    try:
        return list(map(fn, raw))
    except ValueError:
        for i, v in enumerate(raw, start=1):
            try:
                fn(v)
            except ValueError as exc:
                raise LoadError(f"{label} feature {i}, column {name}: {exc}") from None
        raise


def parcel_rows(frame: gpd.GeoDataFrame, layout: str, label: str,
                prices: Mapping[str, tuple[int, int | None]] | None = None,
                chunk: int = 10_000) -> Iterator[Mapping[str, Any] | ColumnBatch]:
    """Rows for public.land_parcels from an LSMD_CONT_LDREG / AL_D002 frame (PNU validated), as column blocks."""
    prices = prices or {}
    pnu_col = "PNU" if layout == "lsmd" else "A1"
    pnus = _column(frame, pnu_col, values.text, label)
    for i, pnu in enumerate(pnus, start=1):
        if pnu is None or not PNU_RE.match(pnu):
            raise LoadError(f"{label} feature {i}, column {pnu_col}: {pnu or ''!r} is not a 19-digit PNU")
    jibuns = _column(frame, "JIBUN" if layout == "lsmd" else "A5", values.text, label)
    bchk = _column(frame, "BCHK", values.text, label) if layout == "lsmd" else [None] * len(frame)
    lots, jimoks = zip(*map(split_jibun, jibuns), strict=True) if jibuns else ((), ())
    found = [prices.get(p) for p in pnus] if prices else [None] * len(pnus)
    geoms = ewkb(frame.geometry.values)
    for a in range(0, len(frame), chunk):
        b = min(a + chunk, len(frame))
        yield ColumnBatch({"pnu": pnus[a:b], "jibun": jibuns[a:b], "lot_number": lots[a:b], "jimok": jimoks[a:b],
                           "bchk": bchk[a:b], "price": [p[0] if p else None for p in found[a:b]],
                           "price_year": [p[1] if p else None for p in found[a:b]], "geom": geoms[a:b]}, b - a)
