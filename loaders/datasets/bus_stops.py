"""Dataset bus_stops: Sejong bus stops (세종특별자치시 정류장정보, 2023-06-02) with the routes serving each stop,
their best headway and runs per day (버스운행 현황, 2023-01-25) and the busiest stops' boardings (한국교통안전공단).

정류장x위치값/정류장Y위치값 are packed degree-minutes (12715.3348 = 127° 15.3348'), decoded explicitly; a stop whose
position cannot be decoded or falls outside config.yml's data.region is a reject (the load is refused unless the
rejects policy allows it), never stored at a wrong place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.config import load_config
from loaders import transit
from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.crs import STORAGE_SRID, Bbox
from loaders.recipes import Dataset

TABLE = "public.bus_stops"
META = Meta(
    title="세종시 버스정류장 / Sejong bus stops",
    licence="KOGL (공공누리); busiest stops: 한국교통안전공단 (KOGL)",
    attribution=f"{transit.PUBLISHER}; 최다 이용 정류장 © 한국교통안전공단 (KOGL)",
)
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "정류장ID"),
    Column("name", "text", "버스정류장명"),
    Column("stop_no", "integer", "일련번호"),
    Column("area_code", "text", "정산지역코드"),
    Column("adm_code", "text", "행정구역코드"),
    Column("routes", "text", "경유 노선 (노선별 정류장현황)"),
    Column("route_count", "integer", "경유 노선 수"),
    Column("headway_min", "integer", "최소 배차간격(분) (버스운행 현황)"),
    Column("runs_per_day", "integer", "운행횟수 합계 (버스운행 현황)"),
    Column("boardings", "integer", "승차 (최다 이용 정류장)"),
    Column("alightings", "integer", "하차 (최다 이용 정류장)"),
], "Point", indexes=["headway_min"])


def stop_rows(path: Path, stats: RowStats, region: Bbox) -> Iterator[Mapping[str, Any]]:
    """Typed rows of the stops member of the zip at `path` (a reject for every stop that cannot be placed)."""
    label, text = transit.member_text(path, transit.STOPS)
    serving = transit.routes_by_stop(path)
    known = transit.services(path)
    busy = transit.busiest(path)
    matched: set[str] = set()
    x_col, y_col = "정류장x위치값", "정류장Y위치값"
    for line, r in transit.records(text, label, ("일련번호", "정류장ID", "버스정류장명", x_col, y_col)):
        try:
            x, y = transit.place_ddmm(r[x_col], r[y_col], region)
        except ValueError as exc:
            stats.reject(label, line, f"{x_col}/{y_col}", str(exc))
            continue
        routes = serving.get(r["정류장ID"], [])
        found = [s for s in (transit.service_of(n, known) for n in routes) if s is not None]
        headways = [s.headway_min for s in found if s.headway_min is not None]
        runs = [s.runs_per_day for s in found if s.runs_per_day is not None]
        board = busy.get(r["정류장ID"])
        if board:
            matched.add(r["정류장ID"])
        yield {
            "id": int(r["정류장ID"]), "name": r["버스정류장명"], "stop_no": int(r["일련번호"]),
            "area_code": r.get("정산지역코드") or None, "adm_code": r.get("행정구역코드") or None,
            "routes": ", ".join(routes) or None, "route_count": len(routes),
            "headway_min": min(headways) if headways else None, "runs_per_day": sum(runs) if runs else None,
            "boardings": board[0] if board else None, "alightings": board[1] if board else None,
            "geom": f"SRID={STORAGE_SRID};POINT({x:.3f} {y:.3f})",
        }
    unmatched = sorted(set(busy) - matched)
    if unmatched:
        stats.notes.append(f"{label}: busiest-stops ids not among the stops (boardings not attached): "
                           f"{', '.join(unmatched)}")


def build(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Rows of the bundled zip, placed against config.yml's region."""
    return stop_rows(data_dir / transit.ZIP, stats, load_config().data.region)


DATASETS = [Dataset(SPEC, [transit.ZIP], build, META)]
