"""`file` and `csv` commands: load one file into a table (official layouts auto-detected)."""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from loaders.core import BadRows, Column, LoadResult, Meta, RowStats, SourceFile, TableSpec, load_table
from loaders.crs import Bbox
from loaders.csvload import Coords, CsvRecipe, CsvRows, parse_where, read_header, sanitize_names, typed_recipe
from loaders.errors import LoadError
from loaders.layouts import building_rows, detect, parcel_rows, read_prices
from loaders.recipes import sha256
from loaders.textio import decode_file, member_names
from loaders.vector import ewkb, geometry_kind, read_vector


@contextmanager
def zip_member(path: Path, member: str | None, suffixes: tuple[str, ...] = (".csv", ".txt", ".tsv")
               ) -> Iterator[tuple[Path, SourceFile]]:
    """A CSV of a zip (member: its name or a unique part of it; CP949 names decoded) as a temporary file."""
    names = {n: i for n, i in member_names(path).items() if n.lower().endswith(suffixes)}
    hits = [n for n in names if member and (n == member or member in n)] if member else list(names)
    if len(hits) != 1:
        listing = "\n  ".join(names) or "(none)"
        what = f"--member {member!r} matches {len(hits)} of" if member else "pass --member NAME to pick one of"
        raise LoadError(f"{path.name}: {what} the CSV members:\n  {listing}")
    name = hits[0]
    with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory(prefix="sejong-member-") as tmp:
        data = zf.read(names[name])
        out = Path(tmp) / Path(name).name
        out.write_bytes(data)
        yield out, SourceFile(f"{path.name}/{name}", hashlib.sha256(data).hexdigest())


def known_csv_recipe(table: str, region: str | None) -> tuple[TableSpec, CsvRecipe, Meta] | None:
    """The bundled recipe of a layer table (bike_stations, street_lights), if `table` is one."""
    from loaders.datasets import bike_stations, street_lights

    name = table if "." in table else f"public.{table}"
    if name == bike_stations.TABLE:
        return bike_stations.SPEC, bike_stations.recipe(region or "세종특별자치시"), bike_stations.META
    if name == street_lights.TABLE:
        return street_lights.SPEC, street_lights.RECIPE, street_lights.META
    return None


def load_csv(dsn: str, path: Path, table: str, *, encoding: str = "auto", lat_col: str | None = None,
             lon_col: str | None = None, x_col: str | None = None, y_col: str | None = None,
             epsg: int | None = None, where: list[str] | None = None, licence: str = "", title: str = "",
             attribution: str = "", region: str | None = None, max_rows: int | None = None,
             bbox: Bbox | None = None, dm: bool | None = None, bad_rows: BadRows | None = None,
             replace: bool = False, max_shrink: float | None = None, member: str | None = None,
             types: list[str] | None = None, sheet: str | None = None, header_row: str | None = None,
             geometry: bool = True) -> LoadResult:
    """Load a CSV, a JSON array of objects, JSON Lines or an .xlsx sheet (or such a member of a zip): a layer table
    uses its recipe, any other table gets its columns typed by content (`types`: COL=TYPE overrides).
    bbox: the deployment's region the points must fall in (None: anywhere in Korea); geometry=False: no
    coordinates, an attribute table."""
    from loaders import tabular

    opts: dict[str, Any] = {
        "encoding": encoding, "lat_col": lat_col, "lon_col": lon_col, "x_col": x_col, "y_col": y_col, "epsg": epsg,
        "where": where, "licence": licence, "title": title, "attribution": attribution, "region": region,
        "max_rows": max_rows, "bbox": bbox, "dm": dm, "bad_rows": bad_rows, "replace": replace,
        "max_shrink": max_shrink, "types": types, "geometry": geometry}
    if path.suffix.lower() == ".zip":
        with zip_member(path, member, (".csv", ".txt", ".tsv", *tabular.SUFFIXES)) as (inner, source):
            text = tabular.as_csv_text(inner, encoding, sheet, header_row, inner.name)
            return _load_csv(dsn, inner, table, source, text=text, **opts)
    text = tabular.as_csv_text(path, encoding, sheet, header_row, path.name)
    return _load_csv(dsn, path, table, SourceFile(path.name, sha256(path)), text=text, **opts)


def _load_csv(dsn: str, path: Path, table: str, source: SourceFile, *, encoding: str, lat_col: str | None,
              lon_col: str | None, x_col: str | None, y_col: str | None, epsg: int | None, where: list[str] | None,
              licence: str, title: str, attribution: str, region: str | None, max_rows: int | None,
              bbox: Bbox | None, dm: bool | None, bad_rows: BadRows | None, replace: bool,
              max_shrink: float | None, types: list[str] | None, geometry: bool, text: str | None) -> LoadResult:
    known = known_csv_recipe(table, region)
    if not geometry or (known and (types or text is not None)):
        from loaders import tabular

        if known:
            raise LoadError(f"{table} is a layer table with a bundled recipe: it takes its CSV as published "
                            f"(no --types, --no-geometry, JSON or xlsx); load into another --table")
        return tabular.load_attributes(dsn, path, table, source, encoding=encoding, where=where, types=types,
                                       meta=Meta(title or path.stem, licence, attribution), max_rows=max_rows,
                                       bad_rows=bad_rows, replace=replace, max_shrink=max_shrink, text=text)
    if known:
        spec, recipe, meta = known
        meta = Meta(title or meta.title, licence or meta.licence, attribution or meta.attribution)
    else:
        if text is None:
            text, _ = decode_file(path, encoding, path.name)
        header = read_header(path, encoding, path.name, text=text)
        recipe, cols = typed_recipe(header, text, types)
        spec = TableSpec(table, cols, "Point")
        meta = Meta(title or path.stem, licence, attribution)
    recipe.where = {**recipe.where, **parse_where(where)}
    if lat_col and lon_col:
        recipe.coords = Coords(lon_col, lat_col, 4326, latlon=True, dm=dm)
    elif x_col and y_col:
        recipe.coords = Coords(x_col, y_col, epsg, dm=dm)
    elif epsg or dm is not None:
        recipe.coords = Coords(epsg=epsg, dm=dm)
    stats = RowStats()
    rows = CsvRows(path, recipe, encoding=encoding, label=path.name, stats=stats, region=bbox, text=text)
    return load_table(dsn, spec, rows, label=path.name, sources=[source], meta=meta, stats=stats,
                      max_rows=max_rows, total=rows.total, bad_rows=bad_rows, replace=replace,
                      max_shrink=max_shrink)


def _pgtype(series: pd.Series) -> tuple[str, str]:
    kind = series.dtype.kind
    if kind in "iu":
        return "bigint", "int"
    if kind == "f":
        return "double precision", "float"
    if kind == "b":
        return "boolean", "bool"
    if kind == "M":
        return "timestamptz", "ts"
    return "text", "text"


def _plain(v: Any, how: str) -> Any:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
        return None
    if how == "int":
        return int(v)
    if how == "ts":
        return pd.Timestamp(v).isoformat()
    if how == "text":
        return str(v)
    return v


def load_file(dsn: str, path: Path, table: str | None = None, *, epsg: int | None = None, layer: str | None = None,
              encoding: str | None = None, prices: Path | None = None, licence: str = "", title: str = "",
              attribution: str = "", max_rows: int | None = None, bbox: Bbox | None = None,
              bad_rows: BadRows | None = None, replace: bool = False, max_shrink: float | None = None) -> LoadResult:
    """Load a vector file; AL_D010/F_FAC_BUILDING/OSM go to public.buildings, LSMD/AL_D002 to public.land_parcels.
    bbox: the deployment's region the features must fall in (None: anywhere in Korea)."""
    bad_rows = bad_rows or BadRows()
    data = read_vector(path, epsg=epsg, layer=layer, encoding=encoding, label=path.name, region=bbox,
                       keep_bad=str(bad_rows) != "0")
    frame = data.frame
    attrs = [c for c in frame.columns if c != frame.geometry.name]
    layout = detect(attrs)
    stats = RowStats(rejects=list(data.rejects))
    if data.outside_region:
        stats.notes.append(f"{path.name}: {data.outside_region:,} sampled coordinates lie outside the region")
    sources = [SourceFile(path.name, sha256(path))]
    if layout in ("lsmd", "al_d002"):
        from loaders.datasets import land

        if prices:
            sources.append(SourceFile(prices.name, sha256(prices)))
        spec = _retarget(land.SPEC, table)
        rows = parcel_rows(frame, layout, path.name, read_prices(prices) if prices else None)
        meta = _meta(land.META, title, licence, attribution)
    elif layout in ("al_d010", "f_fac_building") or (layout == "osm" and table in (None, "public.buildings")):
        from loaders.datasets import buildings

        spec = _retarget(buildings.SPEC, table)
        rows = building_rows(frame, layout or "osm", path.name)
        meta = _meta(buildings.META if layout == "osm" else buildings.OFFICIAL_META, title, licence, attribution)
    else:
        if not table:
            raise ValueError("--table is required for files not in a known layout")
        names = sanitize_names([str(a) for a in attrs])
        kinds = [_pgtype(frame[a]) for a in attrs]
        cols = [Column("id", "integer"), *(Column(n, k[0], str(a)) for n, k, a in zip(names, kinds, attrs,
                                                                                        strict=True))]
        spec = TableSpec(table, cols, geometry_kind(frame.geometry.values))
        geoms = ewkb(frame.geometry.values)
        recs = frame[attrs].to_dict("records")
        rows = ({"id": i, **{n: _plain(r[a], k[1]) for n, a, k in zip(names, attrs, kinds, strict=True)}, "geom": g}
                for i, (r, g) in enumerate(zip(recs, geoms, strict=True), start=1))
        meta = Meta(title or path.stem, licence, attribution)
    return load_table(dsn, spec, rows, label=path.name, sources=sources, meta=meta, stats=stats,
                      max_rows=max_rows, total=len(frame), bad_rows=bad_rows, replace=replace, max_shrink=max_shrink)


def _retarget(spec: TableSpec, table: str | None) -> TableSpec:
    if not table or table == spec.qualified:
        return spec
    return TableSpec(table, spec.columns, spec.geom_type, spec.pk, spec.generated_pk, spec.replace_by, spec.indexes)


def _meta(base: Meta, title: str, licence: str, attribution: str) -> Meta:
    return Meta(title or base.title, licence or base.licence, attribution or base.attribution)
