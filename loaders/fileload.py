"""`file` and `csv` commands: load one file into a table (official layouts auto-detected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from loaders.core import Column, LoadResult, Meta, RowStats, SourceFile, TableSpec, load_table
from loaders.csvload import Coords, CsvRecipe, CsvRows, generic_recipe, parse_where, read_header, sanitize_names
from loaders.layouts import building_rows, detect, parcel_rows, read_prices
from loaders.recipes import sha256
from loaders.vector import ewkb, geometry_kind, read_vector


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
             attribution: str = "", region: str | None = None, max_rows: int | None = None) -> LoadResult:
    """Load a CSV: a layer table uses its recipe, any other table gets every column as text."""
    known = known_csv_recipe(table, region)
    if known:
        spec, recipe, meta = known
        meta = Meta(title or meta.title, licence or meta.licence, attribution or meta.attribution)
    else:
        header = read_header(path, encoding, path.name)
        recipe, cols = generic_recipe(header)
        spec = TableSpec(table, cols, "Point")
        meta = Meta(title or path.stem, licence, attribution)
    recipe.where = {**recipe.where, **parse_where(where)}
    if lat_col and lon_col:
        recipe.coords = Coords(lon_col, lat_col, 4326, latlon=True)
    elif x_col and y_col:
        recipe.coords = Coords(x_col, y_col, epsg)
    elif epsg:
        recipe.coords = Coords(epsg=epsg)
    stats = RowStats()
    rows = CsvRows(path, recipe, encoding=encoding, label=path.name, stats=stats)
    return load_table(dsn, spec, rows, label=path.name, sources=[SourceFile(path.name, sha256(path))], meta=meta,
                      stats=stats, max_rows=max_rows, total=rows.total)


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
              attribution: str = "", max_rows: int | None = None) -> LoadResult:
    """Load a vector file; AL_D010/F_FAC_BUILDING/OSM go to public.buildings, LSMD/AL_D002 to public.land_parcels."""
    data = read_vector(path, epsg=epsg, layer=layer, encoding=encoding, label=path.name)
    frame = data.frame
    attrs = [c for c in frame.columns if c != frame.geometry.name]
    layout = detect(attrs)
    stats = RowStats(skipped=data.skipped)
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
                      max_rows=max_rows, total=len(frame))


def _retarget(spec: TableSpec, table: str | None) -> TableSpec:
    if not table or table == spec.qualified:
        return spec
    return TableSpec(table, spec.columns, spec.geom_type, spec.pk, spec.generated_pk, spec.replace_by, spec.indexes)


def _meta(base: Meta, title: str, licence: str, attribution: str) -> Meta:
    return Meta(title or base.title, licence or base.licence, attribution or base.attribution)
