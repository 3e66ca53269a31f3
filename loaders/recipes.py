"""Glue between per-layer recipes (layers/*.py) and the core loader: datasets, CSV and file loads."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loaders.core import Column, LoadResult, Meta, RowStats, SourceFile, TableSpec, load_table, prepare
from loaders.csvload import CsvRecipe, CsvRows, Field

PGTYPES = {"text": "text", "int": "integer", "number": "double precision", "numeric": "numeric",
           "date": "date", "timestamp": "timestamptz"}

Builder = Callable[[Path, RowStats], Iterable[Mapping[str, Any]]]


@dataclass
class Dataset:
    """One bundled table: its spec, source files (relative to the data dir), row builder and catalog text."""

    spec: TableSpec
    files: list[str]
    build: Builder | None
    meta: Meta
    after: Callable[[str], None] | None = None
    urls: dict[str, str] = field(default_factory=dict)


ID_COLUMN = Column("id", "integer", "일련번호")


def columns(fields: list[Field], ko_override: Mapping[str, str] | None = None, with_id: bool = True) -> list[Column]:
    """Table columns for CSV fields (id first; Korean source header as comment)."""
    cols = [ID_COLUMN] if with_id else []
    for f in fields:
        ko = (ko_override or {}).get(f.column, f.sources[0])
        cols.append(Column(f.column, PGTYPES[f.kind], ko))
    return cols


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_files(data_dir: Path, files: list[str], urls: Mapping[str, str] | None = None) -> list[SourceFile]:
    """Catalog entries (with sha256) for data-dir files."""
    return [SourceFile(f, sha256(data_dir / f), (urls or {}).get(f, "")) for f in files]


def csv_builder(relpath: str, recipe: CsvRecipe, encoding: str = "auto") -> Builder:
    """A builder reading one CSV of the data dir with a recipe."""
    def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
        return CsvRows(data_dir / relpath, recipe, encoding=encoding, label=relpath, stats=stats)
    return build


def load_dataset(dsn: str, ds: Dataset, data_dir: Path, max_rows: int | None = None) -> LoadResult:
    """Load one bundled dataset (or create its empty table when it has no builder)."""
    sources = source_files(data_dir, ds.files, ds.urls)
    if ds.build is None:
        prepare(dsn, [ds.spec])
        register_empty(dsn, ds.spec, ds.meta)
        res = LoadResult(ds.spec.qualified, 0, 0, 0, 0)
    else:
        stats = RowStats()
        rows = ds.build(data_dir, stats)
        label = ", ".join(ds.files) or ds.spec.qualified
        res = load_table(dsn, ds.spec, rows, label=label, sources=sources, meta=ds.meta, stats=stats,
                         max_rows=max_rows, total=getattr(rows, "total", None))
        for note in stats.notes:
            print(note, file=sys.stderr)
    if ds.after:
        ds.after(dsn)
    return res


def register_empty(dsn: str, spec: TableSpec, meta: Meta) -> None:
    """Catalog row for a table that exists but has no bundled data (kept if already present)."""
    from loaders.core import connect

    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO meta.datasets (table_name, title, licence, attribution) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (table_name) DO NOTHING", (spec.qualified, meta.title, meta.licence,
                                                                meta.attribution))
        conn.commit()
    finally:
        conn.close()
