"""Command line: python -m loaders {csv,file,bundled,readings,facilities,list,drop} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import database_url, load_config
from loaders.core import BadRows, LoadResult, Meta, RowStats, SourceFile, catalog, drop_table, format_reject, load_table
from loaders.errors import LoadError
from loaders.recipes import sha256
from loaders.textio import ENCODINGS


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")
    p.add_argument("--max-rows", type=int, default=None,
                   help="refuse files with more rows (default $SEJONG_LOADER_MAX_ROWS or 5,000,000)")


def _trust(p: argparse.ArgumentParser) -> None:
    """Flags of the checks a file load makes (region, bad rows, shrink and schema guard)."""
    p.add_argument("--national", "--no-region-check", dest="national", action="store_true",
                   help="a layer beyond the city: check the coordinates against Korea, not config.yml data.region")
    p.add_argument("--max-bad-rows", default="0", metavar="N|N%",
                   help="set aside up to N rows (or N%% of them) that cannot be placed, listed in the rejects "
                        "report (default 0: refuse the file, naming file, line and reason)")
    p.add_argument("--replace", action="store_true",
                   help="allow a reload that changes the column set or loses more than --max-shrink of the rows")
    p.add_argument("--max-shrink", type=float, default=None, metavar="SHARE",
                   help="share of rows a reload may lose without --replace (default $SEJONG_LOADER_MAX_SHRINK "
                        "or 0.2)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree."""
    ap = argparse.ArgumentParser(prog="python -m loaders", description=(
        "Load Korean public data into PostGIS (EPSG:5186) atomically: staging table -> validation -> swap + "
        "catalog (meta.datasets) in one transaction. A refused file leaves the previous data untouched."))
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("csv", help="CSV, JSON array of objects, JSON Lines or .xlsx sheet with coordinate columns "
                                   "(CP949/EUC-KR/UTF-8/UTF-8-BOM); columns typed by content")
    p.add_argument("file", type=Path)
    p.add_argument("--table", required=True, help="target table, e.g. public.bike_stations (layer tables use "
                                                   "their recipe; other tables keep every column as text)")
    p.add_argument("--encoding", default="auto", choices=ENCODINGS,
                   help="text encoding (default: by content — strict UTF-8, else CP949; ambiguous files are refused)")
    p.add_argument("--member", help="the CSV inside a .zip: its name or a unique part of it")
    p.add_argument("--lat-col"), p.add_argument("--lon-col")
    p.add_argument("--x-col"), p.add_argument("--y-col")
    p.add_argument("--epsg", type=int, help="CRS of --x-col/--y-col (default: detect degrees as 4326)")
    p.add_argument("--dm", action=argparse.BooleanOptionalAction, default=None,
                   help="coordinates are packed degree-minutes (12715.3348 = 127° 15.3348'); default: by content")
    p.add_argument("--where", action="append", metavar="COL=VALUE",
                   help="keep rows where COL equals VALUE (repeatable; same column = OR), "
                        "e.g. 제공기관명=세종특별자치시")
    p.add_argument("--region", help="region for layer recipes (bike_stations: 제공기관명), default 세종특별자치시")
    p.add_argument("--types", action="append", metavar="COL=TYPE",
                   help="column type instead of the one read from the content: integer, numeric, date, timestamp, "
                        "boolean or text (repeatable), e.g. 우편번호=text")
    p.add_argument("--sheet", help=".xlsx: sheet name or number (default: the first sheet)")
    p.add_argument("--header-row", metavar="N|N-M",
                   help=".xlsx: sheet row of the column names, or the rows of stacked headings (e.g. 5-7); "
                        "default: the first row with two values")
    p.add_argument("--no-geometry", dest="geometry", action="store_false",
                   help="a table without coordinates (e.g. population per 행정동, joined by name)")
    p.add_argument("--licence", default=""), p.add_argument("--title", default="")
    p.add_argument("--attribution", default="")
    _common(p)
    _trust(p)

    p = sub.add_parser("file", help="GeoJSON/TopoJSON, zipped Shapefile, GeoPackage (official layouts detected)")
    p.add_argument("file", type=Path)
    p.add_argument("--table", help="target table (default for AL_D010/F_FAC_BUILDING/OSM: public.buildings; "
                                   "LSMD_CONT_LDREG/AL_D002: public.land_parcels)")
    p.add_argument("--epsg", type=int, help="source CRS, overrides the .prj (e.g. 5186, 5174, 5179, 5181, 4326)")
    p.add_argument("--layer", help="layer name in a multi-layer file (GeoPackage)")
    p.add_argument("--encoding", default=None, choices=ENCODINGS,
                   help="DBF encoding (default: the .cpg, else by content — strict UTF-8, else CP949)")
    p.add_argument("--prices", type=Path, help="개별공시지가 CSV joined by PNU (parcel layouts)")
    p.add_argument("--licence", default=""), p.add_argument("--title", default="")
    p.add_argument("--attribution", default="")
    _common(p)
    _trust(p)

    p = sub.add_parser("bundled", help="load every bundled real dataset of the layers in config.yml")
    p.add_argument("--data-dir", type=Path, help="data folder (default $SEJONG_DATA_DIR, else ../shared/data; "
                                                 "fetched by MANIFEST into var/data/ when absent)")
    p.add_argument("--only", nargs="+", metavar="LAYER", help="layer ids to load")
    p.add_argument("--force", action="store_true", help="reload even when the source files are unchanged")
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")

    p = sub.add_parser("readings", help="air-quality readings into public.air_quality_readings")
    p.add_argument("file", type=Path, nargs="+")
    p.add_argument("--format", choices=["seoul-daily", "airkorea-json"],
                   help="default: .json -> airkorea-json, else seoul-daily (an .xlsx or a CSV with 측정소코드 "
                        "is read as AirKorea's 최종확정 hourly layout)")
    p.add_argument("--encoding", default="auto", choices=ENCODINGS)
    _common(p)

    p = sub.add_parser("facilities", help="libraries/parks/schools/open facilities of a region")
    p.add_argument("--region", default="세종특별자치시", help="e.g. 세종특별자치시 or 파주시")
    p.add_argument("--table", default="public.facilities")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")

    p = sub.add_parser("list", help="the loaded tables of the catalog (meta.datasets): rows, version, load time")
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")

    p = sub.add_parser("drop", help="drop a loaded table and its catalog row (tables a layer serves need --force)")
    p.add_argument("table", help="schema-qualified table, e.g. public.my_points")
    p.add_argument("--force", action="store_true", help="drop even a table a config.yml layer serves")
    p.add_argument("--dsn", help="PostgreSQL URL (default: $DATABASE_URL)")
    return ap


def list_tables(dsn: str) -> int:
    """Print the catalog."""
    served = {layer.table: lid for lid, layer in load_config().layers.items()}
    print("table\trows\trejected\tversion\tloaded_at\tlayer\ttitle")
    for e in catalog(dsn):
        missing = "" if e["exists"] else " (table missing)"
        print(f"{e['table_name']}{missing}\t{e['rows_loaded']}\t{e['rows_skipped']}\t{e['data_version']}\t"
              f"{e['loaded_at']:%Y-%m-%d %H:%M}\t{served.get(e['table_name'], '-')}\t{e['title'] or ''}")
    return 0


def drop(dsn: str, table: str, force: bool) -> int:
    """Drop a catalogued table; tables a layer serves only with --force."""
    name = table if "." in table else f"public.{table}"
    served = [lid for lid, layer in load_config().layers.items() if layer.table == name]
    if served and not force:
        raise LoadError(f"{name} is served by layer {', '.join(served)} in config.yml; remove the layer first "
                        f"or pass --force")
    rows = drop_table(dsn, name)
    print(f"{name}: dropped ({rows:,} rows) and removed from the catalog")
    return 0


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

            counts = load_bundled(database_url(dsn=args.dsn), args.data_dir, args.force, args.only)
            for table, n in counts.items():
                print(f"{table}\t{n}")
            return 0
        dsn = database_url(dsn=args.dsn)
        if args.cmd == "list":
            return list_tables(dsn)
        if args.cmd == "drop":
            return drop(dsn, args.table, args.force)
        if args.cmd in ("csv", "file"):
            trust = {"bbox": None if args.national else load_config().data.region,
                     "bad_rows": BadRows.parse(args.max_bad_rows), "replace": args.replace,
                     "max_shrink": args.max_shrink}
        if args.cmd == "csv":
            from loaders.fileload import load_csv

            res = load_csv(dsn, args.file, args.table, encoding=args.encoding, lat_col=args.lat_col,
                           lon_col=args.lon_col, x_col=args.x_col, y_col=args.y_col, epsg=args.epsg,
                           where=args.where, licence=args.licence, title=args.title,
                           attribution=args.attribution, region=args.region, max_rows=args.max_rows,
                           dm=args.dm, member=args.member, types=args.types, sheet=args.sheet,
                           header_row=args.header_row, geometry=args.geometry, **trust)
        elif args.cmd == "file":
            from loaders.fileload import load_file

            res = load_file(dsn, args.file, args.table, epsg=args.epsg, layer=args.layer, encoding=args.encoding,
                            prices=args.prices, licence=args.licence, title=args.title,
                            attribution=args.attribution, max_rows=args.max_rows, **trust)
        elif args.cmd == "readings":
            res = load_readings(dsn, args.file, args.format, args.encoding, args.max_rows)
        else:
            from loaders.datasets import facilities

            res = facilities.load_region(dsn, args.data_dir or load_config().data.path(), args.region, args.table)
    except (LoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing was changed in the database", file=sys.stderr)
        return 1
    for note in res.notes:
        print(note)
    if res.rejects:
        print(f"rejects ({len(res.rejects):,} rows set aside, kept in meta.datasets.rejects):")
        for r in res.rejects[:50]:
            print(f"  {format_reject(r)}")
        if len(res.rejects) > 50:
            print(f"  … and {len(res.rejects) - 50:,} more")
    if res.quality:
        from loaders.quality import summary_lines

        for line in summary_lines(res.quality):
            print(line)
    print(f"{res.table}: {res.rows:,} rows (set aside {len(res.rejects) or res.skipped}, geometries repaired "
          f"{res.repaired}, data_version {res.data_version})")
    if args.cmd == "readings":
        return _rebuild_surfaces(dsn)
    return 0


def _rebuild_surfaces(dsn: str) -> int:
    """Surfaces follow their readings (collections whose readings did not change are skipped)."""
    from loaders.surfaces.build import build_all

    try:
        built = build_all(dsn)
    except (LoadError, ValueError, OSError) as exc:  # OSError: the surfaces directory cannot be written
        print(f"error: the readings are stored, but their surfaces were not rebuilt: {exc} "
              "(the old surfaces are still served; retry with ./run load surfaces)", file=sys.stderr)
        return 1
    for cid, n in built.items():
        if n:
            print(f"surfaces {cid}: {n}")
    return 0


_ = Meta  # re-exported for callers building custom loads
