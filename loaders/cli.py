"""Command line: python -m loaders {csv,file,bundled,readings,facilities} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import database_url, load_config
from loaders.core import LoadResult, Meta, RowStats, SourceFile, load_table
from loaders.errors import LoadError
from loaders.recipes import sha256
from loaders.textio import ENCODINGS


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")
    p.add_argument("--max-rows", type=int, default=None,
                   help="refuse files with more rows (default $SEJONG_LOADER_MAX_ROWS or 5,000,000)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree."""
    ap = argparse.ArgumentParser(prog="python -m loaders", description=(
        "Load Korean public data into PostGIS (EPSG:5186) atomically: staging table -> validation -> swap + "
        "catalog (meta.datasets) in one transaction. A refused file leaves the previous data untouched."))
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("csv", help="CSV with coordinate columns (CP949/EUC-KR/UTF-8/UTF-8-BOM)")
    p.add_argument("file", type=Path)
    p.add_argument("--table", required=True, help="target table, e.g. public.bike_stations (layer tables use "
                                                   "their recipe; other tables keep every column as text)")
    p.add_argument("--encoding", default="auto", choices=ENCODINGS)
    p.add_argument("--lat-col"), p.add_argument("--lon-col")
    p.add_argument("--x-col"), p.add_argument("--y-col")
    p.add_argument("--epsg", type=int, help="CRS of --x-col/--y-col (default: detect degrees as 4326)")
    p.add_argument("--where", action="append", metavar="COL=VALUE",
                   help="keep rows where COL equals VALUE (repeatable; same column = OR), "
                        "e.g. 제공기관명=세종특별자치시")
    p.add_argument("--region", help="region for layer recipes (bike_stations: 제공기관명), default 세종특별자치시")
    p.add_argument("--licence", default=""), p.add_argument("--title", default="")
    p.add_argument("--attribution", default="")
    _common(p)

    p = sub.add_parser("file", help="GeoJSON/TopoJSON, zipped Shapefile, GeoPackage (official layouts detected)")
    p.add_argument("file", type=Path)
    p.add_argument("--table", help="target table (default for AL_D010/F_FAC_BUILDING/OSM: public.buildings; "
                                   "LSMD_CONT_LDREG/AL_D002: public.land_parcels)")
    p.add_argument("--epsg", type=int, help="source CRS, overrides the .prj (e.g. 5186, 5174, 5179, 5181, 4326)")
    p.add_argument("--layer", help="layer name in a multi-layer file (GeoPackage)")
    p.add_argument("--encoding", default=None, help="DBF encoding (default: .cpg, else CP949)")
    p.add_argument("--prices", type=Path, help="개별공시지가 CSV joined by PNU (parcel layouts)")
    p.add_argument("--licence", default=""), p.add_argument("--title", default="")
    p.add_argument("--attribution", default="")
    _common(p)

    p = sub.add_parser("bundled", help="load every bundled real dataset of the layers in config.yml")
    p.add_argument("--data-dir", type=Path, help="data folder (default $SEJONG_DATA_DIR, else ../shared/data; "
                                                 "fetched by MANIFEST into var/data/ when absent)")
    p.add_argument("--only", nargs="+", metavar="LAYER", help="layer ids to load")
    p.add_argument("--force", action="store_true", help="reload even when the source files are unchanged")
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")

    p = sub.add_parser("readings", help="air-quality readings into public.air_quality_readings")
    p.add_argument("file", type=Path, nargs="+")
    p.add_argument("--format", choices=["seoul-daily", "airkorea-json"],
                   help="default: .json -> airkorea-json, else seoul-daily")
    p.add_argument("--encoding", default="auto", choices=ENCODINGS)
    _common(p)

    p = sub.add_parser("facilities", help="libraries/parks/schools/open facilities of a region")
    p.add_argument("--region", default="세종특별자치시", help="e.g. 세종특별자치시 or 파주시")
    p.add_argument("--table", default="public.facilities")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")
    return ap


def load_readings(dsn: str, files: list[Path], fmt: str | None = None, encoding: str = "auto",
                  max_rows: int | None = None) -> LoadResult:
    """Replace the readings of these files (other sources stay) in one transaction."""
    from loaders.datasets import air_quality_readings, air_quality_tables
    from loaders.readings import airkorea_json, seoul_daily

    stats = RowStats()

    def rows():  # type: ignore[no-untyped-def]
        for f in files:
            kind = fmt or ("airkorea-json" if f.suffix.lower() == ".json" else "seoul-daily")
            if kind == "airkorea-json":
                yield from airkorea_json(f, stats)
            else:
                yield from seoul_daily(f, stats, encoding=encoding)

    res = load_table(dsn, air_quality_readings.SPEC, rows(), label=", ".join(f.name for f in files),
                     sources=[SourceFile(f.name, sha256(f)) for f in files], meta=air_quality_readings.META,
                     stats=stats, max_rows=max_rows)
    air_quality_tables.ensure_views(dsn)
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "bundled":
            from loaders.bundled import load_bundled

            counts = load_bundled(database_url(dsn=args.dsn, embedded=False), args.data_dir, args.force, args.only)
            for table, n in counts.items():
                print(f"{table}\t{n}")
            return 0
        dsn = database_url(dsn=args.dsn, embedded=False)
        if args.cmd == "csv":
            from loaders.fileload import load_csv

            res = load_csv(dsn, args.file, args.table, encoding=args.encoding, lat_col=args.lat_col,
                           lon_col=args.lon_col, x_col=args.x_col, y_col=args.y_col, epsg=args.epsg,
                           where=args.where, licence=args.licence, title=args.title,
                           attribution=args.attribution, region=args.region, max_rows=args.max_rows)
        elif args.cmd == "file":
            from loaders.fileload import load_file

            res = load_file(dsn, args.file, args.table, epsg=args.epsg, layer=args.layer, encoding=args.encoding,
                            prices=args.prices, licence=args.licence, title=args.title,
                            attribution=args.attribution, max_rows=args.max_rows)
        elif args.cmd == "readings":
            res = load_readings(dsn, args.file, args.format, args.encoding, args.max_rows)
        else:
            from loaders.datasets import facilities

            res = facilities.load_region(dsn, args.data_dir or load_config().data.path(), args.region, args.table)
    except (LoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing was changed in the database", file=sys.stderr)
        return 1
    print(f"{res.table}: {res.rows:,} rows (skipped {res.skipped}, geometries repaired {res.repaired}, "
          f"data_version {res.data_version})")
    return 0


_ = Meta  # re-exported for callers building custom loads
