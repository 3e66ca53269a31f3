"""`python -m loaders.kais_network FILE --name NAME`: 도로명주소 도로구간 (KAIS TL_SPRD_MANAGE) -> a road network.

The road centrelines every Korean 시군구 publishes are named-road pieces, not a graph. They are noded here:
endpoints within `snap_m` become one node; an endpoint within `snap_m` of another line's interior splits that
line there (a T-junction); two lines crossing in their interiors (overpasses, bridges) stay unconnected. The
largest connected component is kept and the rest reported. Walk, bike and car times (seconds) follow road class
ROA_CLS_SE and width ROAD_BT (config.yml `networks:`); there is no one-way data, so car times are symmetric.
The result has the layout of the OSM loader's tables (network.<name>_edges/_nodes), swapped in atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.ops import substring

from core.config import NetworkConfig, NoDatabase, database_url, load_config
from loaders import network_store
from loaders.core import Column, Meta, RowStats, SourceFile, TableSpec
from loaders.errors import LoadError
from loaders.network_store import unchanged, write_network
from loaders.recipes import sha256

CLASS_NAMES = {1: "고속도로", 2: "대로", 3: "로", 4: "길"}
REQUIRED = ("ROA_CLS_SE", "ROAD_BT")
SIDECARS = (".shp", ".shx", ".dbf", ".prj")
ATTRIBUTION = "행정안전부 도로명주소 전자지도 (도로명주소 도로구간 TL_SPRD_MANAGE)"
LICENCE = "행정안전부 도로명주소 전자지도: free use with attribution (KOGL type not stated)"
FArray = npt.NDArray[np.float64]
IArray = npt.NDArray[np.int64]


def edge_spec(name: str) -> TableSpec:
    """network.<name>_edges: the shared routing columns plus the KAIS road attributes."""
    return network_store.edge_spec(name, "node id", "no one-way data, = car_s", [
        Column("road_class", "smallint", "도로위계 ROA_CLS_SE (1 고속도로, 2 대로, 3 로, 4 길)"),
        Column("road_width_m", "double precision", "도로폭 ROAD_BT (m; 0 unknown)"),
        Column("name", "text", "도로명 RN"), Column("rn_cd", "text", "도로명코드 RN_CD"),
        Column("rds_man_no", "bigint", "도로구간일련번호 RDS_MAN_NO")])


def node_spec(name: str) -> TableSpec:
    """network.<name>_nodes."""
    return network_store.node_spec(name, "node id")


@dataclass
class Roads:
    """Road lines of a TL_SPRD_MANAGE file in EPSG:5186 (multi-part lines exploded) with their attributes."""

    lines: npt.NDArray[np.object_]
    road_class: IArray
    width: FArray
    name: list[str | None]
    rn_cd: list[str | None]
    rds_man_no: list[int | None]
    month: str | None  # newest OPERT_DE as YYYY-MM
    features: int
    skipped: int = 0


def _read_frame(path: Path, encoding: str) -> Any:
    import pyogrio

    if not path.exists():
        raise LoadError(f"{path}: no such file")
    # a .cpg beside the file names its encoding; KAIS ships none (CP949)
    enc = None if path.with_suffix(".cpg").exists() else encoding
    try:
        return pyogrio.read_dataframe(path, encoding=enc)
    except Exception as exc:  # pyogrio raises DataSourceError, UnicodeDecodeError, ...
        raise LoadError(f"{path.name}: not a readable road-centreline file ({str(exc).splitlines()[0]})") from exc


def read_roads(path: Path, encoding: str = "cp949") -> Roads:
    """Read and check a TL_SPRD_MANAGE file; LoadError (before any database work) when it is unusable."""
    import pandas as pd

    df = _read_frame(path, encoding)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise LoadError(f"{path.name}: no column {', '.join(missing)} (road class ROA_CLS_SE 1-4, width ROAD_BT); "
                        f"is this a KAIS TL_SPRD_MANAGE file? columns: {', '.join(map(str, df.columns[:12]))}")
    if len(df) == 0:
        raise LoadError(f"{path.name}: no road lines (empty file)")
    if df.crs is None:
        raise LoadError(f"{path.name}: no coordinate system (the .prj file is missing)")
    features = len(df)
    empty = df.geometry.isna() | df.geometry.is_empty
    df = df[~empty]
    kinds = set(df.geometry.geom_type) - {"LineString", "MultiLineString"}
    if kinds:
        raise LoadError(f"{path.name}: {', '.join(sorted(kinds))} geometries; road centrelines are lines")
    cls = pd.to_numeric(df["ROA_CLS_SE"], errors="coerce")
    bad = ~cls.isin(list(CLASS_NAMES))
    if bad.any():
        values = sorted({str(v) for v in df.loc[bad, "ROA_CLS_SE"]})[:5]
        raise LoadError(f"{path.name}: {int(bad.sum())} lines with road class ROA_CLS_SE not 1-4 "
                        f"(e.g. {', '.join(values)}); nothing was loaded")
    df = df.assign(_cls=cls.astype("int64"), _width=pd.to_numeric(df["ROAD_BT"], errors="coerce").fillna(0.0))
    df = df.to_crs(5186).explode(index_parts=False).reset_index(drop=True)
    df = df[~df.geometry.is_empty & (df.geometry.length > 0)]
    lines = shapely.force_2d(np.asarray(df.geometry.values, dtype=object))
    if len(lines) == 0:
        raise LoadError(f"{path.name}: none of its {features} rows has a line geometry")

    def texts(col: str) -> list[str | None]:
        return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() or None
                for v in df[col]] if col in df.columns else [None] * len(df)

    nums = pd.to_numeric(df["RDS_MAN_NO"], errors="coerce") if "RDS_MAN_NO" in df.columns else pd.Series(
        [None] * len(df), dtype="float64")
    opert = [v for v in texts("OPERT_DE") if v and len(v) >= 6 and v[:6].isdigit()]
    newest = max(opert) if opert else None
    return Roads(lines, df["_cls"].to_numpy(np.int64), df["_width"].to_numpy(np.float64), texts("RN"),
                 texts("RN_CD"), [None if pd.isna(v) else int(v) for v in nums],
                 f"{newest[:4]}-{newest[4:6]}" if newest else None, features, int(empty.sum()))


@dataclass
class Noded:
    """Edges (pieces of the input lines between nodes) over nodes; parent: the input line of each edge."""

    node_xy: FArray
    u: IArray
    v: IArray
    geom: npt.NDArray[np.object_]
    parent: IArray
    report: dict[str, Any] = field(default_factory=dict)


def _clusters(lines: npt.NDArray[np.object_], tol: float) -> tuple[IArray, IArray, IArray, int]:
    """Node label of every endpoint (2n: starts then ends), and the (line, endpoint) pairs of T-junctions."""
    n = len(lines)
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    a, b = shapely.STRtree(ends).query(ends, predicate="dwithin", distance=tol)
    # endpoints near another line: near its start or end they join that endpoint, in its interior they split it
    e, li = shapely.STRtree(lines).query(ends, predicate="dwithin", distance=tol)
    other = (e % n) != li
    e, li = e[other], li[other]
    d = shapely.line_locate_point(lines[li], ends[e])
    at_start, at_end = d <= tol, d >= shapely.length(lines[li]) - tol
    rows = np.concatenate([a, e[at_start], e[at_end]])
    cols = np.concatenate([b, li[at_start], li[at_end] + n])
    k, label = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * n, 2 * n)),
                                    directed=False)
    inner = ~(at_start | at_end)
    return label.astype(np.int64), li[inner].astype(np.int64), e[inner].astype(np.int64), int(k)


def node_lines(lines: npt.NDArray[np.object_], tol: float) -> Noded:
    """Snap endpoints within tol, split lines at T-junctions; interior crossings stay unconnected."""
    n = len(lines)
    label, t_line, t_end, k = _clusters(lines, tol)
    xy = shapely.get_coordinates(np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)]))
    count = np.bincount(label, minlength=k)
    node_xy = np.column_stack([np.bincount(label, xy[:, 0], k) / count, np.bincount(label, xy[:, 1], k) / count])
    t_node = label[t_end]
    t_at = shapely.line_locate_point(lines[t_line], shapely.points(node_xy[t_node]))
    length = shapely.length(lines)
    order = np.lexsort((t_at, t_line))
    t_line, t_node, t_at = t_line[order], t_node[order], t_at[order]
    lo, hi = np.searchsorted(t_line, np.arange(n)), np.searchsorted(t_line, np.arange(n), side="right")
    u: list[int] = []
    v: list[int] = []
    geoms: list[Any] = []
    parent: list[int] = []
    for i in range(n):
        cuts = [(0.0, int(label[i]))]
        for j in range(lo[i], hi[i]):
            if int(t_node[j]) != cuts[-1][1]:  # the same node twice (two endpoints of it on this line): one cut
                cuts.append((float(t_at[j]), int(t_node[j])))
        cuts.append((float(length[i]), int(label[i + n])))
        for (d0, a), (d1, b) in itertools.pairwise(cuts):
            if a == b and d1 - d0 <= tol:
                continue  # a sliver between two cuts at one node
            coords = shapely.get_coordinates(substring(lines[i], d0, d1))
            if len(coords) < 2:
                coords = np.vstack([coords, coords])
            coords[0], coords[-1] = node_xy[a], node_xy[b]  # pieces end exactly on their nodes
            geoms.append(shapely.linestrings(coords))
            u.append(a)
            v.append(b)
            parent.append(i)
    crossing = shapely.STRtree(lines).query(lines, predicate="crosses")
    report = {"input_lines": n, "endpoints": 2 * n, "noded_nodes": k, "noded_edges": len(u),
              "t_junction_splits": len(t_line),
              "crossings_unconnected": int((crossing[0] < crossing[1]).sum()), "snap_m": tol}
    return Noded(node_xy, np.array(u, np.int64), np.array(v, np.int64), np.array(geoms, dtype=object),
                 np.array(parent, np.int64), report)


def main_component(nd: Noded) -> tuple[npt.NDArray[np.bool_], dict[str, Any]]:
    """Edges of the largest connected component (by length) and what the others held."""
    k = len(nd.node_xy)
    _, comp = connected_components(coo_matrix((np.ones(len(nd.u)), (nd.u, nd.v)), shape=(k, k)), directed=False)
    length = shapely.length(nd.geom)
    edge_comp = comp[nd.u]
    per = np.bincount(edge_comp, length)
    main = int(per.argmax())
    keep = edge_comp == main
    used = np.unique(edge_comp)
    return keep, {"components": len(used), "dropped_components": int(len(used) - 1),
                  "dropped_edges": int((~keep).sum()), "dropped_km": round(float(length[~keep].sum()) / 1000, 3),
                  "kept_km": round(float(length[keep].sum()) / 1000, 3),
                  "kept_share_of_length": round(float(length[keep].sum() / length.sum()), 4)}


def mode_seconds(cfg: NetworkConfig, road_class: IArray, width: FArray, names: list[str | None],
                 length: FArray) -> dict[str, FArray]:
    """Seconds per edge and mode (NaN: the mode may not pass) from road class, width and name."""
    out: dict[str, FArray] = {}
    for mode in ("walk", "bike", "car"):
        table = cfg.speeds_kmh[mode]
        kmh = np.array([np.nan if table[c] is None else table[c] for c in road_class], dtype=np.float64)
        if mode == "car":
            known = width > 0
            if cfg.narrow_car_kmh is not None:
                kmh = np.where(known & (width < cfg.narrow_width_m), np.fmin(kmh, cfg.narrow_car_kmh), kmh)
            kmh = np.where(known & (width < cfg.car_min_width_m), np.nan, kmh)
            closed = np.array([any(w in (nm or "") for w in cfg.no_car_names) for nm in names], dtype=bool)
            kmh = np.where(closed, np.nan, kmh)
        out[mode] = length / (kmh / 3.6)
    return out


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def build_rows(roads: Roads, nd: Noded, keep: npt.NDArray[np.bool_],
               cfg: NetworkConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Edge and node rows of the kept component."""
    idx = np.flatnonzero(keep)
    par = nd.parent[idx]
    length = np.round(shapely.length(nd.geom[idx]), 3)  # as stored: times follow the stored length exactly
    names = [roads.name[p] for p in par]
    secs = mode_seconds(cfg, roads.road_class[par], roads.width[par], names, length)
    wkt = shapely.to_wkt(nd.geom[idx], rounding_precision=3)
    edges = [{"id": j + 1, "source": int(nd.u[i]) + 1, "target": int(nd.v[i]) + 1, "length_m": float(ln),
              "walk_s": _num(secs["walk"][j]), "bike_s": _num(secs["bike"][j]), "car_s": _num(secs["car"][j]),
              "car_reverse_s": _num(secs["car"][j]), "road_class": int(roads.road_class[p]),
              "road_width_m": float(roads.width[p]), "name": names[j], "rn_cd": roads.rn_cd[p],
              "rds_man_no": roads.rds_man_no[p], "geom": f"SRID=5186;{w}"}
             for j, (i, p, ln, w) in enumerate(zip(idx, par, length, wkt, strict=True))]
    used = np.unique(np.concatenate([nd.u[idx], nd.v[idx]]))
    nodes = [{"id": int(k) + 1, "geom": f"SRID=5186;POINT({nd.node_xy[k, 0]:.3f} {nd.node_xy[k, 1]:.3f})"}
             for k in used]
    return edges, nodes


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def source_hashes(path: Path, label: str, cfg: NetworkConfig) -> dict[str, str]:
    """sha256 of the shapefile's parts and of the network settings (a change in either means a reload)."""
    out = {label[: -len(path.suffix)] + suf: sha256(path.with_suffix(suf))
           for suf in SIDECARS if path.with_suffix(suf).exists()}
    out["config.yml networks"] = hashlib.sha256(
        json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return out


def load_kais_network(dsn: str, path: Path, name: str, cfg: NetworkConfig | None = None,
                      source_label: str | None = None) -> dict[str, Any]:
    """Read, node, cost and swap in a KAIS network atomically; returns table -> rows plus the noding report."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name):
        raise LoadError(f"network name {name!r}: use lower-case letters, digits and _ (e.g. sejong)")
    cfg = cfg or NetworkConfig(file=str(path))
    label = source_label or path.name
    _say(f"network {name}: reading {path.name}")
    roads = read_roads(path, cfg.encoding)
    _say(f"network {name}: {roads.features:,} road lines ({len(roads.lines):,} parts, {roads.skipped} without "
         f"geometry); noding with snap {cfg.snap_m:g} m")
    nd = node_lines(roads.lines, cfg.snap_m)
    keep, comp = main_component(nd)
    report = {**nd.report, **comp, "format": "kais", "one_way": False,
              "label": f"KAIS 도로구간 {roads.month}" if roads.month else "KAIS 도로구간", "data_month": roads.month,
              "speeds_kmh": cfg.model_dump(mode="json")["speeds_kmh"], "sources": cfg.sources}
    edges, nodes = build_rows(roads, nd, keep, cfg)
    report |= {"edges": len(edges), "nodes": len(nodes)}
    _say(f"network {name}: {report['nodes']:,} nodes, {report['edges']:,} edges ({report['t_junction_splits']:,} "
         f"T-junction splits, {report['crossings_unconnected']:,} crossings left unconnected); largest component "
         f"{report['kept_share_of_length']:.1%} of the length; dropped {report['dropped_components']} components, "
         f"{report['dropped_edges']} edges, {report['dropped_km']:.1f} km")
    hashes = source_hashes(path, label, cfg)
    first = label[: -len(path.suffix)] + ".shp"
    sources = [SourceFile(k, v, rows=roads.features if k == first else 0) for k, v in hashes.items()]
    meta = Meta(title=f"road network {name}: {report['label']} ({path.name})", licence=LICENCE,
                attribution=ATTRIBUTION)
    counts: dict[str, Any] = write_network(dsn, edge_spec(name), node_spec(name), edges, nodes, meta, sources,
                                           RowStats(skipped=roads.skipped), report)
    return counts | {"report": report}


def network_path(base: Path, cfg: NetworkConfig) -> Path:
    """The network's file: absolute, or under the data folder."""
    p = Path(cfg.file)
    return p if p.is_absolute() else base / p


def load_bundled_kais(dsn: str, base: Path, force: bool = False) -> dict[str, int]:
    """The networks of config.yml `networks:` (skipped when their files and settings are unchanged)."""
    out: dict[str, int] = {}
    for name, cfg in load_config().networks.items():
        path = network_path(base, cfg)
        if not path.exists():
            _say(f"network {name}: {path} not found, skipped")
            continue
        table = f"network.{name}_edges"
        n = None if force else unchanged(dsn, table, source_hashes(path, cfg.file, cfg))
        if n is not None:
            _say(f"{table}: unchanged ({n:,} edges), skipped")
            out[table] = n
            continue
        res = load_kais_network(dsn, path, name, cfg, cfg.file)
        out.update({k: v for k, v in res.items() if k != "report"})
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    doc = (__doc__ or "").splitlines()[0]
    ap = argparse.ArgumentParser(prog="python -m loaders.kais_network", description=doc)
    ap.add_argument("file", type=Path, help="TL_SPRD_MANAGE shapefile (.shp with .dbf, .shx, .prj)")
    ap.add_argument("--name", required=True, help="network name (tables network.<name>_edges/_nodes), e.g. daejeon")
    ap.add_argument("--snap-m", type=float, help="endpoint snap and T-junction tolerance (default 1 m)")
    ap.add_argument("--encoding", help="DBF encoding when no .cpg is given (default cp949)")
    ap.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")
    args = ap.parse_args(argv)
    try:
        dsn = database_url(dsn=args.dsn)
        base = load_config().networks.get(args.name)
        settings = (base.model_dump() if base else {}) | {"file": str(args.file)}
        settings |= {k: v for k, v in (("snap_m", args.snap_m), ("encoding", args.encoding)) if v is not None}
        res = load_kais_network(dsn, args.file, args.name, NetworkConfig.model_validate(settings))
    except (LoadError, NoDatabase, ValueError) as exc:
        print(f"error: {exc}\nnothing was changed in the database", file=sys.stderr)
        return 1
    report = res.pop("report")
    for table, n in res.items():
        print(f"{table}\t{n}")
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
