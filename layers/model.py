"""A layer resolved against the database catalog: columns, SRID, geometry type, extent, provenance."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

from core.config import LayerConfig
from layers import catalog

LOGGER = logging.getLogger(__name__)

# PostgreSQL type -> JSON Schema (type, format) for queryables and CQL2 typing
_JSON_TYPES: dict[str, tuple[str, str | None]] = {
    "integer": ("integer", None), "bigint": ("integer", None), "smallint": ("integer", None),
    "numeric": ("number", None), "double precision": ("number", None), "real": ("number", None),
    "boolean": ("boolean", None), "date": ("string", "date"),
    "timestamp with time zone": ("string", "date-time"), "timestamp without time zone": ("string", "date-time"),
    "jsonb": ("object", None), "json": ("object", None),
}


@dataclass(frozen=True)
class Column:
    """A table column and the JSON Schema type it maps to."""

    name: str
    pg_type: str

    @property
    def json_type(self) -> tuple[str, str | None]:
        """(type, format) in JSON Schema."""
        base = self.pg_type.split("(")[0].strip()
        if base.endswith("[]"):
            return ("array", None)
        return _JSON_TYPES.get(base, ("string", None))

    @property
    def cql_type(self) -> str:
        """Type name understood by the CQL2 translator."""
        typ, fmt = self.json_type
        if fmt == "date":
            return "date"
        if fmt == "date-time":
            return "timestamp"
        return typ


@dataclass(eq=False)  # identity hash: tile SQL is cached per resolved layer
class Layer:
    """A declared layer resolved against PostGIS."""

    id: str
    config: LayerConfig
    columns: list[Column]
    srid: int
    geometry_type: str
    estimated_rows: int
    extent: tuple[float, float, float, float] | None = None
    temporal: tuple[str | None, str | None] | None = None
    provenance: list[dict[str, Any]] = field(default_factory=list)
    data_version: int = 0
    titles: dict[str, tuple[str, str]] = field(default_factory=dict)
    catalog_tables: list[str] = field(default_factory=list)

    @property
    def quality(self) -> dict[str, Any] | None:
        """The data-quality report of the layer's last load (meta.datasets.quality), None before one was made."""
        reports = [p["quality"] for p in self.provenance if p.get("quality")]
        return reports[0] if len(reports) == 1 else ({"tables": reports} if reports else None)

    @property
    def table(self) -> sql.Identifier:
        """Quoted schema-qualified table."""
        return sql.Identifier(self.config.schema_name, self.config.table_name)

    @property
    def geom(self) -> sql.Identifier:
        """Quoted geometry column."""
        return sql.Identifier(self.config.geometry)

    @property
    def id_column(self) -> Column:
        """The feature id column."""
        return next(c for c in self.columns if c.name == self.config.id)

    @property
    def properties(self) -> list[Column]:
        """Columns published as feature properties."""
        wanted = self.config.properties
        cols = [c for c in self.columns if c.name != self.config.geometry]
        if wanted:
            cols = [c for c in cols if c.name in wanted or c.name == self.config.id]
        return cols

    def column(self, name: str) -> Column | None:
        """A published property column by name."""
        return next((c for c in self.properties if c.name == name), None)

    def title_of(self, column: str, lang: str) -> str:
        """Korean or English title of a property (the column name when none is declared)."""
        pair = self.titles.get(column)
        if not pair:
            return column
        return pair[1] if lang == "en" else pair[0]

    @property
    def tiles_enabled(self) -> bool:
        """Whether the layer is served as vector tiles."""
        return self.config.tiles is not False


def resolve(conn: Any, layer_id: str, cfg: LayerConfig) -> Layer | None:
    """Resolve one declaration; None (with a warning) when its table is missing."""
    cols = catalog.columns(conn, cfg.table)
    if not cols:
        LOGGER.warning("layer %s: table %s not found; not served", layer_id, cfg.table)
        return None
    names = {name for name, _ in cols}
    for needed in (cfg.geometry, cfg.id):
        if needed not in names:
            LOGGER.warning("layer %s: column %s missing in %s; not served", layer_id, needed, cfg.table)
            return None
    if catalog.is_empty(conn, cfg):
        LOGGER.info("layer %s: %s has no rows yet; published once loaded", layer_id, cfg.table)
        return None
    srid, gtype = catalog.geometry_info(conn, cfg)
    titles = dict(cfg.titles)
    catalog_tables = [cfg.table]
    provenance, version = catalog.provenance(conn, catalog_tables)
    temporal = catalog.temporal_extent(conn, cfg) if cfg.datetime else None
    return Layer(
        id=layer_id, config=cfg, columns=[Column(n, t) for n, t in cols], srid=srid, geometry_type=gtype,
        estimated_rows=catalog.estimated_rows(conn, cfg), extent=catalog.extent_lonlat(conn, cfg, srid),
        temporal=temporal, provenance=provenance, data_version=version, titles=titles,
        catalog_tables=catalog_tables,
    )
