"""Dataset bus_routes: Sejong bus routes (세종특별자치시 노선정보, 2023-06-02) as lines through their stops in
sequence order (노선별 정류장현황), with headways and runs per day (버스운행 현황, 2023-01-25).

The computed length and the published 노선거리 are both stored; `distance_matches` says whether they agree within
DISTANCE_TOLERANCE (노선거리 read as km), so a mismatch is reported rather than hidden. Routes without a row in
버스운행 현황 keep NULL headways and are counted in the load notes (and the quality report's nulls).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.config import load_config
from loaders import transit
from loaders.core import Column, Meta, RowStats, TableSpec
from loaders.crs import STORAGE_SRID, Bbox
from loaders.recipes import Dataset
from loaders.values import number

TABLE = "public.bus_routes"
DISTANCE_TOLERANCE = 0.10  # |computed - published| / computed above this: distance_matches is false
META = Meta(title="세종시 버스노선 / Sejong bus routes", licence="KOGL (공공누리)", attribution=transit.PUBLISHER)
SPEC = TableSpec(TABLE, [
    Column("id", "integer", "노선ID"),
    Column("route_no", "text", "노선번호"),
    Column("name", "text", "노선명"),
    Column("mode", "text", "교통수단 (노선별 정류장현황)"),
    Column("mode_code", "text", "교통수단코드"),
    Column("service_type", "text", "구분 (버스운행 현황)"),
    Column("origin_stop_id", "text", "출발정류장ID"),
    Column("origin", "text", "출발정류장"),
    Column("terminus_stop_id", "text", "도착정류장ID"),
    Column("terminus", "text", "도착정류장"),
    Column("stops", "integer", "정류장수 (노선별 정류장현황)"),
    Column("stops_published", "integer", "노선정류장수"),
    Column("length_km", "double precision", "정류장 순서 연결 길이(km, 계산)"),
    Column("distance_published", "double precision", "노선거리 (공개값)"),
    Column("distance_matches", "boolean", "노선거리와 계산 길이 일치 여부"),
    Column("headway_text", "text", "배차간격 (원문)"),
    Column("headway_min", "integer", "최소 배차간격(분)"),
    Column("headway_max", "integer", "최대 배차간격(분)"),
    Column("runs_per_day", "integer", "운행횟수"),
    Column("service_row", "text", "버스운행 현황 노선번호 (연결 기준)"),
], "LineString", indexes=["route_no", "headway_min"])


def route_rows(path: Path, stats: RowStats, region: Bbox) -> Iterator[Mapping[str, Any]]:
    """Typed rows of the routes member, each with its line (a reject for a route whose stops cannot be placed)."""
    label, text = transit.member_text(path, transit.ROUTES)
    seq_label, by_route = transit.sequences(path)
    known = transit.services(path)
    no_headway: list[str] = []
    mismatched = same_as_count = 0
    for line, r in transit.records(text, label, ("노선ID", "노선번호", "노선명", "노선정류장수", "노선거리",
                                                 "출발정류장ID", "도착정류장ID")):
        stops = by_route.get(r["노선번호"], [])
        if len(stops) < 2:
            stats.reject(label, line, "노선번호", f"route {r['노선번호']} has {len(stops)} stops in {seq_label}")
            continue
        try:
            xy = [transit.place_ddmm(s.x, s.y, region) for s in stops]
        except ValueError as exc:
            stats.reject(label, line, "노선번호", f"route {r['노선번호']}: a stop of its sequence: {exc}")
            continue
        length_km = sum(math.dist(a, b) for a, b in itertools.pairwise(xy)) / 1000
        published = number(r["노선거리"])
        matches = None if published is None else abs(length_km - published) <= DISTANCE_TOLERANCE * length_km
        mismatched += matches is False
        same_as_count += r["노선거리"] == r["노선정류장수"]
        svc = transit.service_of(r["노선번호"], known)
        if svc is None or svc.headway_min is None:
            no_headway.append(r["노선번호"])
        names = {s.stop_id: s.stop_name for s in stops}
        yield {
            "id": int(r["노선ID"]), "route_no": r["노선번호"], "name": r["노선명"], "mode": stops[0].mode,
            "mode_code": r.get("교통수단코드") or None, "service_type": svc.service_type if svc else None,
            "origin_stop_id": r["출발정류장ID"], "origin": names.get(r["출발정류장ID"], stops[0].stop_name),
            "terminus_stop_id": r["도착정류장ID"], "terminus": names.get(r["도착정류장ID"], stops[-1].stop_name),
            "stops": len(stops), "stops_published": int(r["노선정류장수"]), "length_km": round(length_km, 3),
            "distance_published": published, "distance_matches": matches,
            "headway_text": (svc.headway_text or None) if svc else None,
            "headway_min": svc.headway_min if svc else None, "headway_max": svc.headway_max if svc else None,
            "runs_per_day": svc.runs_per_day if svc else None, "service_row": svc.route_no if svc else None,
            "geom": f"SRID={STORAGE_SRID};LINESTRING({', '.join(f'{x:.3f} {y:.3f}' for x, y in xy)})",
        }
    stats.notes.append(f"{label}: {len(no_headway)} routes have no headway in 버스운행 현황 (headway kept NULL): "
                       f"{', '.join(no_headway)}")
    stats.notes.append(f"{label}: 노선거리 differs from the length through the stops by more than "
                       f"{DISTANCE_TOLERANCE:.0%} on {mismatched} routes (stored as distance_matches = false); it "
                       f"equals 노선정류장수 on {same_as_count} routes, so it looks like a stop count, not a distance")


def build(data_dir: Path, stats: RowStats) -> Iterator[Mapping[str, Any]]:
    """Rows of the bundled zip, placed against config.yml's region."""
    return route_rows(data_dir / transit.ZIP, stats, load_config().data.region)


DATASETS = [Dataset(SPEC, [transit.ZIP], build, META)]
